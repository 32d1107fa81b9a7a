/* Unit tests for the agent's pull of an artifact by URL (agent/artifact/pull.c) against a small
 * HTTP server in the process that honours Range only with a matching If-Range, as nginx does: a
 * whole pull kept under its digest; a transfer cut short goes on from what it had (Range and
 * If-Range asked); a file changed on the server comes whole (200) and is never spliced; a 404
 * and a wrong digest end the pull at once with nothing kept; a 503 is tried again; the bandwidth
 * cap holds a pull back. pull.sh runs
 * the same against Debian's nginx on the test cluster. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "digest.h"
#include "pull.h"

#define FILE_SIZE (300 * 1024)
#define MAX_CONNS 8

/* What one connection gets: a status (0: the file, honouring Range with a matching If-Range),
 * the file served (0 or 1), and how many bytes of its body before the connection is cut (0:
 * all). */
struct answer {
    int status;
    int file;
    size_t cut;
    const char *etag; /* NULL: the file's own; "": none sent */
};

struct server {
    int fd, port;
    uint8_t *files[2];
    size_t sizes[2];
    const char *etags[2];
    struct answer answers[MAX_CONNS];
    int n_answers;
    /* What each request asked. */
    char range[MAX_CONNS][64], if_range[MAX_CONNS][64];
    int served;
    pthread_t thread;
};

static void header(const char *req, const char *name, char *out, size_t len)
{
    *out = '\0';
    const char *h = strcasestr(req, name);
    if (!h)
        return;
    h += strlen(name);
    size_t n = strcspn(h, "\r\n");
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), h);
}

static void send_all(int c, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(c, p, len);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void answer_one(struct server *s, int c, int k)
{
    char req[4096] = "";
    size_t got = 0;
    while (got < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
        if (n <= 0)
            return;
        got += (size_t)n;
        req[got] = '\0';
    }
    header(req, "\r\nRange: ", s->range[k], sizeof(s->range[k]));
    header(req, "\r\nIf-Range: ", s->if_range[k], sizeof(s->if_range[k]));
    const struct answer *a = &s->answers[k];
    const char *etag = a->etag ? a->etag : s->etags[a->file];
    char head[512], etag_line[128] = "";
    if (*etag)
        snprintf(etag_line, sizeof(etag_line), "ETag: %s\r\n", etag);
    if (a->status == 416) { /* as nginx says it: the file's length */
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%zu\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n",
                         s->sizes[a->file]);
        send_all(c, head, (size_t)n);
        return;
    }
    if (a->status) {
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 %d Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                         a->status);
        send_all(c, head, (size_t)n);
        return;
    }
    size_t from = 0, size = s->sizes[a->file];
    bool partial = s->range[k][0] && *etag && !strcmp(s->if_range[k], etag) &&
                   sscanf(s->range[k], "bytes=%zu-", &from) == 1 && from < size;
    if (!partial)
        from = 0;
    int n = partial ? snprintf(head, sizeof(head),
                               "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\n"
                               "Content-Range: bytes %zu-%zu/%zu\r\n%s"
                               "Connection: close\r\n\r\n",
                               size - from, from, size - 1, size, etag_line)
                    : snprintf(head, sizeof(head),
                               "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n%s"
                               "Connection: close\r\n\r\n",
                               size, etag_line);
    send_all(c, head, (size_t)n);
    size_t body = size - from;
    send_all(c, s->files[a->file] + from, a->cut && a->cut < body ? a->cut : body);
}

static void *serve(void *u)
{
    struct server *s = u;
    for (int k = 0; k < s->n_answers; k++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        answer_one(s, c, k);
        s->served = k + 1;
        close(c);
    }
    return NULL;
}

static void server_start(struct server *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

/* Every answer given: the thread ends; else the listening socket is shut, which ends it. */
static void server_stop(struct server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

struct fixture {
    char dir[64];
    agent_config_t cfg;
    svc_config_t svc;
    struct server srv;
    uint8_t files[2][FILE_SIZE];
    char sha[2][DIGEST_HEX_LEN + 1];
    char url[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/baton-test-pull-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->cfg.state_dir = f->dir;
    f->svc.name = "gamesrv";
    f->svc.artifact_scripts = true; /* the artifact is a script: no ELF to build */
    for (int i = 0; i < 2; i++) {
        for (size_t k = 0; k < FILE_SIZE; k++)
            f->files[i][k] = (uint8_t)('a' + (k * 7 + (size_t)i * 13) % 26);
        memcpy(f->files[i], "#!/bin/sh\n", 10);
        digest_t d;
        digest_init(&d);
        digest_update(&d, f->files[i], FILE_SIZE);
        digest_final_hex(&d, f->sha[i]);
        f->srv.files[i] = f->files[i];
        f->srv.sizes[i] = FILE_SIZE;
    }
    f->srv.etags[0] = "\"etag-a\"";
    f->srv.etags[1] = "\"etag-b\"";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Serves `answers` and pulls file `want` until the pull ends; its result, err filled. */
static int pull_all(struct fixture *f, const struct answer *answers, int n, int want,
                    baton_err_t *err)
{
    memcpy(f->srv.answers, answers, sizeof(*answers) * (size_t)n);
    f->srv.n_answers = n;
    server_start(&f->srv);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/gamesrv.bin", f->srv.port);
    Baton__Stage req = BATON__STAGE__INIT;
    req.service = "gamesrv";
    req.sha256 = f->sha[want];
    req.url = f->url;
    pull_t *p = NULL;
    int r;
    /* Asked as a coordinator does: again and again, a little apart, for a minute at most. */
    for (int asks = 0;; asks++) {
        if (asks)
            usleep(50 * 1000);
        Baton__Result res = BATON__RESULT__INIT;
        char line[512];
        r = pull_ask(&p, &f->cfg, &f->svc, &req, &res, line, sizeof(line), err);
        if (getenv("PULL_DEBUG"))
            fprintf(stderr, "ask %d: %d %s %s\n", asks, r, line, err->msg);
        assert_true(asks < 1200); /* a minute */
        if (r < 0 || !res.stage_pulling) {
            if (r == 0) {
                assert_int_equal(res.staged_bytes, FILE_SIZE);
                assert_int_equal(res.stage_size, FILE_SIZE);
                assert_non_null(strstr(line, "sha256 verified"));
            }
            break;
        }
    }
    assert_null(p); /* an ended pull is freed */
    server_stop(&f->srv);
    return r;
}

static char *staged(struct fixture *f, int which, const char *suffix)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/staging/gamesrv/%s%s", f->dir, f->sha[which], suffix);
    return path;
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The kept file is file `which`, byte for byte, and nothing of the pull is left. */
static void assert_kept(struct fixture *f, int which)
{
    char hex[DIGEST_HEX_LEN + 1];
    uint64_t size = 0;
    baton_err_t err = {0};
    assert_int_equal(digest_file(staged(f, which, ""), hex, &size, &err), 0);
    assert_string_equal(hex, f->sha[which]);
    assert_int_equal(size, FILE_SIZE);
    assert_false(exists(staged(f, which, ".pull")));
    assert_false(exists(staged(f, which, ".pull.validator")));
}

static void test_whole(void **state)
{
    struct fixture *f = *state;
    baton_err_t err = {0};
    struct answer a[] = {{0, 0, 0, NULL}};
    if (pull_all(f, a, 1, 0, &err) < 0)
        fail_msg("%s", err.msg);
    assert_kept(f, 0);
    assert_string_equal(f->srv.range[0], ""); /* nothing held: no Range */
}

/* Cut short twice: each attempt asks for the rest with the validator it kept. */
static void test_resume(void **state)
{
    struct fixture *f = *state;
    baton_err_t err = {0};
    struct answer a[] = {{0, 0, 100000, NULL}, {0, 0, 50000, NULL}, {0, 0, 0, NULL}};
    if (pull_all(f, a, 3, 0, &err) < 0)
        fail_msg("%s", err.msg);
    assert_kept(f, 0);
    assert_int_equal(f->srv.served, 3);
    assert_string_equal(f->srv.range[1], "bytes=100000-");
    assert_string_equal(f->srv.if_range[1], "\"etag-a\"");
    assert_string_equal(f->srv.range[2], "bytes=150000-");
    assert_string_equal(f->srv.if_range[2], "\"etag-a\"");
}

/* The file changed on the server after the first attempt: If-Range makes it come whole, and
 * what is kept is the new file, not the old one's start with the new one's end. */
static void test_changed(void **state)
{
    struct fixture *f = *state;
    baton_err_t err = {0};
    struct answer a[] = {{0, 0, 100000, NULL}, {0, 1, 0, NULL}};
    if (pull_all(f, a, 2, 1, &err) < 0)
        fail_msg("%s", err.msg);
    assert_kept(f, 1);
    assert_string_equal(f->srv.range[1], "bytes=100000-");
    assert_string_equal(f->srv.if_range[1], "\"etag-a\"");
}

/* A 404 ends the pull at once (no attempt more), naming the URL. */
static void test_not_found(void **state)
{
    struct fixture *f = *state;
    baton_err_t err = {0};
    struct answer a[] = {{404, 0, 0, NULL}, {0, 0, 0, NULL}};
    assert_true(pull_all(f, a, 2, 0, &err) < 0);
    char want[160];
    snprintf(want, sizeof(want), "%s: HTTP 404", f->url);
    assert_string_equal(err.msg, want);
    assert_int_equal(f->srv.served, 1);
    assert_false(exists(staged(f, 0, "")));
    assert_false(exists(staged(f, 0, ".pull"))); /* nothing left to take room */
}

/* What came is not the artifact: refused with both digests, nothing kept, nothing left. */
static void test_wrong_digest(void **state)
{
    struct fixture *f = *state;
    baton_err_t err = {0};
    struct answer a[] = {{0, 1, 0, NULL}};
    assert_int_equal(pull_all(f, a, 1, 0, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, f->sha[1]));
    assert_non_null(strstr(err.msg, f->sha[0]));
    assert_false(exists(staged(f, 0, "")));
    assert_false(exists(staged(f, 0, ".pull")));
}

/* A server that is busy for a moment (503) is tried again after a pause. */
static void test_retry(void **state)
{
    struct fixture *f = *state;
    baton_err_t err = {0};
    struct answer a[] = {{503, 0, 0, NULL}, {0, 0, 0, NULL}};
    if (pull_all(f, a, 2, 0, &err) < 0)
        fail_msg("%s", err.msg);
    assert_kept(f, 0);
    assert_int_equal(f->srv.served, 2);
}

/* A weak ETag (and no Last-Modified) cannot tell two files apart: no Range is asked on the next
 * attempt, the file comes whole. */
static void test_weak_validator(void **state)
{
    struct fixture *f = *state;
    baton_err_t err = {0};
    struct answer a[] = {{0, 0, 100000, "W/\"weak\""}, {0, 0, 0, "W/\"weak\""}};
    if (pull_all(f, a, 2, 0, &err) < 0)
        fail_msg("%s", err.msg);
    assert_kept(f, 0);
    assert_string_equal(f->srv.range[1], "");
}

/* The agent stopped after the last byte, before checking it: the next attempt's Range is past
 * the end (416, the file's length is what it holds), and what it has is checked as it is. */
static void test_whole_already(void **state)
{
    struct fixture *f = *state;
    baton_err_t err = {0};
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/staging", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof(dir), "%s/staging/gamesrv", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    FILE *fp = fopen(staged(f, 0, ".pull"), "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(f->files[0], 1, FILE_SIZE, fp), FILE_SIZE);
    fclose(fp);
    fp = fopen(staged(f, 0, ".pull.validator"), "w");
    assert_non_null(fp);
    fputs("\"etag-a\"", fp);
    fclose(fp);
    struct answer a[] = {{416, 0, 0, NULL}};
    if (pull_all(f, a, 1, 0, &err) < 0)
        fail_msg("%s", err.msg);
    assert_kept(f, 0);
    assert_int_equal(f->srv.served, 1);
    char want[32];
    snprintf(want, sizeof(want), "bytes=%d-", FILE_SIZE);
    assert_string_equal(f->srv.range[0], want);
}

/* Two files behind one validator (a server that reuses ETags): what was put together fails its
 * digest, so it is fetched once more whole, and that one is kept. */
static void test_spliced_then_whole(void **state)
{
    struct fixture *f = *state;
    baton_err_t err = {0};
    struct answer a[] = {{0, 1, 100000, "\"same\""}, {0, 0, 0, "\"same\""}, {0, 0, 0, "\"same\""}};
    if (pull_all(f, a, 3, 0, &err) < 0)
        fail_msg("%s", err.msg);
    assert_kept(f, 0);
    assert_string_equal(f->srv.range[1], "bytes=100000-"); /* spliced: file 1's start, 0's end */
    assert_string_equal(f->srv.range[2], "");              /* then whole */
}

/* The agent's bandwidth cap (pull.max_bytes_per_sec): a second into a pull of 3 MiB capped at
 * 256 KiB/s, less than 2.5 MiB has come (libcurl keeps the average under the cap, after a first
 * read of up to ~1.6 MB; uncapped, loopback brings it all at once; a loaded machine can only
 * make it slower). Then the pull is stopped, its partial file kept. */
static void test_rate_cap(void **state)
{
    struct fixture *f = *state;
    const size_t big = 3 * 1024 * 1024;
    uint8_t *file = malloc(big);
    for (size_t k = 0; k < big; k++)
        file[k] = (uint8_t)('a' + k % 26);
    f->srv.files[0] = file;
    f->srv.sizes[0] = big;
    f->srv.answers[0] = (struct answer){0, 0, 0, NULL};
    f->srv.n_answers = 1;
    f->cfg.pull_max_bytes_per_sec = 256 * 1024;
    server_start(&f->srv);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/gamesrv.bin", f->srv.port);
    Baton__Stage req = BATON__STAGE__INIT;
    req.service = "gamesrv";
    req.sha256 = f->sha[0]; /* never reached */
    req.url = f->url;
    pull_t *p = NULL;
    Baton__Result res = BATON__RESULT__INIT;
    char line[512];
    baton_err_t err = {0};
    /* Asked every 50 ms for a second. */
    uint64_t t0 = mono_ms();
    do {
        usleep(50 * 1000);
        assert_int_equal(pull_ask(&p, &f->cfg, &f->svc, &req, &res, line, sizeof(line), &err), 0);
    } while (mono_ms() - t0 < 1000 && res.stage_pulling);
    assert_true(res.stage_pulling);
    if (res.staged_bytes >= big * 5 / 6)
        fail_msg("%llu bytes after a second at 256 KiB/s", (unsigned long long)res.staged_bytes);
    pull_destroy(&p);
    assert_null(p);
    assert_true(exists(staged(f, 0, ".pull"))); /* stopped: kept for the next try */
    server_stop(&f->srv);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weak_validator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_already, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spliced_then_whole, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
