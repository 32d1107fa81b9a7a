/* step_verify: the service really runs the new version, and keeps running it: the unit is
 * active, the health probe passes (polled until the verify timeout), the binary reports the
 * target version, and for min_healthy_time afterwards the unit stays active with the same main
 * process and no restart while every probe passes. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "semver.h"
#include "clock.h"
#include "command.h"
#include "db.h"
#include "envelope.h"
#include "err.h"
#include "step.h"
#include "unit.h"

#define PROBE_FIRST_PAUSE_MS 5 /* then doubling up to health.interval */
#define PROBE_TIMEOUT_MS 2000

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

/* One HTTP GET; 0 when it answered 2xx, with `why` saying what it did otherwise. */
static int probe_http(const char *url, char *why, size_t len)
{
    pthread_once(&curl_once, curl_setup);
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
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(why, len, "%s: %s", url, curl_easy_strerror(rc));
        return -ECONNREFUSED;
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

static int unit_active(step_ctx_t *ctx, const svc_config_t *svc, baton_err_t *err)
{
    sd_bus *bus = NULL;
    char *state = NULL;
    int r = step_bus(ctx, &bus, err);
    if (r < 0 || (r = unit_property(bus, svc->unit, "Unit", "ActiveState", &state, err)) < 0)
        return r;
    if (strcmp(state, "active")) {
        char why[160];
        unit_why_failed(bus, svc->unit, why, sizeof(why));
        r = baton_err_set(err, -EIO, "%s is %s (%s)", svc->unit, state, why);
    }
    free(state);
    return r;
}

/* What must not change while the service is watched: a restart changes both. */
struct unit_identity {
    uint32_t main_pid; /* MainPID */
    uint32_t restarts; /* NRestarts */
};

static int unit_identity(step_ctx_t *ctx, struct unit_identity *ret, baton_err_t *err)
{
    sd_bus *bus = NULL;
    int r = step_bus(ctx, &bus, err);
    if (r < 0 ||
        (r = unit_property_u32(bus, ctx->svc->unit, "Service", "MainPID", &ret->main_pid, err)) <
            0 ||
        (r = unit_property_u32(bus, ctx->svc->unit, "Service", "NRestarts", &ret->restarts, err)) <
            0)
        return r;
    return 0;
}

static void pause_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits for the first good probe; the service may die meanwhile, then there is no point
 * waiting for the deadline. The pauses start at 5 ms and double up to health.interval: a
 * service that listens 120 ms after its start is seen healthy within ~40 ms of that, not up to
 * a whole interval later (downtime the operator pays for nothing). */
static int first_healthy(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    uint64_t limit = ctx->healthy_deadline_ms ? ctx->healthy_deadline_ms : svc->timeout_verify_ms;
    uint64_t start = mono_ms(), deadline = start + limit, next_note = start;
    uint64_t pause = PROBE_FIRST_PAUSE_MS;
    char why[512] = "";
    int r;
    step_progress(ctx, "waiting for %s to be healthy",
                  svc->health_http ? svc->health_http : svc->health_tcp);
    while ((r = probe(svc, why, sizeof(why))) < 0) {
        step_tick(ctx);
        uint64_t t = mono_ms();
        if (t >= deadline)
            return baton_err_set(err, -ETIMEDOUT, "not healthy after %llu s: %s",
                                 (unsigned long long)(limit / 1000), why);
        if (t >= next_note) {
            step_progress(ctx, "not healthy yet: %s", why);
            next_note = t + 5000;
        }
        if ((r = unit_active(ctx, svc, err)) < 0)
            return r;
        pause_ms(pause);
        pause = pause * 2 < svc->health_interval_ms ? pause * 2 : svc->health_interval_ms;
    }
    return 0;
}

/* After the first good probe, the service must stay up for min_healthy_ms: the unit active with
 * the same main process and no restart, and every probe passing (as Nomad's min_healthy_time).
 * One lucky probe of a service that dies a second later is not an upgrade. */
static int stays_healthy(step_ctx_t *ctx, const struct unit_identity *first, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    uint64_t start = mono_ms(), end = start + ctx->min_healthy_ms, probes = 1;
    char why[512] = "";
    step_progress(ctx, "healthy; watching it for %llu ms", (unsigned long long)ctx->min_healthy_ms);
    for (;;) {
        uint64_t t = mono_ms();
        if (t >= end)
            break;
        pause_ms(end - t < svc->health_interval_ms ? end - t : svc->health_interval_ms);
        step_tick(ctx);
        double after = (double)(mono_ms() - start) / 1000.0;
        struct unit_identity now;
        int r = unit_active(ctx, svc, err);
        if (r < 0)
            return baton_err_prefix(err, "%.1f s after it turned healthy", after);
        if ((r = unit_identity(ctx, &now, err)) < 0)
            return r;
        if (now.main_pid != first->main_pid || now.restarts != first->restarts)
            return baton_err_set(err, -EIO,
                                 "%.1f s after it turned healthy, %s restarted (main pid %u -> "
                                 "%u, %u restarts)",
                                 after, svc->unit, first->main_pid, now.main_pid, now.restarts);
        if (probe(svc, why, sizeof(why)) < 0)
            return baton_err_set(err, -EIO,
                                 "unstable: %.1f s after it turned healthy (probe %llu): %s", after,
                                 (unsigned long long)probes + 1, why);
        probes++;
    }
    step_progress(ctx, "stayed healthy for %llu ms (%llu probes)",
                  (unsigned long long)ctx->min_healthy_ms, (unsigned long long)probes);
    return 0;
}

int verify_running(step_ctx_t *ctx, const char *version, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    struct unit_identity first;
    int r = unit_active(ctx, svc, err);
    if (r < 0 || (r = unit_identity(ctx, &first, err)) < 0 || (r = first_healthy(ctx, err)) < 0)
        return r;
    char *reported = NULL;
    if ((r = command_version(ctx, svc, svc->binary, &reported, err)) < 0)
        return r;
    snprintf(ctx->out.version, sizeof(ctx->out.version), "%s", reported);
    if (version && *version && !version_matches(reported, version))
        r = baton_err_set(err, -EINVAL, "%s reports version %s, expected %s", svc->binary, reported,
                          version);
    free(reported);
    if (r < 0)
        return r;
    /* The identity is taken before the first probe: a restart while we waited counts too. */
    if (ctx->min_healthy_ms && (r = stays_healthy(ctx, &first, err)) < 0)
        return r;
    return unit_active(ctx, svc, err);
}

/* Verified, the node goes back into service (balancer.c). Its failure fails the step (a node
 * out of the load balancer is not done), and the rollback puts it back again. */
int step_verify(step_ctx_t *ctx, baton_err_t *err)
{
    int r = verify_running(ctx, ctx->st->target_version, err);
    return r < 0 ? r : balancer_in(ctx, err);
}
