/* Unit tests for the coordinator's connection to one agent (coordinator/engine/client.c) on a clock
 * of the test's own (client_now_ms() is replaced) and a real ZeroMQ peer in the same process (a
 * ROUTER on inproc://, playing the agent): when the client wants to be woken (its timers), that
 * it asks again after a silence with the same request id, that heartbeats keep a long step from
 * being asked again or LOST, and that a timeout and a silence end the call with their errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zmq.h>

#include "client.h"
#include "envelope.h"

static uint64_t fake_now;
static uint32_t last_heartbeat_ms; /* what the last request asked of the agent */

/* The client's clock (a weak symbol in client.c): the test's. */
uint64_t client_now_ms(void)
{
    return fake_now;
}

struct fixture {
    void *zctx, *agent;
    client_t *c;
    uint8_t id[256]; /* the client's routing id, as the agent's ROUTER sees it */
    size_t id_len;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->zctx = zmq_ctx_new();
    f->agent = zmq_socket(f->zctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(f->agent, "inproc://agent"), 0);
    baton_err_t err = {0};
    assert_int_equal(client_new(f->zctx, "node1", "inproc://agent", NULL, NULL, NULL, &f->c, &err),
                     0);
    fake_now = 1000000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    client_destroy(&f->c);
    int linger = 0;
    zmq_setsockopt(f->agent, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_close(f->agent);
    zmq_ctx_term(f->zctx);
    free(f);
    return 0;
}

/* The agent's side: the next request, waited for (it is in flight in the same process). */
static uint64_t agent_receives(struct fixture *f, Baton__Envelope__BodyCase want)
{
    zmq_pollitem_t it = {.socket = f->agent, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 5000), 1);
    int n = zmq_recv(f->agent, f->id, sizeof(f->id), 0);
    assert_true(n > 0);
    f->id_len = (size_t)n;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    assert_true(zmq_msg_recv(&msg, f->agent, 0) >= 0);
    Baton__Envelope *env = NULL;
    baton_err_t err = {0};
    assert_int_equal(envelope_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg), &env, &err), 0);
    zmq_msg_close(&msg);
    assert_int_equal(env->body_case, want);
    uint64_t id = env->request_id;
    last_heartbeat_ms = env->heartbeat_ms;
    envelope_free(&env);
    return id;
}

static void agent_sends(struct fixture *f, Baton__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    env->protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    assert_int_equal(envelope_pack(env, &buf, &len, &err), 0);
    assert_int_equal(zmq_send(f->agent, f->id, f->id_len, ZMQ_SNDMORE), (int)f->id_len);
    assert_int_equal(zmq_send(f->agent, buf, len, 0), (int)len);
    free(buf);
}

static void agent_heartbeat(struct fixture *f, uint64_t request_id)
{
    Baton__Progress p = BATON__PROGRESS__INIT;
    p.step = "verify";
    p.heartbeat = true;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.request_id = request_id;
    env.body_case = BATON__ENVELOPE__BODY_PROGRESS;
    env.progress = &p;
    agent_sends(f, &env);
}

/* The step's Result (OK). */
static void agent_answers(struct fixture *f, uint64_t request_id)
{
    Baton__Result res = BATON__RESULT__INIT;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.request_id = request_id;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;
    agent_sends(f, &env);
}

/* Reads what the client has, once it has it. */
static int client_reads(struct fixture *f, Baton__Envelope **ret)
{
    zmq_pollitem_t it = {.socket = client_socket(f->c), .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 5000), 1);
    baton_err_t err = {0};
    return client_recv(f->c, NULL, NULL, ret, &err);
}

static void send_verify(struct fixture *f, uint64_t timeout_ms)
{
    Baton__Step step = BATON__STEP__INIT;
    Baton__Envelope req = BATON__ENVELOPE__INIT;
    req.body_case = BATON__ENVELOPE__BODY_VERIFY;
    req.verify = &step;
    baton_err_t err = {0};
    assert_int_equal(client_send(f->c, "r1", &req, timeout_ms, &err), 0);
}

/* A step longer than the ask-again time, with a heartbeat every second: the client's next wake
 * is always ahead of now (the event loop sleeps), it never asks again, and it is never LOST. */
static void test_heartbeats_keep_a_long_step_quiet(void **state)
{
    struct fixture *f = *state;
    uint64_t t0 = fake_now;
    assert_int_equal(client_wake(f->c), UINT64_MAX); /* idle: nothing to wake for */
    send_verify(f, 600000);
    uint64_t id = agent_receives(f, BATON__ENVELOPE__BODY_VERIFY);
    assert_int_equal(client_wake(f->c), t0 + CLIENT_ASK_AGAIN_MS);
    for (int s = 1; s <= 20; s++) {
        fake_now = t0 + (uint64_t)s * 1000;
        agent_heartbeat(f, id);
        Baton__Envelope *env = NULL;
        assert_int_equal(client_reads(f, &env), CLIENT_NOTHING);
        uint64_t wake = client_wake(f->c);
        if (wake <= fake_now)
            fail_msg("at %d s the client wants a wake in the past (%lld ms ago): a spinning loop",
                     s, (long long)(fake_now - wake));
        assert_int_equal(wake, fake_now + CLIENT_ASK_AGAIN_MS);
        baton_err_t err = {0};
        assert_int_equal(client_tick(f->c, fake_now, &err), 0);
    }
    /* Nothing was asked again. */
    zmq_pollitem_t it = {.socket = f->agent, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 0), 0);
    /* Its answer ends the call. */
    agent_answers(f, id);
    Baton__Envelope *got = NULL;
    assert_int_equal(client_reads(f, &got), CLIENT_RESULT);
    assert_int_equal(got->request_id, id);
    envelope_free(&got);
    assert_false(client_busy(f->c));
    assert_int_equal(client_wake(f->c), UINT64_MAX);
}

/* Heartbeats, then silence (the agent frozen mid-step): asked again 3 s after the last word,
 * not 3 s after the send nor at every turn of the loop. */
static void test_silence_after_heartbeats(void **state)
{
    struct fixture *f = *state;
    uint64_t t0 = fake_now;
    send_verify(f, 600000);
    uint64_t id = agent_receives(f, BATON__ENVELOPE__BODY_VERIFY);
    for (int s = 1; s <= 5; s++) {
        fake_now = t0 + (uint64_t)s * 1000;
        agent_heartbeat(f, id);
        Baton__Envelope *env = NULL;
        assert_int_equal(client_reads(f, &env), CLIENT_NOTHING);
    }
    uint64_t last = fake_now;
    assert_int_equal(client_wake(f->c), last + CLIENT_ASK_AGAIN_MS);
    baton_err_t err = {0};
    fake_now = last + CLIENT_ASK_AGAIN_MS - 1;
    assert_int_equal(client_tick(f->c, fake_now, &err), 0);
    zmq_pollitem_t it = {.socket = f->agent, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 0), 0); /* not yet */
    fake_now = last + CLIENT_ASK_AGAIN_MS;
    assert_int_equal(client_tick(f->c, fake_now, &err), 0);
    assert_int_equal(agent_receives(f, BATON__ENVELOPE__BODY_VERIFY), id);
    assert_int_equal(client_wake(f->c), fake_now + CLIENT_ASK_AGAIN_MS);
}

/* Silence: the same request (same id) again after CLIENT_ASK_AGAIN_MS, and again as long after
 * that; then LOST once `liveness` passed with no word. */
static void test_silence_asks_again_then_lost(void **state)
{
    struct fixture *f = *state;
    uint64_t t0 = fake_now;
    client_set_liveness(f->c, 10000);
    send_verify(f, 600000);
    uint64_t id = agent_receives(f, BATON__ENVELOPE__BODY_VERIFY);
    baton_err_t err = {0};
    fake_now = t0 + CLIENT_ASK_AGAIN_MS - 1;
    assert_int_equal(client_tick(f->c, fake_now, &err), 0);
    zmq_pollitem_t it = {.socket = f->agent, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 0), 0); /* not yet */
    fake_now = t0 + CLIENT_ASK_AGAIN_MS;
    assert_int_equal(client_wake(f->c), fake_now);
    assert_int_equal(client_tick(f->c, fake_now, &err), 0);
    assert_int_equal(agent_receives(f, BATON__ENVELOPE__BODY_VERIFY), id);
    assert_int_equal(client_wake(f->c), fake_now + CLIENT_ASK_AGAIN_MS);
    /* The liveness comes before the next ask-again at 9 s: 10 s after the last word. */
    fake_now = t0 + 2 * CLIENT_ASK_AGAIN_MS;
    assert_int_equal(client_tick(f->c, fake_now, &err), 0);
    agent_receives(f, BATON__ENVELOPE__BODY_VERIFY);
    assert_int_equal(client_wake(f->c), t0 + 9000);
    fake_now = t0 + 9000;
    assert_int_equal(client_tick(f->c, fake_now, &err), 0);
    agent_receives(f, BATON__ENVELOPE__BODY_VERIFY);
    assert_int_equal(client_wake(f->c), t0 + 10000);
    fake_now = t0 + 10000;
    assert_int_equal(client_tick(f->c, fake_now, &err), -EHOSTDOWN);
    assert_non_null(
        strstr(err.msg, "node1 (inproc://agent) LOST during verify: no word for 10.0 s"));
    assert_false(client_busy(f->c));
}

/* A large fleet's heartbeats spaced out (engine.c): the request says how far apart, and the
 * call is asked again only after three of them missed, not after the usual 3 s. */
static void test_spaced_heartbeats(void **state)
{
    struct fixture *f = *state;
    uint64_t t0 = fake_now;
    send_verify(f, 600000);
    agent_receives(f, BATON__ENVELOPE__BODY_VERIFY);
    assert_int_equal(last_heartbeat_ms, 1000); /* the default: one a second */
    client_abandon(f->c);

    client_set_heartbeat(f->c, 5000);
    send_verify(f, 600000);
    uint64_t id = agent_receives(f, BATON__ENVELOPE__BODY_VERIFY);
    assert_int_equal(last_heartbeat_ms, 5000);
    assert_int_equal(client_wake(f->c), t0 + 15000);
    Baton__Envelope *env = NULL;
    baton_err_t err = {0};
    fake_now = t0 + 4999;
    agent_heartbeat(f, id);
    assert_int_equal(client_reads(f, &env), CLIENT_NOTHING);
    assert_int_equal(client_wake(f->c), fake_now + 15000);
    fake_now += 14999;
    assert_int_equal(client_tick(f->c, fake_now, &err), 0);
    zmq_pollitem_t it = {.socket = f->agent, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 0), 0); /* not asked again yet */
    fake_now += 1;
    assert_int_equal(client_tick(f->c, fake_now, &err), 0);
    assert_int_equal(agent_receives(f, BATON__ENVELOPE__BODY_VERIFY), id);
    /* While the silence lasts, asked again every CLIENT_ASK_AGAIN_MS, not every 15 s: a
     * partition that heals before `liveness` is still found by an ask. */
    assert_int_equal(client_wake(f->c), fake_now + CLIENT_ASK_AGAIN_MS);
    fake_now += CLIENT_ASK_AGAIN_MS;
    assert_int_equal(client_tick(f->c, fake_now, &err), 0);
    assert_int_equal(agent_receives(f, BATON__ENVELOPE__BODY_VERIFY), id);
}

/* A step's own timeout ends it even while heartbeats come. */
static void test_timeout_ends_the_call(void **state)
{
    struct fixture *f = *state;
    uint64_t t0 = fake_now;
    send_verify(f, 4000);
    uint64_t id = agent_receives(f, BATON__ENVELOPE__BODY_VERIFY);
    fake_now = t0 + 3000;
    agent_heartbeat(f, id);
    Baton__Envelope *env = NULL;
    assert_int_equal(client_reads(f, &env), CLIENT_NOTHING);
    assert_int_equal(client_wake(f->c), t0 + 4000);
    fake_now = t0 + 4000;
    baton_err_t err = {0};
    assert_int_equal(client_tick(f->c, fake_now, &err), -ETIMEDOUT);
    assert_non_null(strstr(err.msg, "did not answer verify within 4 s"));
    assert_false(client_busy(f->c));
    /* Its answer, when it comes late, is dropped: no call is in flight. */
    agent_answers(f, id);
    assert_int_equal(client_reads(f, &env), CLIENT_NOTHING);
    assert_null(env);
}

/* The agent's side of a stage chunk: every frame after the routing id, unpacked as the agent
 * does (envelope_take_frame with the second frame, when one came). Returns the frame count. */
static int agent_receives_chunk(struct fixture *f, Baton__Envelope **ret_env)
{
    zmq_pollitem_t it = {.socket = f->agent, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 5000), 1);
    assert_true(zmq_recv(f->agent, f->id, sizeof(f->id), 0) > 0);
    zmq_msg_t msg[3];
    int n = 0, more = 1;
    size_t more_len = sizeof(more);
    while (more && n < 3) {
        zmq_msg_init(&msg[n]);
        assert_true(zmq_msg_recv(&msg[n], f->agent, 0) >= 0);
        n++;
        assert_int_equal(zmq_getsockopt(f->agent, ZMQ_RCVMORE, &more, &more_len), 0);
    }
    assert_false(more);
    baton_err_t err = {0};
    assert_int_equal(envelope_unpack(zmq_msg_data(&msg[0]), zmq_msg_size(&msg[0]), ret_env, &err),
                     0);
    assert_int_equal((*ret_env)->body_case, BATON__ENVELOPE__BODY_STAGE);
    assert_int_equal(envelope_take_frame(*ret_env, n > 1 ? zmq_msg_data(&msg[1]) : NULL,
                                         n > 1 ? zmq_msg_size(&msg[1]) : 0, &err),
                     0);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&msg[i]);
    return n;
}

/* A chunk for an agent with the "frame" feature goes as the envelope and then its bytes, from
 * the caller's buffer; the agent reads back exactly those bytes; the caller's request is left
 * as it was; a chunk without data_frame is one frame, as older agents want it; a data_frame
 * that is not the data's length is refused and nothing is sent. */
static void test_chunk_bytes_in_a_frame_of_their_own(void **state)
{
    struct fixture *f = *state;
    static uint8_t bytes[300000];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (uint8_t)(i * 7 + 3);
    Baton__Stage st = BATON__STAGE__INIT;
    st.service = "gamesrv";
    st.size = 2 * sizeof(bytes);
    st.data.data = bytes;
    st.data.len = sizeof(bytes);
    st.data_frame = sizeof(bytes);
    Baton__Envelope req = BATON__ENVELOPE__INIT;
    req.body_case = BATON__ENVELOPE__BODY_STAGE;
    req.stage = &st;
    baton_err_t err = {0};
    assert_int_equal(client_send(f->c, "r1", &req, 60000, &err), 0);
    assert_ptr_equal(st.data.data, bytes);
    assert_int_equal(st.data.len, sizeof(bytes));

    st.offset = sizeof(bytes);
    st.data_frame = 0; /* an older agent's form, behind it in the window */
    assert_int_equal(client_send_ahead(f->c, "r1", &req, &err), 0);

    Baton__Envelope *got = NULL;
    assert_int_equal(agent_receives_chunk(f, &got), 2);
    assert_int_equal(got->stage->data_frame, sizeof(bytes));
    assert_int_equal(got->stage->data.len, sizeof(bytes));
    assert_memory_equal(got->stage->data.data, bytes, sizeof(bytes));
    envelope_free(&got);
    assert_int_equal(agent_receives_chunk(f, &got), 1);
    assert_int_equal(got->stage->offset, sizeof(bytes));
    assert_int_equal(got->stage->data.len, sizeof(bytes));
    assert_memory_equal(got->stage->data.data, bytes, sizeof(bytes));
    envelope_free(&got);

    client_abandon(f->c);
    st.data_frame = 10;
    assert_int_equal(client_send(f->c, "r1", &req, 60000, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "stage.data_frame 10, with 300000 bytes"));
    assert_false(client_busy(f->c));
    zmq_pollitem_t it = {.socket = f->agent, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 100), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_heartbeats_keep_a_long_step_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_after_heartbeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_asks_again_then_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spaced_heartbeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_ends_the_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_bytes_in_a_frame_of_their_own, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
