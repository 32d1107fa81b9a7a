/* Unit tests for common/envelope: a round trip, and every way hostile bytes must be refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"

static void test_hello_round_trip(void **state)
{
    (void)state;
    Baton__ServiceInfo svc = BATON__SERVICE_INFO__INIT;
    svc.name = "gamesrv";
    svc.unit = "gamesrv.service";
    svc.active_state = "active";
    svc.version = "1.0.0";
    Baton__ServiceInfo *svcs[] = {&svc};

    Baton__Hello hello = BATON__HELLO__INIT;
    hello.agent_version = "0.1.0";
    hello.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    hello.node_name = "node1";
    hello.n_services = 1;
    hello.services = svcs;

    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.request_id = UINT64_C(0xfeedfacecafe);
    env.rollout_id = "r-42";
    env.body_case = BATON__ENVELOPE__BODY_HELLO;
    env.hello = &hello;

    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    assert_int_equal(envelope_pack(&env, &buf, &len, &err), 0);
    assert_true(len > 0);

    Baton__Envelope *got = NULL;
    assert_int_equal(envelope_unpack(buf, len, &got, &err), 0);
    assert_non_null(got);
    assert_int_equal(got->request_id, UINT64_C(0xfeedfacecafe));
    assert_string_equal(got->rollout_id, "r-42");
    assert_int_equal(got->body_case, BATON__ENVELOPE__BODY_HELLO);
    assert_string_equal(envelope_body_name(got->body_case), "hello");
    assert_string_equal(got->hello->node_name, "node1");
    assert_int_equal(got->hello->n_services, 1);
    assert_string_equal(got->hello->services[0]->unit, "gamesrv.service");
    assert_string_equal(got->hello->services[0]->version, "1.0.0");

    envelope_free(&got);
    assert_null(got);
    envelope_free(&got); /* idempotent */
    free(buf);
}

static void test_result_round_trip(void **state)
{
    (void)state;
    Baton__Result res = BATON__RESULT__INIT;
    res.status = BATON__STATUS__STATUS_FAILED;
    res.message = "start of gamesrv.service failed: exit-code";
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.request_id = 7;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;

    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(envelope_pack(&env, &buf, &len, NULL), 0);
    Baton__Envelope *got = NULL;
    assert_int_equal(envelope_unpack(buf, len, &got, NULL), 0);
    assert_int_equal(got->result->status, BATON__STATUS__STATUS_FAILED);
    assert_string_equal(got->result->message, res.message);
    envelope_free(&got);
    free(buf);
}

static void test_garbage_is_refused(void **state)
{
    (void)state;
    /* A field tag with wire type 7 does not exist: protobuf-c must reject it. */
    const uint8_t garbage[] = {0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    Baton__Envelope *got = (Baton__Envelope *)0x1; /* must stay untouched on failure */
    baton_err_t err = {0};
    assert_int_equal(envelope_unpack(garbage, sizeof(garbage), &got, &err), -EBADMSG);
    assert_ptr_equal(got, (Baton__Envelope *)0x1);
    assert_int_equal(err.code, -EBADMSG);
    assert_non_null(strstr(err.msg, "malformed"));
}

static void test_truncated_is_refused(void **state)
{
    (void)state;
    Baton__Result res = BATON__RESULT__INIT;
    res.message = "a message long enough to be cut in the middle";
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(envelope_pack(&env, &buf, &len, NULL), 0);
    Baton__Envelope *got = NULL;
    /* Every proper prefix that cuts into the nested Result must be refused. */
    for (size_t cut = 3; cut < len; cut++)
        assert_int_equal(envelope_unpack(buf, cut, &got, NULL), -EBADMSG);
    assert_null(got);
    free(buf);
}

static void test_oversize_is_refused_before_parsing(void **state)
{
    (void)state;
    /* The bytes are never read: the size check comes first. */
    static const uint8_t one = 0;
    Baton__Envelope *got = NULL;
    baton_err_t err = {0};
    assert_int_equal(envelope_unpack(&one, BATON_MSG_MAX + 1, &got, &err), -EMSGSIZE);
    assert_non_null(strstr(err.msg, "exceeds the limit"));
    assert_null(got);
}

static void test_oversize_is_not_packed(void **state)
{
    (void)state;
    char *big = malloc(BATON_MSG_MAX + 1);
    assert_non_null(big);
    memset(big, 'x', BATON_MSG_MAX);
    big[BATON_MSG_MAX] = '\0';
    Baton__Result res = BATON__RESULT__INIT;
    res.message = big;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(envelope_pack(&env, &buf, &len, NULL), -EMSGSIZE);
    assert_null(buf);
    free(big);
}

static void test_wrong_protocol_version_is_refused(void **state)
{
    (void)state;
    Baton__Result res = BATON__RESULT__INIT;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = 99;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(envelope_pack(&env, &buf, &len, NULL), 0);
    Baton__Envelope *got = NULL;
    baton_err_t err = {0};
    assert_int_equal(envelope_unpack(buf, len, &got, &err), -EPROTONOSUPPORT);
    assert_non_null(strstr(err.msg, "protocol version 99"));
    free(buf);
}

static void test_missing_or_unknown_command_is_refused(void **state)
{
    (void)state;
    /* protocol_version = 1 and nothing else. */
    const uint8_t no_body[] = {0x08, 0x01};
    Baton__Envelope *got = NULL;
    baton_err_t err = {0};
    assert_int_equal(envelope_unpack(no_body, sizeof(no_body), &got, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "no command"));

    /* protocol_version = 1, then field 99 (a command from a newer peer) as an empty
     * length-delimited field: tag = 99 << 3 | 2 = 794 = varint 0x9a 0x06. */
    const uint8_t future[] = {0x08, 0x01, 0x9a, 0x06, 0x00};
    assert_int_equal(envelope_unpack(future, sizeof(future), &got, &err), -EBADMSG);
    assert_null(got);
}

/* Packs `env` and unpacks it again: the unpack's return code, err holding why. */
static int round_trip(Baton__Envelope *env, baton_err_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    env->protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    assert_int_equal(envelope_pack(env, &buf, &len, err), 0);
    Baton__Envelope *out = NULL;
    int r = envelope_unpack(buf, len, &out, err);
    free(buf);
    envelope_free(&out);
    return r;
}

static void test_utf8_validator(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"plain", true},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", true}, /* é, €, an emoji */
        {"\xc3", false},                                     /* cut short */
        {"\xc3\x28", false},                                 /* bad continuation */
        {"\xc0\xaf", false},                                 /* overlong '/' */
        {"\xe0\x80\xaf", false},                             /* overlong, 3 bytes */
        {"\xed\xa0\x80", false},                             /* a UTF-16 surrogate */
        {"\xf4\x90\x80\x80", false},                         /* past U+10FFFF */
        {"\xff", false},
        {"ok\x80", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (envelope_utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            fail_msg("case %zu: '%s' should be %s", i, cases[i].s, cases[i].ok ? "ok" : "refused");
}

/* What a fuzzer found against an agent that copied request strings into its answers: every
 * string of every message is checked before anything uses it, and the error names the field. */
static void test_bad_strings_are_refused(void **state)
{
    (void)state;
    baton_err_t err = {0};
    Baton__Hello hello = BATON__HELLO__INIT;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.body_case = BATON__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    env.rollout_id = "r\xff";
    assert_int_equal(round_trip(&env, &err), -EBADMSG);
    assert_string_equal(err.msg, "rollout_id: not valid UTF-8");

    /* Inside the oneof: a step's service. */
    Baton__Step step = BATON__STEP__INIT;
    step.service = "gamesrv\xc3";
    Baton__Envelope env2 = BATON__ENVELOPE__INIT;
    env2.body_case = BATON__ENVELOPE__BODY_PREFLIGHT;
    env2.preflight = &step;
    baton_err_clear(&err);
    assert_int_equal(round_trip(&env2, &err), -EBADMSG);
    assert_string_equal(err.msg, "preflight.service: not valid UTF-8");

    /* A repeated string deep in a Result. */
    char *applied[] = {"0001_players.sql", "0002\xed\xa0\x80.sql"};
    Baton__Result res = BATON__RESULT__INIT;
    res.n_applied = 2;
    res.applied = applied;
    Baton__Envelope env3 = BATON__ENVELOPE__INIT;
    env3.body_case = BATON__ENVELOPE__BODY_RESULT;
    env3.result = &res;
    baton_err_clear(&err);
    assert_int_equal(round_trip(&env3, &err), -EBADMSG);
    assert_string_equal(err.msg, "result.applied[1]: not valid UTF-8");

    /* Over the limit. */
    char *big = malloc(ENVELOPE_STRING_MAX + 2);
    memset(big, 'a', ENVELOPE_STRING_MAX + 1);
    big[ENVELOPE_STRING_MAX + 1] = '\0';
    res.n_applied = 1;
    res.applied = &big;
    baton_err_clear(&err);
    assert_int_equal(round_trip(&env3, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "result.applied[0]: 16385 bytes, at most 16384"));
    free(big);

    /* Well-formed multibyte text passes. */
    res.n_applied = 0;
    res.message = "caf\xc3\xa9";
    baton_err_clear(&err);
    assert_int_equal(round_trip(&env3, &err), 0);
}

/* Packs `env` and unpacks it as the agent got it. */
static Baton__Envelope *received(Baton__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    env->protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    assert_int_equal(envelope_pack(env, &buf, &len, &err), 0);
    Baton__Envelope *out = NULL;
    assert_int_equal(envelope_unpack(buf, len, &out, &err), 0);
    free(buf);
    return out;
}

/* A chunk's second frame is taken only as announced: by a Stage, exactly as long as its
 * data_frame says, within BATON_CHUNK_MAX, never beside data of its own; a frame announced that
 * did not come is refused too. What is refused leaves the message as it was. */
static void test_second_frame_taken_only_as_announced(void **state)
{
    (void)state;
    static uint8_t frame[BATON_CHUNK_MAX + 1];
    memset(frame, 0xab, sizeof(frame));
    baton_err_t err = {0};
    Baton__Stage st = BATON__STAGE__INIT;
    st.service = "gamesrv";
    st.data_frame = 4096;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.body_case = BATON__ENVELOPE__BODY_STAGE;
    env.stage = &st;

    Baton__Envelope *got = received(&env);
    assert_int_equal(envelope_take_frame(got, frame, 4096, &err), 0);
    assert_int_equal(got->stage->data.len, 4096);
    assert_memory_equal(got->stage->data.data, frame, 4096);
    envelope_free(&got); /* and its copy: ASan's leak check in the sanitized run */

    got = received(&env);
    assert_int_equal(envelope_take_frame(got, frame, 4095, &err), -EBADMSG);
    assert_string_equal(err.msg, "stage.data_frame: 4096 bytes announced, 4095 came");
    assert_int_equal(envelope_take_frame(got, NULL, 0, &err), -EBADMSG);
    assert_string_equal(err.msg, "stage.data_frame: 4096 bytes announced, no frame came with them");
    assert_int_equal(got->stage->data.len, 0);
    envelope_free(&got);

    st.data_frame = BATON_CHUNK_MAX + 1;
    got = received(&env);
    assert_int_equal(envelope_take_frame(got, frame, sizeof(frame), &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "at most 1048576"));
    envelope_free(&got);

    st.data_frame = 3;
    st.data.data = frame;
    st.data.len = 3;
    got = received(&env);
    assert_int_equal(envelope_take_frame(got, frame, 3, &err), -EBADMSG);
    assert_string_equal(err.msg, "stage: data both in the message and in a frame");
    envelope_free(&got);

    st.data.data = NULL;
    st.data.len = 0;
    st.url = "http://mirror/gamesrv";
    got = received(&env);
    assert_int_equal(envelope_take_frame(got, frame, 3, &err), -EBADMSG);
    assert_string_equal(err.msg, "stage: a frame with a url (a pull carries no bytes)");
    envelope_free(&got);
    st.url = "";
    st.data.data = frame;
    st.data.len = 3;

    st.data_frame = 0; /* bytes in the message: the older form, no frame */
    got = received(&env);
    assert_int_equal(envelope_take_frame(got, NULL, 0, &err), 0);
    assert_int_equal(envelope_take_frame(got, frame, 3, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "no stage.data_frame announced"));
    envelope_free(&got);

    Baton__Hello hello = BATON__HELLO__INIT;
    Baton__Envelope h = BATON__ENVELOPE__INIT;
    h.body_case = BATON__ENVELOPE__BODY_HELLO;
    h.hello = &hello;
    got = received(&h);
    assert_int_equal(envelope_take_frame(got, NULL, 0, &err), 0);
    assert_int_equal(envelope_take_frame(got, frame, 3, &err), -EBADMSG);
    assert_string_equal(err.msg, "a hello request is one frame");
    envelope_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_round_trip),
        cmocka_unit_test(test_result_round_trip),
        cmocka_unit_test(test_garbage_is_refused),
        cmocka_unit_test(test_truncated_is_refused),
        cmocka_unit_test(test_oversize_is_refused_before_parsing),
        cmocka_unit_test(test_oversize_is_not_packed),
        cmocka_unit_test(test_wrong_protocol_version_is_refused),
        cmocka_unit_test(test_missing_or_unknown_command_is_refused),
        cmocka_unit_test(test_utf8_validator),
        cmocka_unit_test(test_bad_strings_are_refused),
        cmocka_unit_test(test_second_frame_taken_only_as_announced),
    };
    return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
