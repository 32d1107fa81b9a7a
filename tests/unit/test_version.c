/* Unit tests for the version-skew window (common/version.c): a coordinator and an agent work
 * together when they share the major version and are at most one minor apart, either way; the
 * refusal names both versions. The real pair, built from git, is tests/cluster/skew.sh. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "semver.h"
#include "version.h"

/* BATON_VERSION with its minor moved by `delta` (and its major by `major`). */
static void shifted(int major, int delta, char *buf, size_t len)
{
    semver_t v;
    baton_err_t err = {0};
    assert_int_equal(semver_parse(BATON_VERSION, &v, &err), 0);
    snprintf(buf, len, "%llu.%llu.7", (unsigned long long)(v.major + (uint64_t)major),
             (unsigned long long)((int64_t)v.minor + delta));
}

static void test_window(void **state)
{
    (void)state;
    baton_err_t err = {0};
    char v[32];
    assert_int_equal(version_skew_check(BATON_VERSION, "the agent of node1", "coordinator", &err), 0);
    shifted(0, 1, v, sizeof(v));
    assert_int_equal(version_skew_check(v, "the agent of node1", "coordinator", &err), 0);
    shifted(0, -1, v, sizeof(v));
    assert_int_equal(version_skew_check(v, "the agent of node1", "coordinator", &err), 0);
    shifted(0, 2, v, sizeof(v));
    assert_int_equal(version_skew_check(v, "the agent of node1", "coordinator", &err),
                     -EPROTONOSUPPORT);
    assert_non_null(strstr(err.msg, v));
    assert_non_null(strstr(err.msg, BATON_VERSION));
    assert_non_null(strstr(err.msg, "the agent of node1"));
    shifted(1, 0, v, sizeof(v));
    assert_int_equal(version_skew_check(v, "the coordinator", "agent", &err), -EPROTONOSUPPORT);
}

static void test_unknown_and_garbage(void **state)
{
    (void)state;
    baton_err_t err = {0};
    assert_int_equal(version_skew_check("", "the coordinator", "agent", &err), -EPROTONOSUPPORT);
    assert_non_null(strstr(err.msg, "does not say its version"));
    assert_int_equal(version_skew_check(NULL, "the coordinator", "agent", &err), -EPROTONOSUPPORT);
    assert_int_equal(version_skew_check("not-a-version", "the coordinator", "agent", &err),
                     -EPROTONOSUPPORT);
    /* Build metadata and pre-releases are versions too: only major and minor matter. */
    char v[64];
    snprintf(v, sizeof(v), "%s+b7", BATON_VERSION);
    assert_int_equal(version_skew_check(v, "the coordinator", "agent", &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_unknown_and_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
