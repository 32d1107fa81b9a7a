/* Unit tests for err: a message that is cut never ends in half a UTF-8 character (JSON
 * encoders drop such a string whole), and a prefix never garbles the message it wraps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "err.h"
#include "names.h"

static void test_trim_partial(void **state)
{
    (void)state;
    char s[16];
    strcpy(s, "caf\xc3\xa9"); /* "café", complete */
    utf8_trim_partial(s);
    assert_string_equal(s, "caf\xc3\xa9");
    strcpy(s, "caf\xc3"); /* cut inside é */
    utf8_trim_partial(s);
    assert_string_equal(s, "caf");
    strcpy(s, "ab\xe2\x80"); /* cut inside a 3-byte character */
    utf8_trim_partial(s);
    assert_string_equal(s, "ab");
    strcpy(s, "ab\xf0\x9f\x98"); /* cut inside a 4-byte character */
    utf8_trim_partial(s);
    assert_string_equal(s, "ab");
    strcpy(s, "");
    utf8_trim_partial(s);
    assert_string_equal(s, "");
}

static void test_long_message_stays_valid_json(void **state)
{
    (void)state;
    char word[BATON_ERR_MSG_MAX * 2] = "";
    for (size_t i = 0; i + 2 < sizeof(word); i += 2)
        memcpy(word + i, "\xc3\xa9", 2); /* é, 2 bytes each, so the cut can fall inside one */
    word[sizeof(word) - 1] = '\0';
    for (int shift = 0; shift < 2; shift++) {
        baton_err_t err = {0};
        baton_err_set(&err, -EIO, "%.*s%s", shift, "x", word);
        json_t *j = json_string(err.msg);
        assert_non_null(j); /* jansson refuses invalid UTF-8 */
        json_decref(j);
    }
}

static void test_prefix(void **state)
{
    (void)state;
    baton_err_t err = {0};
    baton_err_set(&err, -ENOENT, "open /x: No such file or directory");
    assert_int_equal(baton_err_prefix(&err, "staged binary %s", "gamesrv"), -ENOENT);
    assert_string_equal(err.msg, "staged binary gamesrv: open /x: No such file or directory");
    assert_int_equal(baton_err_prefix(NULL, "x"), -EIO);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(name_valid("gamesrv", 64));
    assert_true(name_valid("node-1.eu@dc", 64));
    assert_false(name_valid("", 64));
    assert_false(name_valid("..", 64));
    assert_false(name_valid("-rf", 64));
    assert_false(name_valid("a/b", 64));
    assert_false(name_valid("a+b", 64));
    assert_false(name_valid(NULL, 64));
    assert_true(rollout_id_valid("r20261125T120000-abcdef"));
    assert_false(rollout_id_valid("r1/../../etc"));
    assert_false(rollout_id_valid("a@b")); /* '@' is a name character, not an id one */
    char longid[80];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_false(rollout_id_valid(longid));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim_partial),
        cmocka_unit_test(test_long_message_stays_valid_json),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
