/* http_post: see http_post.h. */
#include "http_post.h"

#include <stdio.h>
#include <string.h>

#include "version.h"

#define HTTP_POST_CONNECT_MS 2000

const char *http_post_url_problem(const char *url)
{
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return "must be an http:// or https:// URL";
    if (strlen(url) > HTTP_POST_URL_MAX)
        return "is longer than 2048 bytes";
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return "holds a space or a control character";
    return NULL;
}

void http_post_url_origin(const char *url, char *buf, size_t size)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t scheme = (size_t)(host - url), len = strcspn(host, "/?#");
    const char *at = memchr(host, '@', len); /* user:password@ is not said */
    if (at) {
        len -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    snprintf(buf, size, "%.*s%.*s", (int)scheme, url, (int)len, host);
}

struct stopper {
    bool (*stop)(void *);
    void *data;
};

static size_t discard(char *p, size_t size, size_t n, void *userdata)
{
    (void)p;
    (void)userdata;
    return size * n;
}

static int progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                    curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const struct stopper *st = userdata;
    return st->stop(st->data) ? 1 : 0;
}

int http_post_json(CURL *c, const char *url, const char *body, uint64_t limit_ms,
                   bool (*stop)(void *), void *stop_data, char *error, size_t error_size)
{
    struct stopper st = {stop, stop_data};
    char curl_error[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h2 = h ? curl_slist_append(h, "User-Agent: baton/" BATON_VERSION) : NULL;
    if (!h2) {
        curl_slist_free_all(h);
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h2);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)HTTP_POST_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(limit_ms ? limit_ms : 1));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);
    if (stop) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &st);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode cr = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(h2);
    if (cr != CURLE_OK) {
        snprintf(error, error_size, "%s",
                 cr == CURLE_ABORTED_BY_CALLBACK ? "interrupted"
                 : *curl_error                   ? curl_error
                                                 : curl_easy_strerror(cr));
        return -1;
    }
    if (code < 200 || code > 299) {
        snprintf(error, error_size, "HTTP %ld", code);
        return -1;
    }
    return 0;
}
