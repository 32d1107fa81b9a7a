/* The release catalog and the rollout file's version: ranges resolved to the highest release,
 * one minor at a time, maintenance releases, and every bad file refused by file, line and key. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "catalog.h"
#include "rollout_file.h"

static char dir[64];

/* Writes NAME in the test folder; returns its path (static). */
static const char *put(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char good_catalog[] =
    "service: gamesrv\n"
    "releases:\n"
    "  - {version: 1.0.0, artifact: a-1.0.0, sha256: " SHA_A "}\n"
    "  - {version: 1.1.0, artifact: a-1.1.0, sha256: " SHA_A "}\n"
    "  - {version: 1.1.1, artifact: a-1.1.1, sha256: " SHA_B "}\n"
    "  - {version: 1.1.2-rc.1, artifact: a-rc, sha256: " SHA_B "}\n"
    "  - version: 1.2.0\n"
    "    artifact: /opt/a-1.2.0\n"
    "    sha256: " SHA_A "\n"
    "    min_upgrade_from: 1.1.0\n"
    "    notes: adds the inventory\n"
    "  - {version: 2.0.0, artifact: a-2, sha256: " SHA_A ", requires: maintenance}\n"
    "  - {version: 0.9.0, artifact: a-0.9, sha256: " SHA_A "}\n"
    "  - {version: 2.1.0, artifact: 'https://mirror/a-2.1', sha256: " SHA_A "}\n";

static const release_t *resolve(const catalog_t *c, const char *range)
{
    semver_range_t r;
    assert_int_equal(semver_range_parse(range, &r, NULL), 0);
    return catalog_resolve(c, &r);
}

static void test_catalog_good(void **state)
{
    (void)state;
    catalog_t *c = NULL;
    baton_err_t err = {0};
    if (catalog_load(put("catalog.yml", good_catalog), &c, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(c->n, 8);
    assert_string_equal(c->releases[0].version, "0.9.0"); /* sorted */
    assert_string_equal(resolve(c, "~1.1.0")->version, "1.1.1");
    assert_string_equal(resolve(c, "^1.0.0")->version, "1.2.0");
    assert_string_equal(resolve(c, "1.1.*")->version, "1.1.1");
    assert_string_equal(resolve(c, ">=1.0.0 <1.2.0")->version, "1.1.1");
    assert_string_equal(resolve(c, ">=1.1.2-rc.1 <1.1.2")->version, "1.1.2-rc.1");
    assert_string_equal(resolve(c, "1.0.0")->version, "1.0.0");
    assert_null(resolve(c, "~3.0.0"));
    const release_t *r = resolve(c, "1.2.0");
    char want[128];
    snprintf(want, sizeof(want), "%s/a-1.1.1", dir);
    assert_string_equal(resolve(c, "1.1.1")->artifact, want);
    assert_string_equal(r->artifact, "/opt/a-1.2.0");
    assert_string_equal(resolve(c, "2.1.0")->artifact, "https://mirror/a-2.1"); /* as written */
    assert_true(r->has_min_from);
    assert_string_equal(r->notes, "adds the inventory");
    assert_false(r->maintenance);
    assert_true(resolve(c, "2.0.0")->maintenance);

    /* One minor at a time: the newest release (not a pre-release) of each minor between. */
    const release_t *hops[8];
    semver_t from;
    assert_int_equal(semver_parse("1.0.0", &from, NULL), 0);
    assert_int_equal(catalog_hops(c, &from, resolve(c, "1.2.0"), hops, 8), 2);
    assert_string_equal(hops[0]->version, "1.1.1");
    assert_string_equal(hops[1]->version, "1.2.0");
    assert_int_equal(catalog_hops(c, &from, resolve(c, "1.1.0"), hops, 8), 1);
    assert_int_equal(catalog_hops(c, &from, resolve(c, "2.0.0"), hops, 8), 3);
    assert_string_equal(hops[0]->version, "1.1.1");
    assert_string_equal(hops[1]->version, "1.2.0");
    assert_string_equal(hops[2]->version, "2.0.0");
    assert_int_equal(semver_parse("0.9.0", &from, NULL), 0);
    assert_int_equal(catalog_hops(c, &from, resolve(c, "1.2.0"), hops, 8), 3);
    assert_string_equal(hops[0]->version, "1.0.0");
    assert_int_equal(semver_parse("1.1.0", &from, NULL), 0);
    assert_int_equal(catalog_hops(c, &from, resolve(c, "1.1.1"), hops, 8), 1);

    semver_t to;
    assert_int_equal(semver_parse("2.0.0", &to, NULL), 0);
    assert_string_equal(catalog_maintenance_between(c, &from, &to)->version, "2.0.0");
    assert_int_equal(semver_parse("1.2.0", &to, NULL), 0);
    assert_null(catalog_maintenance_between(c, &from, &to));
    catalog_destroy(&c);
    assert_null(c);
}

static void test_catalog_bad(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"service: gamesrv\n", ":1: releases: required key missing"},
        {"releases: []\n", "service: required key missing"},
        {"service: gamesrv\nreleases:\n  - {version: 1.0, artifact: a, sha256: " SHA_A "}\n",
         ":3: releases[0].version: '1.0': a version is MAJOR.MINOR.PATCH"},
        {"service: gamesrv\nreleases:\n  - {version: 1.0.0, artifact: a, sha256: abc}\n",
         ":3: releases[0].sha256: must be 64 lower-case hex digits"},
        {"service: gamesrv\nreleases:\n  - {version: 1.0.0, artifact: a}\n",
         "releases[0].sha256: required key missing"},
        {"service: gamesrv\nreleases:\n  - {version: 1.0.0, artifact: a, sha256: " SHA_A
         "}\n  - {version: 1.0.0, artifact: b, sha256: " SHA_A "}\n",
         ":4: releases[1]: 1.0.0 is listed twice (also releases[0])"},
        {"service: gamesrv\nreleases:\n  - {version: 1.0.0, artifact: a, sha256: " SHA_A
         ", min_upgrade_from: 1.0.0}\n",
         "releases[0].min_upgrade_from: must be below the release's own version"},
        {"service: gamesrv\nreleases:\n  - {version: 1.0.0, artifact: a, sha256: " SHA_A
         ", requires: downtime}\n",
         "releases[0].requires: must be maintenance"},
        /* Build metadata names no other version (SemVer): the same release twice. */
        {"service: gamesrv\nreleases:\n  - {version: 1.0.0+b7, artifact: a, sha256: " SHA_A
         "}\n  - {version: 1.0.0+b8, artifact: b, sha256: " SHA_A "}\n",
         ":4: releases[1]: 1.0.0+b8 is listed twice (also releases[0])"},
        {"service: gamesrv\nreleases:\n  - {version: 1.0.0, artifact: a, sha256: " SHA_A
         ", note: x}\n",
         ":3: releases[0].note: unknown key"},
        {"service: gamesrv\nreleases:\n  - {version: 1.0.0, artifact: 'https://', sha256: " SHA_A
         "}\n",
         ":3: releases[0].artifact: a URL must be http:// or https://"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        catalog_t *c = NULL;
        baton_err_t err = {0};
        if (catalog_load(put("bad.yml", bad[i].text), &c, &err) == 0)
            fail_msg("catalog %zu should be refused", i);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("catalog %zu: got '%s', want '%s'", i, err.msg, bad[i].want);
        assert_null(c);
    }
}

static const char rollout_head[] = "insecure: true\n"
                                   "service: gamesrv\n"
                                   "nodes:\n"
                                   "  - name: node1\n"
                                   "    endpoint: tcp://10.0.0.1:7400\n";

static void test_rollout_versions(void **state)
{
    (void)state;
    char text[2048];
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    put("catalog.yml", good_catalog);
    snprintf(text, sizeof(text), "%sversion: ~1.1.0\ncatalog: catalog.yml\n", rollout_head);
    if (rollout_file_load(put("r.yml", text), &rf, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(rf->version, "1.1.1");
    assert_string_equal(rf->version_asked, "~1.1.0");
    assert_string_equal(rf->sha256, SHA_B);
    char want[128];
    snprintf(want, sizeof(want), "%s/a-1.1.1", dir);
    assert_string_equal(rf->artifact, want);
    assert_false(rf->maintenance);
    rollout_file_destroy(&rf);
    snprintf(text, sizeof(text), "%sversion: 2.0.0\ncatalog: catalog.yml\n", rollout_head);
    assert_int_equal(rollout_file_load(put("r.yml", text), &rf, &err), 0);
    assert_true(rf->maintenance);
    rollout_file_destroy(&rf);
    /* No catalog: a version as the service prints it, even one that is no semver. */
    snprintf(text, sizeof(text), "%sversion: 2024.1\nartifact: a\n", rollout_head);
    assert_int_equal(rollout_file_load(put("r.yml", text), &rf, &err), 0);
    assert_string_equal(rf->version, "2024.1");
    rollout_file_destroy(&rf);

    static const struct {
        const char *add, *want;
    } bad[] = {
        {"version: latest\nartifact: a\n", "version: 'latest' is an alias, not a version: pin "
                                           "versions in production"},
        {"version: latest\ncatalog: catalog.yml\n", "pin versions in production"},
        {"version: \"*\"\ncatalog: catalog.yml\n", "matches every version"},
        {"version: ~1.1.0\nartifact: a\n", "version: a version range needs a catalog"},
        {"version: ~3.0.0\ncatalog: catalog.yml\n", "version: '~3.0.0' matches no release in "},
        {"version: 1.1.0\ncatalog: catalog.yml\nartifact: a\n",
         "artifact: comes from the catalog: give one or the other"},
        {"version: 1.1.0\ncatalog: catalog.yml\nsha256: " SHA_A "\n",
         "sha256: comes from the catalog"},
        {"version: 1.1.0\ncatalog: nosuch.yml\n", "nosuch.yml"},
        {"version: 1.1\ncatalog: catalog.yml\n", "matches no release"}, /* 1.1.x: only 1.1.1 */
        {"version: ~1.1.0 || ~1.2.0\ncatalog: catalog.yml\n", "alternatives"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", rollout_head, bad[i].add);
        baton_err_clear(&err);
        int r = rollout_file_load(put("r.yml", text), &rf, &err);
        if (i == 8) { /* 1.1 is 1.1.x: the newest 1.1 release */
            assert_int_equal(r, 0);
            assert_string_equal(rf->version, "1.1.1");
            rollout_file_destroy(&rf);
            continue;
        }
        if (r == 0)
            fail_msg("%s: should be refused", bad[i].add);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("%s: got '%s', want '%s'", bad[i].add, err.msg, bad[i].want);
        assert_null(rf);
    }
    /* A catalog of another service. */
    put("other.yml",
        "service: chat\nreleases:\n  - {version: 1.0.0, artifact: a, sha256: " SHA_A "}\n");
    snprintf(text, sizeof(text), "%sversion: 1.0.0\ncatalog: other.yml\n", rollout_head);
    assert_true(rollout_file_load(put("r.yml", text), &rf, &err) < 0);
    assert_non_null(strstr(err.msg, "lists releases of chat, not gamesrv"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/baton-test-catalog-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = {"catalog.yml", "bad.yml", "r.yml", "other.yml"};
    char p[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_good),
        cmocka_unit_test(test_catalog_bad),
        cmocka_unit_test(test_rollout_versions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
