/* pull: see pull.h. */
#include "pull.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "command.h"
#include "digest.h"
#include "envelope.h"
#include "fsutil.h"
#include "log.h"
#include "names.h"
#include "probe.h"
#include "stage.h"
#include "version.h"

#define PULL_BACKOFF_MS 1000 /* the first pause between attempts; doubled, at most 16 s */
#define PULL_BACKOFF_MAX_MS 16000
#define PULL_REDIRECTS 5
#define PULL_VALIDATOR_MAX 256

typedef enum { PULL_RUNNING, PULL_DONE, PULL_FAILED } pull_state_t;

struct pull {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* cancel was set (ends a pause between attempts) */
    /* Set before the thread starts, read-only after. */
    const agent_config_t *cfg;
    const svc_config_t *svc;
    char url[ARTIFACT_URL_MAX + 1];
    char sha256[DIGEST_HEX_LEN + 1];
    char final[PATH_MAX], partial[PATH_MAX + 16], validator[PATH_MAX + 16];
    /* Under lock. */
    pull_state_t state;
    bool cancel;
    uint64_t held;     /* bytes in the partial file */
    uint64_t size;     /* the whole artifact's, once the server said; 0 before */
    uint64_t asked_ms; /* when someone last asked */
    uint64_t ended_ms; /* when it ended (DONE or FAILED) */
    unsigned attempt;  /* 1.. */
    /* The pull thread's own. */
    bool resumed;     /* a 206 went on from a partial file */
    bool whole_again; /* a resumed file failed its digest and was fetched again whole */
    baton_err_t err;  /* FAILED: why; RUNNING: why the last attempt failed ("" when none did) */
};

static void set_held(pull_t *p, uint64_t held, uint64_t size)
{
    pthread_mutex_lock(&p->lock);
    p->held = held;
    if (size)
        p->size = size;
    pthread_mutex_unlock(&p->lock);
}

/* True when the pull must stop: told to, or no one asked for PULL_ORPHAN_MS. */
static bool should_stop(pull_t *p)
{
    pthread_mutex_lock(&p->lock);
    bool stop = p->cancel || mono_ms() - p->asked_ms > PULL_ORPHAN_MS;
    pthread_mutex_unlock(&p->lock);
    return stop;
}

/* One attempt: what curl's callbacks share. */
struct attempt {
    pull_t *p;
    CURL *c;
    int fd;        /* the partial file */
    uint64_t from; /* bytes it had when the attempt began (asked with Range) */
    uint64_t held; /* bytes it has now */
    bool started;  /* the first byte of the body came: append or start over was chosen */
    char etag[PULL_VALIDATOR_MAX], last_modified[PULL_VALIDATOR_MAX], date[PULL_VALIDATOR_MAX];
    long long range_start; /* Content-Range's first byte; -1 when none */
    long long range_total; /* Content-Range's total after "bytes *" (a 416's); -1: none */
    int fail;              /* a callback's own failure (-ENOSPC, -EFBIG, -EPROTO, -ECANCELED) */
    baton_err_t err;       /* and its words */
};

static void header_value(const char *line, size_t n, char *buf, size_t len)
{
    const char *v = memchr(line, ':', n);
    if (!v)
        return;
    v++;
    while (v < line + n && (*v == ' ' || *v == '\t'))
        v++;
    size_t k = (size_t)(line + n - v);
    while (k && (v[k - 1] == '\r' || v[k - 1] == '\n' || v[k - 1] == ' '))
        k--;
    if (k >= len)
        k = 0; /* too long to be one we would send back */
    memcpy(buf, v, k);
    buf[k] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nitems, void *userdata)
{
    struct attempt *a = userdata;
    size_t n = size * nitems;
    if (n >= 5 && !strncmp(line, "HTTP/", 5)) { /* a new response (after a redirect): its own */
        a->etag[0] = a->last_modified[0] = a->date[0] = '\0';
        a->range_start = a->range_total = -1;
    } else if (n > 5 && !strncasecmp(line, "ETag:", 5)) {
        header_value(line, n, a->etag, sizeof(a->etag));
    } else if (n > 14 && !strncasecmp(line, "Last-Modified:", 14)) {
        header_value(line, n, a->last_modified, sizeof(a->last_modified));
    } else if (n > 5 && !strncasecmp(line, "Date:", 5)) {
        header_value(line, n, a->date, sizeof(a->date));
    } else if (n > 14 && !strncasecmp(line, "Content-Range:", 14)) {
        char v[128] = "";
        unsigned long long start;
        header_value(line, n, v, sizeof(v));
        if (sscanf(v, "bytes %llu-", &start) == 1)
            a->range_start = (long long)start;
        else if (sscanf(v, "bytes */%llu", &start) == 1)
            a->range_total = (long long)start;
    }
    return n;
}

/* The response's validator, for the next attempt's If-Range: a strong ETag, else a
 * Last-Modified that is strong (RFC 9110 13.1.5: at least a second before the response's
 * Date, so that a file replaced within that second cannot share it); else none, and the next
 * attempt starts over. */
static const char *strong_validator(const struct attempt *a)
{
    if (a->etag[0] && strncmp(a->etag, "W/", 2))
        return a->etag;
    time_t modified = a->last_modified[0] ? curl_getdate(a->last_modified, NULL) : -1;
    time_t date = a->date[0] ? curl_getdate(a->date, NULL) : -1;
    return modified >= 0 && date >= 0 && date - modified >= 1 ? a->last_modified : "";
}

/* Keeps the validator beside the partial file, or none. */
static int save_validator(struct attempt *a, baton_err_t *err)
{
    const char *v = strong_validator(a);
    unlink(a->p->validator);
    if (!*v)
        return 0;
    int fd = fs_create_new(a->p->validator, O_WRONLY, 0600, err);
    if (fd < 0)
        return fd;
    ssize_t n = write(fd, v, strlen(v));
    int e = n < 0 ? errno : EIO;
    close(fd);
    return n == (ssize_t)strlen(v)
               ? 0
               : baton_err_set(err, -e, "write %s: %s", a->p->validator, strerror(e));
}

/* Room for `more` bytes in the staging folder, with STAGE_MARGIN to spare. */
static int room_for(struct attempt *a, uint64_t more)
{
    struct statvfs vfs;
    if (fstatvfs(a->fd, &vfs) < 0)
        return 0;
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    return avail >= more + STAGE_MARGIN
               ? 0
               : baton_err_set(&a->err, -ENOSPC,
                               "%.200s: %" PRIu64 " bytes to come, %" PRIu64
                               " MiB free in the staging folder",
                               a->p->url, more, avail >> 20);
}

/* The first byte of the body: a 206 goes on from `from` (the Content-Range must say so), a 200
 * is the whole file from its start (the file changed, or the server ignores ranges). */
static int body_begins(struct attempt *a, CURL *c)
{
    long code = 0;
    curl_off_t len = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
    if (code == 206 && a->range_start != (long long)a->from)
        return baton_err_set(&a->err, -EPROTO,
                             "%.200s: the server answered bytes from %lld where %" PRIu64
                             " were asked",
                             a->p->url, a->range_start, a->from);
    if (code != 206)
        a->from = 0;
    else
        a->p->resumed = true;
    /* The file ends where this body goes on (the offset too: a validator that could not be
     * used set `from` back to 0 after the file was opened at its end). */
    if (ftruncate(a->fd, (off_t)a->from) < 0 || lseek(a->fd, (off_t)a->from, SEEK_SET) < 0)
        return baton_err_set(&a->err, -errno, "truncate %s: %s", a->p->partial, strerror(errno));
    a->held = a->from;
    uint64_t size = len >= 0 ? a->from + (uint64_t)len : 0;
    if (size > STAGE_SIZE_MAX)
        return baton_err_set(&a->err, -EFBIG, "%.200s is %" PRIu64 " bytes, more than %llu",
                             a->p->url, size, STAGE_SIZE_MAX);
    int r;
    if (size && (r = room_for(a, size - a->from)) < 0)
        return r;
    if (code != 206 && (r = save_validator(a, &a->err)) < 0)
        return r;
    set_held(a->p, a->held, size);
    a->started = true;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct attempt *a = userdata;
    size_t n = size * nmemb;
    if (!a->started && (a->fail = body_begins(a, a->c)) < 0)
        return 0; /* curl ends the transfer: CURLE_WRITE_ERROR */
    if (a->held + n > STAGE_SIZE_MAX) {
        a->fail = baton_err_set(&a->err, -EFBIG, "%.200s is more than %llu bytes", a->p->url,
                                STAGE_SIZE_MAX);
        return 0;
    }
    /* A body of unknown length (chunked) is checked for room as it comes: every 8 MiB. */
    if ((a->held + n) >> 23 != a->held >> 23 && (a->fail = room_for(a, n)) < 0)
        return 0;
    for (size_t done = 0; done < n;) {
        ssize_t w = write(a->fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            a->fail =
                baton_err_set(&a->err, -errno, "write %s: %s", a->p->partial, strerror(errno));
            return 0;
        }
        done += (size_t)w;
    }
    a->held += n;
    set_held(a->p, a->held, 0);
    return n;
}

static int on_xfer(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct attempt *a = userdata;
    if (!should_stop(a->p))
        return 0;
    a->fail = baton_err_set(&a->err, -ECANCELED, "%.200s: stopped: %s", a->p->url,
                            a->p->cancel ? "the agent stops, or another artifact was asked for"
                                         : "no coordinator asked for " PULL_ORPHAN_TEXT);
    return 1;
}

static bool retryable_http(long code)
{
    return code >= 500 || code == 408 || code == 429;
}

static bool retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_OUT_OF_MEMORY:
        return false;
    default:
        return true; /* refused, reset, stalled, cut short, a name not resolved yet */
    }
}

static void set_options(struct attempt *a, struct curl_slist **headers, char *range, size_t len)
{
    const agent_config_t *cfg = a->p->cfg;
    CURL *c = a->c;
    curl_easy_setopt(c, CURLOPT_URL, a->p->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)PULL_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)PULL_STALL_S);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "baton-agent/" BATON_VERSION);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)STAGE_SIZE_MAX);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, a);
    /* The configured proxy, or none: never one from the environment (http_proxy and the like
     * are not the agent's configuration). */
    curl_easy_setopt(c, CURLOPT_PROXY, cfg->pull_proxy ? cfg->pull_proxy : "");
    if (cfg->pull_ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->pull_ca_file);
    if (cfg->pull_max_bytes_per_sec)
        curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)cfg->pull_max_bytes_per_sec);
    /* Going on from what it has, only while the file is the one it came from. */
    char v[PULL_VALIDATOR_MAX] = "";
    int fd = a->from ? open(a->p->validator, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    if (fd >= 0) {
        ssize_t n = read(fd, v, sizeof(v) - 1);
        v[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    char hdr[PULL_VALIDATOR_MAX + 16];
    if (a->from && *v && !strpbrk(v, "\r\n")) {
        snprintf(range, len, "%" PRIu64 "-", a->from);
        snprintf(hdr, sizeof(hdr), "If-Range: %s", v);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
        *headers = curl_slist_append(NULL, hdr);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
    } else {
        a->from = 0; /* nothing to go on from that could be checked: from the start */
    }
}

/* One attempt. 0: the body came whole (a->held bytes); -EAGAIN: worth another attempt;
 * else the pull fails. */
static int attempt(pull_t *p, CURL *c, baton_err_t *err)
{
    struct attempt a = {.p = p, .c = c, .range_start = -1, .range_total = -1};
    a.fd = open(p->partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct stat sb;
    if (a.fd < 0 || fstat(a.fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        int r = baton_err_set(err, a.fd < 0 ? -errno : -EINVAL, "open %s: %s", p->partial,
                              a.fd < 0 ? strerror(errno) : "not a file");
        if (a.fd >= 0)
            close(a.fd);
        return r;
    }
    a.from = (uint64_t)sb.st_size;
    if (lseek(a.fd, (off_t)a.from, SEEK_SET) < 0) {
        close(a.fd);
        return baton_err_set(err, -errno, "seek %s: %s", p->partial, strerror(errno));
    }
    set_held(p, a.from, 0);
    struct curl_slist *headers = NULL;
    char range[32];
    curl_easy_reset(c);
    set_options(&a, &headers, range, sizeof(range));
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    close(a.fd);
    if (a.fail < 0) {
        *err = a.err;
        /* A range that did not fit (a server that changed its mind): start over. */
        if (a.fail == -EPROTO)
            unlink(p->validator);
        return a.fail == -EPROTO ? -EAGAIN : a.fail;
    }
    if (rc == CURLE_OK && !a.started && truncate(p->partial, 0) < 0) /* an empty body */
        return baton_err_set(err, -errno, "truncate %s: %s", p->partial, strerror(errno));
    if (rc == CURLE_OK) {
        set_held(p, a.held, a.held);
        return 0;
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR && code == 416 && a.from &&
        a.range_total == (long long)a.from) {
        set_held(p, a.from, a.from);
        return 0; /* it had the whole file already (the agent stopped before checking it) */
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR && code == 416) {
        /* What it had does not fit the file there now: start over. */
        unlink(p->validator);
        if (truncate(p->partial, 0) < 0)
            return baton_err_set(err, -errno, "truncate %s: %s", p->partial, strerror(errno));
        return baton_err_set(err, -EAGAIN, "%.200s: HTTP 416 for the rest from byte %" PRIu64,
                             p->url, a.from);
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR)
        return baton_err_set(err,
                             retryable_http(code) ? -EAGAIN
                             : code == 404        ? -ENOENT
                                                  : -EIO,
                             "%.200s: HTTP %ld", p->url, code);
    if (rc == CURLE_SSL_CACERT_BADFILE && p->cfg->pull_ca_file)
        return baton_err_set(err, -EIO, "%.200s: the CA file %s (pull.ca_file) cannot be read",
                             p->url, p->cfg->pull_ca_file);
    return baton_err_set(err, retryable_curl(rc) ? -EAGAIN : -EIO, "%.200s: %s", p->url,
                         curl_easy_strerror(rc));
}

/* The whole file: its digest checked, then kept as a pushed one is (stage_keep). */
static int finish(pull_t *p, baton_err_t *err)
{
    char got[DIGEST_HEX_LEN + 1];
    uint64_t size = 0;
    int r = digest_file(p->partial, got, &size, err);
    if (r == -ENOENT) /* removed under it (a commit prunes the staging folder): again */
        return baton_err_set(err, -EAGAIN, "%s vanished before its digest was checked", p->partial);
    if (r < 0)
        return r;
    if (strcmp(got, p->sha256)) {
        unlink(p->partial);
        unlink(p->validator);
        /* Put together from two attempts: maybe two files behind one validator. Once more,
         * whole, before the mirror is blamed. */
        if (p->resumed && !p->whole_again) {
            p->whole_again = true;
            p->resumed = false;
            return baton_err_set(err, -EAGAIN,
                                 "%.200s: the file put together from two attempts has sha256 "
                                 "%.12s…, not %.12s…; fetching it again whole",
                                 p->url, got, p->sha256);
        }
        return baton_err_set(err, -EBADMSG, "%.200s has sha256 %s, expected %s (%" PRIu64 " bytes)",
                             p->url, got, p->sha256, size);
    }
    int fd = open(p->partial, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return baton_err_set(err, -errno, "open %s: %s", p->partial, strerror(errno));
    unlink(p->validator);
    return stage_keep(p->svc, fd, p->partial, p->final, size, err);
}

/* Sleeps ms, or less when told to stop. True when it must stop. */
static bool pause_or_stop(pull_t *p, uint64_t ms)
{
    uint64_t until = mono_ms() + ms;
    pthread_mutex_lock(&p->lock);
    while (!p->cancel && mono_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t left = until - mono_ms();
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->changed, &p->lock, &ts);
    }
    bool stop = p->cancel;
    pthread_mutex_unlock(&p->lock);
    return stop || should_stop(p);
}

static void *pull_main(void *arg)
{
    pull_t *p = arg;
    baton_err_t err = {0};
    CURL *c = curl_easy_init();
    int r = c ? -EAGAIN : baton_err_set(&err, -ENOMEM, "curl: out of memory");
    uint64_t pause = PULL_BACKOFF_MS;
    for (unsigned k = 1; r == -EAGAIN && k <= PULL_TRIES; k++) {
        if (k > 1) {
            pthread_mutex_lock(&p->lock);
            p->err = err; /* why it tries again, for the progress line */
            pthread_mutex_unlock(&p->lock);
            if (pause_or_stop(p, pause)) {
                baton_err_t last = err;
                r = baton_err_set(&err, -ECANCELED, "stopped before attempt %u (the last: %s)", k,
                                  last.msg);
                break;
            }
            pause = pause * 2 > PULL_BACKOFF_MAX_MS ? PULL_BACKOFF_MAX_MS : pause * 2;
        }
        pthread_mutex_lock(&p->lock);
        p->attempt = k;
        pthread_mutex_unlock(&p->lock);
        baton_err_t e = {0};
        r = attempt(p, c, &e);
        if (r == 0)
            r = finish(p, &e);
        if (r < 0)
            err = e;
    }
    if (r == -EAGAIN)
        baton_err_prefix(&err, "%u attempts failed; the last", PULL_TRIES);
    /* What it got stays for the next try only where one may go on from it: stopped, or the
     * mirror away for now. A 404, a full disk, a wrong file: nothing is left to take room. */
    if (r < 0 && r != -ECANCELED && r != -EAGAIN) {
        unlink(p->partial);
        unlink(p->validator);
    }
    curl_easy_cleanup(c);
    /* Its end in the agent's journal, whether anyone still asks or not. */
    if (r < 0)
        log_event(p->svc->name, NULL, "stage", r == -ECANCELED ? 5 : 4, "pull: %s", err.msg);
    else
        log_event(p->svc->name, NULL, "stage", 6,
                  "pulled %.200s (%" PRIu64 " bytes), sha256 verified", p->url, p->size);
    pthread_mutex_lock(&p->lock);
    p->state = r == 0 ? PULL_DONE : PULL_FAILED;
    p->err = err;
    p->ended_ms = mono_ms();
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

void pull_destroy(pull_t **p_p)
{
    pull_t *p = p_p ? *p_p : NULL;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->cancel = true;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
    *p_p = NULL;
}

static int pull_start(pull_t **ret, const agent_config_t *cfg, const svc_config_t *svc,
                      const Baton__Stage *req, const char *final, baton_err_t *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/staging/%s", cfg->state_dir, svc->name);
    int r = fs_mkdir_p(dir, 0700, err);
    if (r < 0)
        return r;
    pull_t *p = calloc(1, sizeof(*p));
    if (!p)
        return baton_err_set(err, -ENOMEM, "out of memory");
    p->cfg = cfg;
    p->svc = svc;
    snprintf(p->url, sizeof(p->url), "%s", req->url);
    snprintf(p->sha256, sizeof(p->sha256), "%s", req->sha256);
    snprintf(p->final, sizeof(p->final), "%s", final);
    snprintf(p->partial, sizeof(p->partial), "%s.pull", final);
    snprintf(p->validator, sizeof(p->validator), "%s.pull.validator", final);
    p->state = PULL_RUNNING;
    p->asked_ms = mono_ms();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, &ca);
    pthread_condattr_destroy(&ca);
    probe_curl_setup();
    if ((r = pthread_create(&p->thread, NULL, pull_main, p)) != 0) {
        pthread_cond_destroy(&p->changed);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return baton_err_set(err, -r, "pull: thread: %s", strerror(r));
    }
    *ret = p;
    return 0;
}

static void mib(char *buf, size_t len, uint64_t bytes)
{
    snprintf(buf, len, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

/* An end is handed to an ask only when a coordinator was there for it: one asked within
 * PULL_ORPHAN_MS before it (a coordinator that waits asks every BATON_PULL_ASK_MAX_MS, later on
 * a loaded machine) and asks within PULL_ORPHAN_MS after. Else it is no one's (a Ctrl-C, a
 * coordinator gone): a failure is not reported to a later coordinator, and a kept file is looked
 * for again (a commit may have pruned it since); the ask starts afresh. */
static bool ended_unseen(pull_t *p)
{
    pthread_mutex_lock(&p->lock);
    bool r = p->state != PULL_RUNNING && (p->ended_ms > p->asked_ms + PULL_ORPHAN_MS ||
                                          mono_ms() > p->ended_ms + PULL_ORPHAN_MS);
    pthread_mutex_unlock(&p->lock);
    return r;
}

int pull_ask(pull_t **p_p, const agent_config_t *cfg, const svc_config_t *svc,
             const Baton__Stage *req, Baton__Result *res, char *line, size_t len, baton_err_t *err)
{
    *line = '\0';
    if (!artifact_url_valid(req->url))
        return baton_err_set(err, -EINVAL,
                             "stage: url must be http:// or https://, a host, printable, at most "
                             "%d characters",
                             ARTIFACT_URL_MAX);
    if (!digest_hex_valid(req->sha256))
        return baton_err_set(err, -EINVAL, "stage: sha256 must be 64 lower-case hex digits");
    char final[PATH_MAX];
    int r = staged_path(cfg, svc->name, req->sha256, final, sizeof(final), err);
    if (r < 0)
        return r;
    pull_t *p = *p_p;
    if (p && (strcmp(p->url, req->url) || strcmp(p->sha256, req->sha256) || ended_unseen(p)))
        pull_destroy(p_p), p = NULL; /* another artifact now: this one stops, its file stays; or
                                      * it ended while no one asked: afresh */
    struct stat sb;
    if (!p && stat(final, &sb) == 0 && S_ISREG(sb.st_mode)) {
        res->staged_bytes = res->stage_size = (uint64_t)sb.st_size;
        snprintf(line, len, "held already (sha256 verified on arrival)");
        return 0; /* kept only after its digest was checked, under that digest */
    }
    if (!p && (r = pull_start(p_p, cfg, svc, req, final, err)) < 0)
        return r;
    p = *p_p;

    /* Answered at once: the Stage front serves every service and coordinator in turn. */
    pthread_mutex_lock(&p->lock);
    p->asked_ms = mono_ms();
    pull_state_t state = p->state;
    res->staged_bytes = p->held;
    res->stage_size = p->size;
    res->stage_pulling = state == PULL_RUNNING;
    char held[32], size[32];
    mib(held, sizeof(held), p->held);
    mib(size, sizeof(size), p->size);
    if (state == PULL_RUNNING)
        snprintf(line, len, "pulling %.200s: %s of %s (attempt %u of %d)%s%s", p->url, held,
                 p->size ? size : "?", p->attempt ? p->attempt : 1, PULL_TRIES,
                 p->err.msg[0] ? "; the last failed: " : "", p->err.msg);
    else if (state == PULL_DONE)
        snprintf(line, len, "pulled from %.200s (%s), sha256 verified", p->url, size);
    else
        *err = p->err;
    pthread_mutex_unlock(&p->lock);
    if (state == PULL_RUNNING)
        return 0;
    r = state == PULL_DONE ? 0 : (err->code ? err->code : -EIO);
    pull_destroy(p_p);
    return r;
}
