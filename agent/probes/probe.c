/* probe: one health probe (libcurl for HTTP, a non-blocking connect for TCP) and the pauses
 * between probes while a service is starting. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "envelope.h"
#include "err.h"
#include "probe.h"

/* The start of a probe's response body: what a failing health check says ("database
 * unreachable") is often the one line that tells the operator why. The rest is read and
 * dropped. */
#define PROBE_BODY_MAX 160
struct probe_body {
    char text[PROBE_BODY_MAX + 1];
    size_t n;
};

static size_t keep_start(char *p, size_t size, size_t n, void *u)
{
    struct probe_body *b = u;
    size_t len = size * n;
    for (size_t i = 0; i < len && b->n < PROBE_BODY_MAX; i++) {
        unsigned char ch = (unsigned char)p[i];
        b->text[b->n++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch; /* one line */
    }
    b->text[b->n] = '\0';
    return len;
}

/* libcurl's global set-up initialises OpenSSL, ~2 MiB of resident memory an idle agent need
 * not carry: done once, on the first HTTP probe, by whichever thread probes first. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void probe_curl_setup(void)
{
    pthread_once(&curl_once, curl_setup);
}

/* One HTTP GET; 0 when it answered 2xx, with `why` saying what it did otherwise. */
static int probe_http(const char *url, char *why, size_t len)
{
    probe_curl_setup();
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, len, "curl: out of memory");
        return -ENOMEM;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)PROBE_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    struct probe_body body = {.n = 0};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_start);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long code = 0, os_errno = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(why, len, "%s: %s", url, curl_easy_strerror(rc));
        /* Refused only where the host said so (RST): COULDNT_CONNECT also covers a host that
         * cannot be reached, which is no reason to probe it every 10 ms. */
        return rc == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED ? -ECONNREFUSED : -EIO;
    }
    if (code < 200 || code > 299) {
        /* Said as received, cut at a whole character, never as bytes that are not UTF-8. */
        utf8_trim_partial(body.text);
        for (size_t n = strlen(body.text); n > 0 && body.text[n - 1] == ' '; n--)
            body.text[n - 1] = '\0';
        const char *b = body.text + strspn(body.text, " ");
        bool text = *b && envelope_utf8_valid(b, strlen(b));
        snprintf(why, len, "%s answered %ld%s%s%s", url, code, text ? ": \"" : "", text ? b : "",
                 text ? "\"" : "");
        utf8_trim_partial(why);
        return -EIO;
    }
    return 0;
}

/* One TCP connect to host:port within PROBE_TIMEOUT_MS. */
static int probe_tcp(const char *hostport, char *why, size_t len)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(host, colon + 1, &hints, &ai);
    if (g) {
        snprintf(why, len, "%s: %s", hostport, gai_strerror(g));
        return -EHOSTUNREACH;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), r = -EIO;
    if (fd >= 0 && (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (poll(&p, 1, PROBE_TIMEOUT_MS) == 1 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
            r = 0;
        else {
            r = soerr == ECONNREFUSED ? -ECONNREFUSED : -EIO;
            snprintf(why, len, "%s: %s", hostport, soerr ? strerror(soerr) : "no answer");
        }
    } else {
        r = errno == ECONNREFUSED ? -ECONNREFUSED : -EIO;
        snprintf(why, len, "%s: %s", hostport, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return r;
}

int probe(const svc_config_t *svc, char *why, size_t len)
{
    return svc->health_http ? probe_http(svc->health_http, why, len)
                            : probe_tcp(svc->health_tcp, why, len);
}

uint64_t probe_next_pause(int result, uint64_t prev_ms, uint64_t interval_ms)
{
    uint64_t cap = interval_ms ? interval_ms : PROBE_FIRST_PAUSE_MS;
    if (result == -ECONNREFUSED)
        return PROBE_REFUSED_PAUSE_MS < cap ? PROBE_REFUSED_PAUSE_MS : cap;
    uint64_t next = prev_ms < PROBE_FIRST_PAUSE_MS ? PROBE_FIRST_PAUSE_MS : prev_ms * 2;
    return next < cap ? next : cap;
}
