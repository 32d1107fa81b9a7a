/* Unit tests for the agent's haproxy runtime API client (agent/probes/haproxy.c): `show stat` as
 * haproxy 2.6 (Debian 12) prints it, a server found by backend and name, statuses that count as
 * in service, and answers that are not that CSV. The real haproxy in front of a cluster is
 * tests/cluster/haproxy.sh. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "haproxy.h"

/* Captured from haproxy 2.6.12: `show stat -1 4 -1` with node1 checked (UP) and node2 not. */
static const char stat_26[] =
    "# "
    "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,"
    "status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,"
    "tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,"
    "hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_"
    "abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,"
    "agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_"
    "health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_"
    "tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_"
    "max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_"
    "est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_"
    "sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_"
    "goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_"
    "resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_"
    "backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_"
    "streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n"
    "game,node1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,3,3,129,8,,1,2,1,,0,,2,0,,0,L7OK,200,2,0,0,0,0,"
    "0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check "
    "passed,,2,2,3,,,,127.0.0.1:18081,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,"
    ",,,,,,,,,,,,,,,\n"
    "game,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,no "
    "check,1,1,0,,,155,,,1,2,2,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127."
    "0.0.1:18082,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n";

static void test_stat_parse(void **state)
{
    (void)state;
    haproxy_server_stat_t s;
    baton_err_t err = {0};
    assert_int_equal(haproxy_stat_parse(stat_26, "game", "node1", &s, &err), 0);
    assert_string_equal(s.status, "UP");
    assert_int_equal(s.sessions, 0);
    assert_int_equal(s.queued, 0);
    assert_int_equal(haproxy_stat_parse(stat_26, "game", "node2", &s, &err), 0);
    assert_string_equal(s.status, "no check");
    assert_int_equal(haproxy_stat_parse(stat_26, "game", "node3", &s, &err), -ENOENT);
    assert_string_equal(err.msg, "haproxy has no server game/node3");
    assert_int_equal(haproxy_stat_parse(stat_26, "gam", "node1", &s, &err), -ENOENT);

    /* Columns found by the header, wherever they are; sessions and queue read. */
    const char moved[] = "# svname,pxname,status,scur,qcur\n"
                         "node1,game,DRAIN,7,2\n"
                         "node1,other,UP,0,0\n";
    assert_int_equal(haproxy_stat_parse(moved, "game", "node1", &s, &err), 0);
    assert_string_equal(s.status, "DRAIN");
    assert_int_equal(s.sessions, 7);
    assert_int_equal(s.queued, 2);
}

static void test_stat_refusals(void **state)
{
    (void)state;
    haproxy_server_stat_t s;
    baton_err_t err = {0};
    /* Not the CSV (an error text, a wrong level), a header without status, a count that does
     * not read, a status too long to be one. */
    assert_int_equal(haproxy_stat_parse("Permission denied\n", "game", "node1", &s, &err),
                     -EBADMSG);
    assert_non_null(strstr(err.msg, "not the CSV of show stat: Permission denied"));
    assert_int_equal(haproxy_stat_parse("# pxname,svname,qcur,scur\ngame,node1,0,0\n", "game",
                                        "node1", &s, &err),
                     -EBADMSG);
    assert_string_equal(err.msg, "haproxy: show stat has no column status");
    const char bad[] = "# pxname,svname,qcur,scur,status\ngame,node1,0,-1,UP\n";
    assert_int_equal(haproxy_stat_parse(bad, "game", "node1", &s, &err), -EBADMSG);
    const char cut[] = "# pxname,svname,qcur,scur,status\ngame,node1,0\n";
    assert_int_equal(haproxy_stat_parse(cut, "game", "node1", &s, &err), -ENOENT);
    /* Status first, then a line cut short after it: no column is read that is not there. */
    const char reordered[] = "# status,pxname,svname,qcur,scur\nUP,game\nUP,game,node1\n";
    assert_int_equal(haproxy_stat_parse(reordered, "game", "node1", &s, &err), -ENOENT);
    char longer[200];
    snprintf(longer, sizeof(longer), "# pxname,svname,qcur,scur,status\ngame,node1,0,0,%s\n",
             "UPUPUPUPUPUPUPUPUPUPUPUPUPUPUPUPUPUPUPUP");
    assert_int_equal(haproxy_stat_parse(longer, "game", "node1", &s, &err), -EBADMSG);
}

static void test_status_up(void **state)
{
    (void)state;
    assert_true(haproxy_status_up("UP"));
    assert_true(haproxy_status_up("no check"));
    /* Going down after a failed check, coming up, drained, in maintenance: not in service. */
    assert_false(haproxy_status_up("UP 1/3"));
    assert_false(haproxy_status_up("DOWN 1/2"));
    assert_false(haproxy_status_up("DOWN"));
    assert_false(haproxy_status_up("DRAIN"));
    assert_false(haproxy_status_up("MAINT"));
    assert_false(haproxy_status_up(""));
}

static void test_command_unreachable(void **state)
{
    (void)state;
    char *answer = (char *)"x";
    baton_err_t err = {0};
    assert_int_equal(haproxy_command("/nonexistent/admin.sock", "show info", 1000, &answer, &err),
                     -ENOENT);
    assert_null(answer);
    assert_non_null(strstr(err.msg, "haproxy runtime API /nonexistent/admin.sock"));
    assert_int_equal(haproxy_command("no-port", "show info", 1000, &answer, &err), -EINVAL);
    assert_int_equal(haproxy_command(":9999", "show info", 1000, &answer, &err), -EINVAL);
}

/* A runtime API of the test's own on a UNIX socket: answers one connection with `answer`
 * (len bytes), a byte every `gap_ms` when that is not 0, then closes. */
struct fake {
    int listen_fd;
    const char *answer;
    size_t len;
    int gap_ms;
    char path[64];
    pthread_t thread;
};

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    int c = accept(f->listen_fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char line[256];
    (void)!read(c, line, sizeof(line));
    for (size_t i = 0; i < f->len;) {
        size_t n = f->gap_ms ? 1 : f->len - i;
        if (send(c, f->answer + i, n, MSG_NOSIGNAL) != (ssize_t)n)
            break;
        i += n;
        if (f->gap_ms) {
            struct timespec ts = {0, (long)f->gap_ms * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    close(c);
    return NULL;
}

static void fake_start(struct fake *f)
{
    snprintf(f->path, sizeof(f->path), "/tmp/baton-test-haproxy-%d.sock", (int)getpid());
    unlink(f->path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->listen_fd >= 0);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->listen_fd, 1), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

static void fake_stop(struct fake *f)
{
    shutdown(f->listen_fd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    unlink(f->path);
}

/* What a peer that is not haproxy, or a broken one, may send: a NUL byte, an answer that never
 * ends within the deadline (a byte every 50 ms), one over 1 MiB. */
static void test_command_hostile_peer(void **state)
{
    (void)state;
    char *answer = NULL;
    baton_err_t err = {0};
    struct fake f = {.answer = "# pxname\0,svname\n", .len = 18};
    fake_start(&f);
    assert_int_equal(haproxy_command(f.path, "show stat -1 4 -1", 2000, &answer, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "a NUL byte in the answer"));
    assert_null(answer);
    fake_stop(&f);

    f = (struct fake){.answer = "# pxname,svname,qcur,scur,status\n", .len = 33, .gap_ms = 50};
    fake_start(&f);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(haproxy_command(f.path, "show stat -1 4 -1", 300, &answer, &err), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(err.msg, "no whole answer to 'show stat -1 4 -1' within 300 ms"));
    /* One deadline for the whole answer, not one per byte (33 bytes x 50 ms would be 1.65 s). */
    assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 1500);
    fake_stop(&f);

    size_t big = 1024 * 1024 + 4096;
    char *junk = malloc(big);
    assert_non_null(junk);
    memset(junk, 'x', big);
    f = (struct fake){.answer = junk, .len = big};
    fake_start(&f);
    assert_int_equal(haproxy_command(f.path, "show stat -1 4 -1", 5000, &answer, &err), -E2BIG);
    fake_stop(&f);
    free(junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_parse),
        cmocka_unit_test(test_stat_refusals),
        cmocka_unit_test(test_status_up),
        cmocka_unit_test(test_command_unreachable),
        cmocka_unit_test(test_command_hostile_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
