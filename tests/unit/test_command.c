/* Unit tests for what the agent remembers of a binary (agent/steps/command.c): the migration ids
 * and the version a file said, reused only for the very same file or a copy the swap vouched for,
 * and asked again once the file changed. The "binary" is a shell script that counts its runs.
 * On a real node, tests/cluster/versions.sh counts the list's runs: once per rollout (the
 * pre-flight's), and again at the start only for a staged file touched since. */
#include <errno.h>
#include <limits.h>
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

#include "command.h"
#include "config.h"
#include "fsutil.h"
#include "state.h"

static char dir[64], cfg_path[PATH_MAX], bin[PATH_MAX], copy[PATH_MAX], runs[PATH_MAX];
static agent_config_t *cfg;

static void write_script(const char *path, const char *ids)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\necho \"$1\" >>'%s'\n"
            "if [ \"$1\" = --version ]; then echo 1.2.3; else printf '%s'; fi\n",
            runs, ids);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
}

/* How many times the script ran so far. */
static int count_runs(void)
{
    FILE *f = fopen(runs, "r");
    if (!f)
        return 0;
    int n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

static int setup(void **state)
{
    (void)state;
    baton_err_t err = {0};
    snprintf(dir, sizeof(dir), "/tmp/baton-test-command-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cfg_path, sizeof(cfg_path), "%s/agent.yml", dir);
    snprintf(bin, sizeof(bin), "%s/gamesrv", dir);
    snprintf(copy, sizeof(copy), "%s/gamesrv-installed", dir);
    snprintf(runs, sizeof(runs), "%s/runs", dir);
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f,
            "node: node1\nlisten: tcp://127.0.0.1:7400\nstate_dir: %s/state\ninsecure: true\n"
            "services:\n  - name: gamesrv\n    unit: gamesrv.service\n"
            "    binary: %s\n    database: dbname=game\n"
            "    list_migrations: \"{binary} migrate-list\"\n"
            "    backup_dir: %s/backups\n    health:\n      tcp: 127.0.0.1:7350\n",
            dir, copy, dir);
    fclose(f);
    assert_int_equal(agent_config_load(cfg_path, &cfg, &err), 0);
    write_script(bin, "0002_b.sql\\n0001_a.sql\\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    agent_config_destroy(&cfg);
    return 0;
}

static fs_ident_t ident_of(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return fs_ident(&sb);
}

/* Lists `path` and checks the two ids came back sorted. */
static void list(const char *path, bool reuse)
{
    step_ctx_t ctx = {.cfg = cfg, .svc = &cfg->services[0]};
    char **ids = NULL;
    size_t n = 0;
    baton_err_t err = {0};
    assert_int_equal(command_migrations(&ctx, &cfg->services[0], path, reuse, &ids, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "0001_a.sql");
    assert_string_equal(ids[1], "0002_b.sql");
    svc_state_clear_list(&ids, &n);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[2 * PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

static void test_list_reused_only_for_the_same_bytes(void **state)
{
    (void)state;
    list(bin, true);
    assert_int_equal(count_runs(), 1);
    list(bin, true);
    assert_int_equal(count_runs(), 1); /* the same file: remembered */
    list(bin, false);
    assert_int_equal(count_runs(), 2); /* the pre-flight's and the plan's: always run */

    /* A copy nobody vouched for is listed itself. */
    copy_file(bin, copy);
    list(copy, true);
    assert_int_equal(count_runs(), 3);
}

static void test_copy_the_swap_vouched_for(void **state)
{
    (void)state;
    list(bin, false);
    int before = count_runs();
    unlink(copy);
    copy_file(bin, copy);
    fs_ident_t original = ident_of(bin), installed = ident_of(copy);
    command_remember_copy(copy, &original, &installed);
    list(copy, true);
    assert_int_equal(count_runs(), before); /* the start's check: not run again */

    /* The copy changed since (its mode and ctime): listed again. */
    assert_int_equal(chmod(copy, 0700), 0);
    list(copy, true);
    assert_int_equal(count_runs(), before + 1);
}

static void test_original_touched_after_listing_is_not_vouched_for(void **state)
{
    (void)state;
    list(bin, false);
    fs_ident_t listed = ident_of(bin);
    /* Rewritten with other ids after it was listed: the swap's copy of the new bytes must not
     * get the old answer. */
    write_script(bin, "0001_a.sql\\n0002_b.sql\\n0003_c.sql\\n");
    fs_ident_t now = ident_of(bin);
    assert_false(fs_ident_equal(&listed, &now));
    unlink(copy);
    copy_file(bin, copy);
    fs_ident_t installed = ident_of(copy);
    command_remember_copy(copy, &now, &installed);
    step_ctx_t ctx = {.cfg = cfg, .svc = &cfg->services[0]};
    char **ids = NULL;
    size_t n = 0;
    baton_err_t err = {0};
    int before = count_runs();
    assert_int_equal(command_migrations(&ctx, &cfg->services[0], copy, true, &ids, &n, &err), 0);
    assert_int_equal(count_runs(), before + 1);
    assert_int_equal(n, 3);
    assert_string_equal(ids[2], "0003_c.sql");
    svc_state_clear_list(&ids, &n);
    write_script(bin, "0002_b.sql\\n0001_a.sql\\n");
}

static void test_version_of_a_vouched_copy(void **state)
{
    (void)state;
    step_ctx_t ctx = {.cfg = cfg, .svc = &cfg->services[0]};
    baton_err_t err = {0};
    char *v = NULL;
    assert_int_equal(command_version(&ctx, &cfg->services[0], bin, &v, &err), 0);
    assert_string_equal(v, "1.2.3");
    free(v);
    int before = count_runs();
    unlink(copy);
    copy_file(bin, copy);
    fs_ident_t original = ident_of(bin), installed = ident_of(copy);
    command_remember_copy(copy, &original, &installed);
    assert_int_equal(command_version(&ctx, &cfg->services[0], copy, &v, &err), 0);
    assert_string_equal(v, "1.2.3");
    free(v);
    assert_int_equal(count_runs(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_reused_only_for_the_same_bytes),
        cmocka_unit_test(test_copy_the_swap_vouched_for),
        cmocka_unit_test(test_original_touched_after_listing_is_not_vouched_for),
        cmocka_unit_test(test_version_of_a_vouched_copy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
