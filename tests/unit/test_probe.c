/* Unit tests for the agent's health probe (agent/probes/probe.c) against real sockets in the
 * process: a port nothing listens on is "refused" (the schedule's fast case), an answer that is not
 * 2xx is "not healthy" with what it said, and the pauses between probes: every 10 ms while refused,
 * doubling up to the interval once the service answers. The real services are the cluster
 * tests' (verify in rollout.sh, faults.sh); how soon a start is seen is tests/bench (overhead). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "probe.h"

/* A loopback port that nothing listens on: bound, its number read, closed. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

struct server {
    int fd, port;
    const char *answer; /* what each connection gets back, after its request */
    int conns;          /* connections to serve, then the thread ends */
    pthread_t thread;
};

static void *serve(void *u)
{
    struct server *s = u;
    for (int i = 0; i < s->conns; i++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        char req[2048];
        ssize_t n = read(c, req, sizeof(req)); /* one read holds curl's small GET */
        if (n > 0 && write(c, s->answer, strlen(s->answer)) < 0)
            n = -1;
        close(c);
    }
    return NULL;
}

static void server_start(struct server *s, const char *answer, int conns)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->fd, 4), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    s->answer = answer;
    s->conns = conns;
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void test_tcp(void **state)
{
    (void)state;
    char hostport[64], why[512] = "";
    snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", free_port());
    svc_config_t svc = {.health_tcp = hostport};
    assert_int_equal(probe(&svc, why, sizeof(why)), -ECONNREFUSED);
    assert_non_null(strstr(why, "refused"));
    assert_non_null(strstr(why, hostport));

    struct server s;
    server_start(&s, "", 1);
    snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", s.port);
    assert_int_equal(probe(&svc, why, sizeof(why)), 0);
    server_stop(&s);
}

static void test_http(void **state)
{
    (void)state;
    char url[128], why[512] = "";
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthcheck", free_port());
    svc_config_t svc = {.health_http = url};
    assert_int_equal(probe(&svc, why, sizeof(why)), -ECONNREFUSED);
    assert_non_null(strstr(why, url));

    /* Listening, not ready: an answer, so not "refused", and what it said is kept. */
    struct server s;
    server_start(&s,
                 "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 14\r\n"
                 "Connection: close\r\n\r\nwarming up\r\n\r\n",
                 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthcheck", s.port);
    int r = probe(&svc, why, sizeof(why));
    server_stop(&s);
    assert_int_equal(r, -EIO);
    assert_non_null(strstr(why, "answered 503: \"warming up\""));

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n", 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthcheck", s.port);
    r = probe(&svc, why, sizeof(why));
    server_stop(&s);
    assert_int_equal(r, 0);

    /* Something that accepts and closes without a word is not refused: it answered (badly). */
    server_start(&s, "", 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthcheck", s.port);
    r = probe(&svc, why, sizeof(why));
    server_stop(&s);
    assert_int_equal(r, -EIO);
}

static void test_schedule(void **state)
{
    (void)state;
    /* Nothing listens: every 10 ms, however long it has been. */
    uint64_t p = 0;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(p = probe_next_pause(-ECONNREFUSED, p, 250), PROBE_REFUSED_PAUSE_MS);

    /* It answers, not healthy: 10, 20, 40, ... up to the interval, and stays there. */
    uint64_t want[] = {10, 20, 40, 80, 160, 250, 250};
    p = 0;
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
        assert_int_equal(p = probe_next_pause(-EIO, p, 250), want[i]);
    /* Anything but a refusal backs off: no answer in time, a host that cannot be reached. */
    assert_int_equal(probe_next_pause(-EIO, 0, 250), 10);
    assert_int_equal(probe_next_pause(-EHOSTUNREACH, 40, 250), 80);
    /* Refused, then answered: the doubling goes on from the last pause (10 -> 20). */
    p = probe_next_pause(-ECONNREFUSED, 0, 250);
    assert_int_equal(probe_next_pause(-EIO, p, 250), 20);

    /* Refused again (a restart under it): back to every 10 ms. */
    assert_int_equal(probe_next_pause(-ECONNREFUSED, 250, 250), PROBE_REFUSED_PAUSE_MS);

    /* An interval shorter than 10 ms bounds both. */
    assert_int_equal(probe_next_pause(-ECONNREFUSED, 0, 5), 5);
    assert_int_equal(probe_next_pause(-EIO, 5, 5), 5);
    /* A long interval: doubling, never past it. */
    assert_int_equal(probe_next_pause(-EIO, 40000, 60000), 60000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
