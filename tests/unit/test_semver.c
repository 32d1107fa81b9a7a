/* Versions and ranges, table-driven: what parses, how versions sort (semver.org's own examples
 * first), which versions a range matches, and what is refused with which words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "semver.h"

/* Versions that parse, and how they print back. */
static void test_parse_good(void **state)
{
    (void)state;
    static const char *const good[] = {
        "0.0.0",
        "1.2.3",
        "10.20.30",
        "1.1.2-prerelease+meta",
        "1.1.2+meta",
        "1.1.2+meta-valid",
        "1.0.0-alpha",
        "1.0.0-beta",
        "1.0.0-alpha.beta",
        "1.0.0-alpha.beta.1",
        "1.0.0-alpha.1",
        "1.0.0-alpha0.valid",
        "1.0.0-alpha.0valid",
        "1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay",
        "1.0.0-rc.1+build.1",
        "2.0.0-rc.1+build.123",
        "1.2.3-beta",
        "10.2.3-DEV-SNAPSHOT",
        "1.2.3-SNAPSHOT-123",
        "2.0.0+build.1848",
        "2.0.1-alpha.1227",
        "1.0.0-alpha+beta",
        "1.2.3----RC-SNAPSHOT.12.9.1--.12+788",
        "1.2.3----R-S.12.9.1--.12+meta",
        "1.0.0+0.build.1-rc.10000aaa-kk-0.1",
        "1.0.0-0A.is.legal",
        "1.0.0+001", /* leading zeros are fine in build metadata */
        "18446744073709551614.0.0",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        semver_t v;
        baton_err_t err = {0};
        char back[256];
        if (semver_parse(good[i], &v, &err) < 0)
            fail_msg("'%s' should parse: %s", good[i], err.msg);
        semver_format(&v, back, sizeof(back));
        assert_string_equal(back, good[i]);
    }
}

/* What does not parse, and the words that say why. */
static void test_parse_bad(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "empty"},
        {"1", "MAJOR.MINOR.PATCH"},
        {"1.2", "MAJOR.MINOR.PATCH"},
        {"1.2.3.4", "unexpected"},
        {"01.1.1", "leading zero"},
        {"1.01.1", "leading zero"},
        {"1.1.01", "leading zero"},
        {"1.2.3-0123", "leading zero"},
        {"1.2.3-0123.0123", "leading zero"},
        {"1.0.0-alpha..1", "empty pre-release"},
        {"1.0.0-", "empty pre-release"},
        {"1.0.0+", "empty build"},
        {"1.0.0-alpha_beta", "'_' is not allowed"},
        {"1.2.3-beta+", "empty build"},
        {"1.2.3+build+x", "'+' is not allowed"},
        {"v1.2.3", "without a 'v'"},
        {"1.2.3 ", "unexpected"},
        {" 1.2.3", "expected a number"},
        {"a.b.c", "expected a number"},
        {"1.2.x", "MAJOR.MINOR.PATCH"},
        {"-1.0.3", "expected a number"},
        {"1.2-SNAPSHOT", "expected '.'"},
        {"99999999999999999999.0.0", "too large"},
        {"1.2.3-é", "not allowed"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        semver_t v;
        baton_err_t err = {0};
        if (semver_parse(bad[i].text, &v, &err) == 0)
            fail_msg("'%s' should not parse", bad[i].text);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("'%s': got '%s', want '%s'", bad[i].text, err.msg, bad[i].want);
    }
}

/* Each version sorts strictly before the next (semver.org's example chain, then more). */
static void test_order(void **state)
{
    (void)state;
    static const char *const chain[] = {
        "0.0.1",         "0.1.0",       "0.9.99",     "1.0.0-0",      "1.0.0-1",
        "1.0.0-2",       "1.0.0-10",    "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
        "1.0.0-beta",    "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",  "1.0.0",
        "1.0.1",         "1.1.0",       "1.2.0",      "1.10.0",       "2.0.0-rc.1",
        "2.0.0",         "2.1.0",       "2.1.1",      "10.0.0",
    };
    size_t n = sizeof(chain) / sizeof(chain[0]);
    for (size_t i = 0; i + 1 < n; i++) {
        semver_t a, b;
        assert_int_equal(semver_parse(chain[i], &a, NULL), 0);
        assert_int_equal(semver_parse(chain[i + 1], &b, NULL), 0);
        if (semver_compare(&a, &b) >= 0 || semver_compare(&b, &a) <= 0)
            fail_msg("%s should sort before %s", chain[i], chain[i + 1]);
        assert_int_equal(semver_compare(&a, &a), 0);
    }
    /* Build metadata does not take part in the order. */
    static const char *const same[][2] = {
        {"1.0.0+build.1", "1.0.0+build.2"},
        {"1.0.0-rc.1+a", "1.0.0-rc.1"},
        {"1.2.3", "1.2.3+zzz"},
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        semver_t a, b;
        assert_int_equal(semver_parse(same[i][0], &a, NULL), 0);
        assert_int_equal(semver_parse(same[i][1], &b, NULL), 0);
        assert_int_equal(semver_compare(&a, &b), 0);
    }
}

/* Range, version, whether it matches. */
static void test_ranges(void **state)
{
    (void)state;
    static const struct {
        const char *range, *version;
        bool match;
    } cases[] = {
        {"1.7.14", "1.7.14", true},
        {"1.7.14", "1.7.15", false},
        {"1.7.14", "1.7.14-rc.1", false},
        {"=1.7.14", "1.7.14", true},
        {"1.7.14", "1.7.14+build.5", true},
        {"~0.16.0", "0.16.0", true},
        {"~0.16.0", "0.16.9", true},
        {"~0.16.0", "0.17.0", false},
        {"~0.16.0", "0.15.9", false},
        {"~0.16.0", "0.16.1-rc.1", false},
        {"~1.2.3", "1.2.2", false},
        {"~1.2.3", "1.2.3", true},
        {"~1.2.3", "1.2.99", true},
        {"~1.2.3", "1.3.0", false},
        {"~1.2", "1.2.0", true},
        {"~1.2", "1.3.0", false},
        {"~1", "1.9.9", true},
        {"~1", "2.0.0", false},
        {"~1.2.3-beta.2", "1.2.3-beta.4", true},
        {"~1.2.3-beta.2", "1.2.3-beta.1", false},
        {"~1.2.3-beta.2", "1.2.4-beta.2", false},
        {"~1.2.3-beta.2", "1.2.4", true},
        {"^1.2.0", "1.2.0", true},
        {"^1.2.0", "1.9.9", true},
        {"^1.2.0", "2.0.0", false},
        {"^1.2.0", "1.1.9", false},
        {"^1.2.0", "1.3.0-rc.1", false},
        {"^1.2.0", "2.0.0-rc.1", false},
        {"^0.2.3", "0.2.9", true},
        {"^0.2.3", "0.3.0", false},
        {"^0.2.3", "0.2.2", false},
        {"^0.0.3", "0.0.3", true},
        {"^0.0.3", "0.0.4", false},
        {"^1.2", "1.9.0", true},
        {"^1.2", "2.0.0", false},
        {"^0.2", "0.2.5", true},
        {"^0.2", "0.3.0", false},
        {"^0.0", "0.0.9", true},
        {"^0.0", "0.1.0", false},
        {"^0", "0.9.0", true},
        {"^0", "1.0.0", false},
        {"^1", "1.0.0", true},
        {"0.16.*", "0.16.0", true},
        {"0.16.*", "0.16.12", true},
        {"0.16.*", "0.17.0", false},
        {"0.16.*", "0.15.0", false},
        {"0.16.x", "0.16.3", true},
        {"0.16.X", "0.16.3", true},
        {"0.16.x", "0.16.3-rc.1", false},
        {"1.x", "1.99.0", true},
        {"1.x", "2.0.0", false},
        {"1.x.x", "1.0.0", true},
        {"1.*", "0.9.9", false},
        {"1", "1.4.0", true},
        {"1", "2.0.0", false},
        {"1.2", "1.2.7", true},
        {"1.2", "1.3.0", false},
        {">=1.2.0 <1.4.0", "1.2.0", true},
        {">=1.2.0 <1.4.0", "1.3.9", true},
        {">=1.2.0 <1.4.0", "1.4.0", false},
        {">=1.2.0 <1.4.0", "1.1.9", false},
        {">=1.2.0 <1.4.0", "1.4.0-rc.1", false},
        {">1.2.0", "1.2.0", false},
        {">1.2.0", "1.2.1", true},
        {"<=1.2.0", "1.2.0", true},
        {"<=1.2.0", "1.2.1", false},
        {"<1.2.0", "1.1.9", true},
        {">1.2 <2", "1.2.9", false},
        {">1.2 <2", "1.3.0", true},
        {">1.2 <2", "2.0.0", false},
        {"<=1.2", "1.2.9", true},
        {"<=1.2", "1.3.0", false},
        {">=1.2", "1.2.0", true},
        {">=1.2", "1.1.99", false},
        {">=1.3.0-rc.1 <1.3.0", "1.3.0-rc.2", true},
        {">=1.3.0-rc.1 <1.3.0", "1.3.0-alpha", false},
        {">=1.3.0-rc.1 <1.3.0", "1.3.0", false},
        {">=1.3.0-rc.1", "1.3.0", true},
        {">=1.3.0-rc.1", "1.4.0-rc.1", false},
        {">=1.0.0-0 <2.0.0", "1.0.0-0", true},
        {"  ~1.1.0  ", "1.1.4", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        semver_range_t r;
        semver_t v;
        baton_err_t err = {0};
        if (semver_range_parse(cases[i].range, &r, &err) < 0)
            fail_msg("range '%s' should parse: %s", cases[i].range, err.msg);
        assert_int_equal(semver_parse(cases[i].version, &v, NULL), 0);
        if (semver_range_match(&r, &v) != cases[i].match)
            fail_msg("'%s' %s match %s", cases[i].range, cases[i].match ? "should" : "should not",
                     cases[i].version);
    }
    semver_range_t r;
    assert_int_equal(semver_range_parse("1.2.3", &r, NULL), 0);
    assert_true(semver_range_exact(&r));
    assert_int_equal(semver_range_parse("~1.2.3", &r, NULL), 0);
    assert_false(semver_range_exact(&r));
}

/* Ranges refused, with the reason. */
static void test_ranges_bad(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"latest", "pin versions in production"},
        {"LATEST", "pin versions in production"},
        {"stable", "an alias"},
        {"*", "matches every version"},
        {"x", "matches every version"},
        {"", "an empty version"},
        {"   ", "an empty version"},
        {"1.2.3 || 2.0.0", "alternatives"},
        {"=1.2", "needs a whole version"},
        {"1.2.3 >=1.0.0", "cannot be combined"},
        {"~v1.2.3", "without a 'v'"},
        {">=01.2.3", "leading zero"},
        {"^1.2.3.4", "unexpected"},
        {"1.x.3", "nothing may follow a wildcard"},
        {"~1.2.3-", "empty pre-release"},
        {">=1 >=1 >=1 >=1 >=1 >=1 >=1 >=1 >=1", "more than 8"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        semver_range_t r;
        baton_err_t err = {0};
        if (semver_range_parse(bad[i].text, &r, &err) == 0)
            fail_msg("range '%s' should be refused", bad[i].text);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("'%s': got '%s', want '%s'", bad[i].text, err.msg, bad[i].want);
    }
}

static void test_identity(void **state)
{
    (void)state;
    assert_true(version_same("3.15.0+1783fad1", "3.15.0"));
    assert_true(version_same("3.15.0", "3.15.0+abc"));
    assert_false(version_same("3.15.0-rc.1", "3.15.0"));
    assert_false(version_same("3.15.0", "3.15.1"));
    assert_true(version_same("2024.1", "2024.1")); /* no semver: the same text */
    assert_false(version_same("2024.1", "2024.1+x"));
    assert_true(version_matches("1.1.0", "1.1.0"));
    assert_true(version_matches("v1.1.0", "1.1.0"));
    assert_true(version_matches("3.21.0+7d6b5c", "3.21.0"));
    assert_true(version_matches("3.15.0+1783fad1", "3.15.0+other"));
    assert_false(version_matches("1.2.0-rc.1", "1.2.0")); /* a pre-release is not the release */
    assert_false(version_matches("1.1.0", "1.1"));
    assert_false(version_matches("1.1", "1.1.0"));
    assert_false(version_matches("1.1.10", "1.1.1"));
    assert_true(version_matches("2024.1-abc", "2024.1")); /* no semver: a prefix and a mark */
    assert_false(version_matches("version", "1.0.0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good), cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_order),      cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_ranges_bad), cmocka_unit_test(test_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
