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
    };
    return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
