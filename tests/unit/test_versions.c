/* The version rules (versions.h), table-driven: what a rollout to a version means for a node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "catalog.h"
#include "versions.h"

#define SHA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void test_moves(void **state)
{
    (void)state;
    char path[] = "/tmp/baton-test-versions-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "service: gamesrv\nreleases:\n"
                       "  - {version: 1.0.0, artifact: a, sha256: " SHA "}\n"
                       "  - {version: 1.1.0, artifact: a, sha256: " SHA "}\n"
                       "  - {version: 1.1.1, artifact: a, sha256: " SHA "}\n"
                       "  - {version: 1.2.0, artifact: a, sha256: " SHA
                       ", min_upgrade_from: 1.1.0}\n"
                       "  - {version: 2.0.0, artifact: a, sha256: " SHA
                       ", requires: maintenance}\n"
                       "  - {version: 2.1.0, artifact: a, sha256: " SHA "}\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    catalog_t *cat = NULL;
    assert_int_equal(catalog_load(path, &cat, NULL), 0);
    unlink(path);

    static const char *const ran_all[] = {"1.0.0", "1.1.0", "1.1.1", "1.2.0", "2.0.0", "2.1.0"};
    static const char *const ran_1[] = {"1.0.0", "1.1.0"};
    static const struct {
        const char *current, *highest, *target;
        int ran; /* 0: ran_all, 1: ran_1, 2: none */
        bool catalog, allow, restore;
        version_move_t want;
        const char *why;
    } cases[] = {
        {"1.0.0", "1.0.0", "1.1.0", 2, true, false, false, MOVE_UP, ""},
        {"1.1.0", "1.1.0", "1.1.0", 0, true, false, false, MOVE_SAME, ""},
        {"1.0.0", "1.0.0", "1.2.0", 2, true, false, false, MOVE_REFUSED,
         "1.2.0 needs at least 1.1.0 first"},
        {"1.0.0", "1.0.0", "1.2.0", 2, false, false, false, MOVE_UP, ""}, /* no catalog */
        {"1.1.1", "1.1.1", "1.1.0", 0, true, false, false, MOVE_DOWN, ""}, /* a patch down */
        {"1.1.0", "1.1.0", "1.0.0", 0, true, false, false, MOVE_REFUSED, "--allow-downgrade"},
        {"1.1.0", "1.1.0", "1.0.0", 0, true, true, false, MOVE_DOWN, ""},
        {"1.1.0", "1.1.0", "1.0.0", 2, true, true, false, MOVE_REFUSED, "no history of 1.0.0"},
        {"1.2.0", "1.2.0", "1.0.0", 0, true, true, false, MOVE_REFUSED,
         "more than one minor version below 1.2.0"},
        {"1.1.0", "1.2.0", "1.0.0", 0, true, true, false, MOVE_REFUSED,
         "more than one minor version below 1.2.0, the highest"},
        {"1.2.0", "1.2.0", "1.0.0", 0, true, true, true, MOVE_DOWN, ""}, /* --restore-dump */
        {"2.1.0", "2.1.0", "1.2.0", 0, true, true, false, MOVE_REFUSED, "crosses 2.0.0, which "
                                                                        "requires maintenance"},
        {"2.1.0", "2.1.0", "2.0.0", 0, true, true, false, MOVE_DOWN, ""},
        {"2.0.0", "2.0.0", "1.2.0", 0, false, true, false, MOVE_REFUSED,
         "more than one minor version below"}, /* across majors */
        {"1.1.0", "", "1.0.0", 1, false, true, false, MOVE_DOWN, ""}, /* no highest recorded */
        {"2024.2", "", "2024.1", 2, false, false, false, MOVE_UP, ""}, /* no semver: no rules */
        {"unknown", "", "1.1.0", 2, true, false, false, MOVE_UP, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        version_facts_t f = {.current = cases[i].current,
                             .highest = cases[i].highest,
                             .ran = cases[i].ran == 0 ? ran_all : ran_1,
                             .n_ran = cases[i].ran == 0 ? 6 : cases[i].ran == 1 ? 2 : 0,
                             .catalog = cases[i].catalog ? cat : NULL,
                             .allow_downgrade = cases[i].allow,
                             .restore_dump = cases[i].restore};
        char why[512];
        version_move_t got = version_move(&f, cases[i].target, why, sizeof(why));
        if (got != cases[i].want)
            fail_msg("%s -> %s: got %d, want %d (%s)", cases[i].current, cases[i].target, got,
                     cases[i].want, why);
        if (!strstr(why, cases[i].why))
            fail_msg("%s -> %s: got '%s', want '%s'", cases[i].current, cases[i].target, why,
                     cases[i].why);
    }
    catalog_destroy(&cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_moves)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
