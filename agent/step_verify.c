/* step_verify: the service really runs the new version: the unit is active, the health probe
 * passes (polled until the verify timeout), the binary reports the target version, and the
 * unit is still active after all that (a crash right after READY=1 counts as a failure). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent.h"
#include "unit.h"

#define PROBE_INTERVAL_MS 250
#define PROBE_TIMEOUT_MS 2000

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t discard(char *p, size_t size, size_t n, void *u)
{
    (void)p, (void)u;
    return size * n;
}

/* One HTTP GET; 0 when it answered 2xx, with `why` saying what it did otherwise. */
static int probe_http(const char *url, char *why, size_t len)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, len, "curl: out of memory");
        return -ENOMEM;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)PROBE_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(why, len, "%s: %s", url, curl_easy_strerror(rc));
        return -ECONNREFUSED;
    }
    if (code < 200 || code > 299) {
        snprintf(why, len, "%s answered %ld", url, code);
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
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), r = -1;
    if (fd >= 0 && (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (poll(&p, 1, PROBE_TIMEOUT_MS) == 1 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
            r = 0;
        else
            snprintf(why, len, "%s: %s", hostport, soerr ? strerror(soerr) : "no answer");
    } else {
        snprintf(why, len, "%s: %s", hostport, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return r == 0 ? 0 : -ECONNREFUSED;
}

static int probe(const svc_config_t *svc, char *why, size_t len)
{
    return svc->health_http ? probe_http(svc->health_http, why, len)
                            : probe_tcp(svc->health_tcp, why, len);
}

static int unit_active(agent_t *a, const svc_config_t *svc, baton_err_t *err)
{
    sd_bus *bus = NULL;
    char *state = NULL;
    int r = agent_bus(a, &bus, err);
    if (r < 0 || (r = unit_property(bus, svc->unit, "Unit", "ActiveState", &state, err)) < 0)
        return r;
    if (strcmp(state, "active")) {
        char *why = NULL;
        unit_property(bus, svc->unit, "Service", "Result", &why, NULL);
        r = baton_err_set(err, -EIO, "%s is %s (%s)", svc->unit, state, why ? why : "?");
        free(why);
    }
    free(state);
    return r;
}

int step_verify(agent_t *a, const svc_config_t *svc, svc_state_t *st, const char *version,
                struct step_out *out, baton_err_t *err)
{
    (void)st;
    int r = unit_active(a, svc, err);
    if (r < 0)
        return r;
    agent_progress(a, "waiting for %s to be healthy",
                   svc->health_http ? svc->health_http : svc->health_tcp);
    uint64_t start = now_ms(), deadline = start + svc->timeout_verify_ms, next_note = start;
    char why[512] = "";
    while ((r = probe(svc, why, sizeof(why))) < 0) {
        agent_tick(a);
        uint64_t t = now_ms();
        if (t >= deadline)
            return baton_err_set(err, -ETIMEDOUT, "not healthy after %llu s: %s",
                                 (unsigned long long)(svc->timeout_verify_ms / 1000), why);
        if (t >= next_note) {
            agent_progress(a, "not healthy yet: %s", why);
            next_note = t + 5000;
        }
        /* The service may have died meanwhile: no point waiting for the deadline. */
        if ((r = unit_active(a, svc, err)) < 0)
            return r;
        struct timespec ts = {0, PROBE_INTERVAL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    char *reported = NULL;
    if ((r = command_version(a, svc, svc->binary, &reported, err)) < 0)
        return r;
    snprintf(out->version, sizeof(out->version), "%s", reported);
    if (version && *version && !version_matches(reported, version))
        r = baton_err_set(err, -EINVAL, "%s reports version %s, expected %s", svc->binary, reported,
                          version);
    free(reported);
    if (r < 0)
        return r;
    return unit_active(a, svc, err);
}
