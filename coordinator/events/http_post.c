/* http_post: see http_post.h. */
#include "http_post.h"

#include <stdio.h>
#include <stdlib.h>
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

/* The answer's body, kept up to a limit (a GET); NULL data: thrown away (a POST). */
struct sink {
    char *data;
    size_t len, max;
    bool too_big;
};

static size_t keep(char *p, size_t size, size_t n, void *userdata)
{
    struct sink *k = userdata;
    size_t len = size * n;
    if (!k->data)
        return len;
    if (len > k->max - k->len) {
        k->too_big = true;
        return 0; /* ends the transfer */
    }
    memcpy(k->data + k->len, p, len);
    k->len += len;
    k->data[k->len] = '\0';
    return len;
}

/* One request: a POST of `body` (JSON), or a GET when body is NULL; the answer's body into
 * `sink` (its buffer max + 1 bytes) when sink->data is set. 0 and *ret_code once an answer came,
 * whatever its status; else -1 and `error`. */
static int request(CURL *c, const char *url, const char *body, uint64_t limit_ms,
                   bool (*stop)(void *), void *stop_data, struct sink *sink, long *ret_code,
                   char *error, size_t error_size)
{
    struct stopper st = {stop, stop_data};
    char curl_error[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = curl_slist_append(NULL, body ? "Content-Type: application/json"
                                                        : "Accept: application/json");
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
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* A resolve that timed out is not waited for (libcurl's resolver thread is left to end on
     * its own): the limit holds for a slow DNS too. */
    curl_easy_setopt(c, CURLOPT_QUICK_EXIT, 1L);
    curl_easy_setopt(
        c, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(limit_ms && limit_ms < HTTP_POST_CONNECT_MS ? limit_ms : HTTP_POST_CONNECT_MS));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(limit_ms ? limit_ms : 1));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);
    if (stop) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &st);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode cr = curl_easy_perform(c);
    *ret_code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_code);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(h2);
    if (sink->too_big) {
        snprintf(error, error_size, "the answer is longer than %zu bytes", sink->max);
        return -1;
    }
    if (cr != CURLE_OK) {
        snprintf(error, error_size, "%s",
                 cr == CURLE_ABORTED_BY_CALLBACK ? "interrupted"
                 : *curl_error                   ? curl_error
                                                 : curl_easy_strerror(cr));
        return -1;
    }
    return 0;
}

int http_post_json(CURL *c, const char *url, const char *body, uint64_t limit_ms,
                   bool (*stop)(void *), void *stop_data, char *error, size_t error_size)
{
    struct sink none = {0};
    long code = 0;
    if (request(c, url, body, limit_ms, stop, stop_data, &none, &code, error, error_size) < 0)
        return -1;
    if (code < 200 || code > 299) {
        snprintf(error, error_size, "HTTP %ld", code);
        return -1;
    }
    return 0;
}

int http_get(CURL *c, const char *url, uint64_t limit_ms, size_t max_bytes, bool (*stop)(void *),
             void *stop_data, char **ret_body, long *ret_code, char *error, size_t error_size)
{
    struct sink k = {.data = malloc(max_bytes + 1), .max = max_bytes};
    *ret_body = NULL;
    if (!k.data) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    k.data[0] = '\0';
    if (request(c, url, NULL, limit_ms, stop, stop_data, &k, ret_code, error, error_size) < 0) {
        free(k.data);
        return -1;
    }
    *ret_body = k.data;
    return 0;
}
