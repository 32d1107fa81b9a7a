/* Unit tests for the agent's state file (what a restarted agent knows), its command templates
 * and version matching. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "command.h"
#include "fsutil.h"
#include "state.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/baton-test-state-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static void write_state(const char *text)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/gamesrv.json", dir);
    assert_int_equal(fs_write_atomic(p, text, strlen(text), 0600, NULL), 0);
}

static void test_missing_file_is_a_fresh_state(void **state)
{
    (void)state;
    svc_state_t *st = NULL;
    assert_int_equal(svc_state_load(dir, "gamesrv", &st, NULL), 0);
    assert_string_equal(st->service, "gamesrv");
    assert_string_equal(st->step, "");
    assert_true(step_settled(st->step, st->in_progress));
    svc_state_destroy(&st);
    assert_null(st);
}

static void test_round_trip(void **state)
{
    (void)state;
    svc_state_t *st = svc_state_new("gamesrv");
    assert_int_equal(svc_state_begin(st, "r1"), 0);
    svc_state_set(&st->step, "migrate");
    svc_state_set(&st->in_progress, "start");
    svc_state_set(&st->previous_version, "1.0.0");
    svc_state_set(&st->dump_path, "/var/backups/x.dump");
    st->dump_size = 1234567890123ull;
    st->swapped = st->was_active = st->have_ids_before = true;
    svc_state_push(&st->ids_before, &st->n_ids_before, "0001_players.sql");
    svc_state_push(&st->applied, &st->n_applied, "0002_player_level.sql");
    svc_state_push(&st->applied, &st->n_applied, "0003_inventory.sql");
    assert_int_equal(svc_state_save(dir, st, NULL), 0);
    svc_state_destroy(&st);

    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%s/gamesrv.json.tmp", dir);
    assert_int_equal(access(tmp, F_OK), -1); /* the temp file was renamed, not left */

    assert_int_equal(svc_state_load(dir, "gamesrv", &st, NULL), 0);
    assert_string_equal(st->rollout_id, "r1");
    assert_string_equal(st->step, "migrate");
    assert_string_equal(st->in_progress, "start");
    assert_string_equal(st->previous_version, "1.0.0");
    assert_true(st->dump_size == 1234567890123ull);
    assert_true(st->swapped && st->was_active && st->have_ids_before && !st->stopped);
    assert_int_equal(st->n_applied, 2);
    assert_string_equal(st->applied[1], "0003_inventory.sql");
    assert_string_equal(st->ids_before[0], "0001_players.sql");
    assert_false(step_settled(st->step, st->in_progress)); /* a step was cut short */

    /* A new rollout forgets everything of the old one but the service. */
    assert_int_equal(svc_state_begin(st, "r2"), 0);
    assert_int_equal(st->n_applied, 0);
    assert_string_equal(st->dump_path, "");
    assert_string_equal(st->service, "gamesrv");
    svc_state_destroy(&st);
}

/* stop_asked: kept; a new rollout clears it; a file from an agent before it had the field may
 * have asked for a stop (the rollback then stops and starts as it always did). */
static void test_stop_asked(void **state)
{
    (void)state;
    svc_state_t *st = svc_state_new("gamesrv");
    assert_int_equal(svc_state_begin(st, "r1"), 0);
    assert_false(st->stop_asked);
    assert_int_equal(svc_state_save(dir, st, NULL), 0);
    svc_state_destroy(&st);
    assert_int_equal(svc_state_load(dir, "gamesrv", &st, NULL), 0);
    assert_false(st->stop_asked);
    st->stop_asked = true;
    assert_int_equal(svc_state_save(dir, st, NULL), 0);
    svc_state_destroy(&st);
    assert_int_equal(svc_state_load(dir, "gamesrv", &st, NULL), 0);
    assert_true(st->stop_asked);
    assert_int_equal(svc_state_begin(st, "r2"), 0);
    assert_false(st->stop_asked);
    st->stop_asked = false;
    assert_int_equal(svc_state_save(dir, st, NULL), 0);
    svc_state_destroy(&st);

    char p[128], *text = NULL;
    snprintf(p, sizeof(p), "%s/gamesrv.json", dir);
    assert_int_equal(fs_read_all(p, 1 << 20, &text, NULL, NULL), 0);
    char *at = strstr(text, "\"stop_asked\": false,");
    assert_non_null(at);
    memmove(at, at + strlen("\"stop_asked\": false,"),
            strlen(at + strlen("\"stop_asked\": false,")) + 1);
    write_state(text);
    free(text);
    assert_int_equal(svc_state_load(dir, "gamesrv", &st, NULL), 0);
    assert_true(st->stop_asked);
    svc_state_destroy(&st);
}

/* A pre-flight keeps the finished record it replaces; a release puts it back; Results on
 * record survive a save and load byte for byte, and a new rollout forgets them. */
static void test_prior_record_and_results(void **state)
{
    (void)state;
    svc_state_t *st = svc_state_new("gamesrv");
    assert_int_equal(svc_state_begin(st, "r1"), 0);
    svc_state_set(&st->step, "committed");
    assert_int_equal(svc_state_begin(st, "r2"), 0);
    assert_string_equal(st->prior_rollout_id, "r1");
    assert_string_equal(st->prior_step, "committed");
    /* The same rollout's pre-flight again keeps the first prior record. */
    svc_state_set(&st->step, "preflight");
    assert_int_equal(svc_state_begin(st, "r2"), 0);
    assert_string_equal(st->prior_rollout_id, "r1");
    const uint8_t packed[] = {0x08, 0x03, 0x12, 0x02, 'n', 'o', 0x00, 0xff};
    assert_int_equal(svc_state_set_result(st, STEP_PREFLIGHT, 77, packed, sizeof(packed)), 0);
    /* any uint64 a coordinator picks survives the file, even above INT64_MAX */
    assert_int_equal(svc_state_set_result(st, STEP_STOP, UINT64_MAX, packed, 1), 0);
    st->in_progress_request = UINT64_MAX - 1;
    assert_int_equal(svc_state_recorded(st, 0), (1u << STEP_PREFLIGHT) | (1u << STEP_STOP));
    assert_int_equal(svc_state_recorded(st, 77), 1u << STEP_PREFLIGHT);
    assert_int_equal(svc_state_recorded(st, UINT64_MAX), 1u << STEP_STOP);
    assert_int_equal(svc_state_recorded(st, 78), 0); /* another request: not its answer */
    assert_int_equal(svc_state_save(dir, st, NULL), 0);
    svc_state_destroy(&st);

    assert_int_equal(svc_state_load(dir, "gamesrv", &st, NULL), 0);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(svc_state_get_result(st, STEP_PREFLIGHT, &buf, &len), 0);
    assert_int_equal(len, sizeof(packed));
    assert_memory_equal(buf, packed, len);
    free(buf);
    assert_int_equal(svc_state_get_result(st, STEP_VERIFY, &buf, &len), -ENOENT);
    assert_true(st->in_progress_request == UINT64_MAX - 1);

    assert_int_equal(svc_state_release(st), 0);
    assert_string_equal(st->rollout_id, "r1");
    assert_string_equal(st->step, "committed");
    assert_string_equal(st->prior_rollout_id, "");
    assert_int_equal(svc_state_recorded(st, 0), 0);
    svc_state_destroy(&st);
}

static void test_idle_steps(void **state)
{
    (void)state;
    svc_state_t *st = svc_state_new("gamesrv");
    const char *idle[] = {"", "preflight", "committed", "rolled_back"};
    const char *busy[] = {"stop", "dump", "swap", "migrate", "start", "verify", "rollback_failed"};
    for (size_t i = 0; i < 4; i++) {
        svc_state_set(&st->step, idle[i]);
        assert_true(step_settled(st->step, st->in_progress));
    }
    for (size_t i = 0; i < 7; i++) {
        svc_state_set(&st->step, busy[i]);
        assert_false(step_settled(st->step, st->in_progress));
    }
    svc_state_destroy(&st);
}

static void test_damaged_files_are_refused(void **state)
{
    (void)state;
    svc_state_t *st = NULL;
    baton_err_t err = {0};
    write_state("{\"service\": \"gamesrv\",\n  \"step\": ");
    assert_int_equal(svc_state_load(dir, "gamesrv", &st, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "gamesrv.json:2:"));
    assert_null(st);

    write_state("[1, 2]");
    assert_int_equal(svc_state_load(dir, "gamesrv", &st, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "not a JSON object"));

    /* A valid file with one field of the wrong type names that field. */
    svc_state_t *good = svc_state_new("gamesrv");
    assert_int_equal(svc_state_save(dir, good, NULL), 0);
    svc_state_destroy(&good);
    char p[128], *text = NULL;
    snprintf(p, sizeof(p), "%s/gamesrv.json", dir); /* reused below */
    assert_int_equal(fs_read_all(p, 1 << 20, &text, NULL, NULL), 0);
    char *at = strstr(text, "\"swapped\": false");
    assert_non_null(at);
    memcpy(at, "\"swapped\": 12345", 16);
    write_state(text);
    free(text);
    assert_int_equal(svc_state_load(dir, "gamesrv", &st, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "field swapped"));

    /* Another service's file under this name is refused too. */
    good = svc_state_new("other");
    assert_int_equal(svc_state_save(dir, good, NULL), 0);
    svc_state_destroy(&good);
    char from[128];
    snprintf(from, sizeof(from), "%s/other.json", dir);
    assert_int_equal(rename(from, p), 0);
    assert_int_equal(svc_state_load(dir, "gamesrv", &st, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "field service: 'other'"));
}

/* The history survives rollouts (begin, release) and restarts; bad history is refused. */
static void test_history(void **state)
{
    (void)state;
    svc_state_t *st = svc_state_new("gamesrv");
    char *v1[] = {"0001.sql"}, *v2[] = {"0001.sql", "0002.sql"};
    assert_int_equal(svc_state_history_add(st, "1.0.0", v1, 1, NULL), 0);
    assert_int_equal(svc_state_history_add(st, "1.1.0", v2, 2, ""), 0);
    assert_int_equal(svc_state_history_add(st, "1.1.0", v2, 2, "/b/d.dump"), 0); /* updates */
    assert_int_equal(st->n_history, 2);
    assert_int_equal(svc_state_set(&st->highest_version, "1.1.0"), 0);
    assert_int_equal(svc_state_set(&st->database_id, "7/game"), 0);
    assert_int_equal(svc_state_begin(st, "r2"), 0);
    assert_int_equal(svc_state_release(st), 0);
    assert_int_equal(st->n_history, 2);
    assert_string_equal(st->highest_version, "1.1.0");
    assert_string_equal(st->database_id, "7/game");
    for (int i = 0; i < STATE_HISTORY_MAX + 3; i++) { /* the oldest go */
        char v[16];
        snprintf(v, sizeof(v), "2.%d.0", i);
        assert_int_equal(svc_state_history_add(st, v, v1, 1, NULL), 0);
    }
    assert_int_equal(st->n_history, STATE_HISTORY_MAX);
    assert_int_equal(svc_state_save(dir, st, NULL), 0);
    svc_state_t *back = NULL;
    baton_err_t err = {0};
    assert_int_equal(svc_state_load(dir, "gamesrv", &back, &err), 0);
    assert_int_equal(back->n_history, STATE_HISTORY_MAX);
    assert_string_equal(back->history[STATE_HISTORY_MAX - 1].version, "2.34.0");
    assert_non_null(svc_state_history_find(back, "2.3.0"));
    assert_null(svc_state_history_find(back, "1.0.0"));
    assert_string_equal(back->highest_version, "1.1.0");
    svc_state_destroy(&back);
    svc_state_destroy(&st);

    char p[128], *text = NULL;
    snprintf(p, sizeof(p), "%s/gamesrv.json", dir);
    assert_int_equal(fs_read_all(p, 1 << 20, &text, NULL, NULL), 0);
    char *at = strstr(text, "\"history\": [");
    assert_non_null(at);
    char *bad = NULL; /* "history": 7, "h": [...]: history is no list */
    assert_true(asprintf(&bad, "%.*s\"history\": 7, \"h\": %s", (int)(at - text), text,
                         at + strlen("\"history\": ")) > 0);
    write_state(bad);
    free(bad);
    free(text);
    assert_int_equal(svc_state_load(dir, "gamesrv", &back, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "field history"));
}

static void test_command_templates(void **state)
{
    (void)state;
    char **argv = NULL;
    assert_int_equal(
        command_argv("{binary} migrate down --limit {n}", "/opt/g/bin/gamesrv", 2, &argv, NULL), 0);
    assert_string_equal(argv[0], "/opt/g/bin/gamesrv");
    assert_string_equal(argv[3], "--limit");
    assert_string_equal(argv[4], "2");
    assert_null(argv[5]);
    command_argv_free(&argv);
    assert_null(argv);
    /* No shell: quotes and semicolons are just characters of one word. */
    assert_int_equal(command_argv("{binary} 'a;b' --x={n}", "b", 7, &argv, NULL), 0);
    assert_string_equal(argv[1], "'a;b'");
    assert_string_equal(argv[2], "--x=7");
    command_argv_free(&argv);
    baton_err_t err = {0};
    assert_int_equal(command_argv("   ", "b", 0, &argv, &err), -EINVAL);
}

/* Nakama prints "3.15.0+1783fad1" while a rollout file says 3.15.0: one version, one entry. */
static void test_history_build_metadata(void **state)
{
    (void)state;
    svc_state_t *st = svc_state_new("nakama");
    assert_non_null(st);
    char *ids1[] = {"a", "b"}, *ids2[] = {"a", "b", "c"};
    assert_int_equal(svc_state_history_add(st, "3.14.0+e2df3a29", ids1, 2, ""), 0);
    assert_int_equal(svc_state_history_add(st, "3.14.0", ids1, 2, "/b/nakama+r1.dump"), 0);
    assert_int_equal(st->n_history, 1);
    assert_int_equal(svc_state_history_add(st, "3.15.0", ids2, 3, ""), 0);
    assert_int_equal(st->n_history, 2);
    const version_record_t *rec = svc_state_history_find(st, "3.14.0");
    assert_non_null(rec);
    assert_string_equal(rec->dump, "/b/nakama+r1.dump");
    assert_ptr_equal(svc_state_history_find(st, "3.15.0+1783fad1"), &st->history[1]);
    assert_null(svc_state_history_find(st, "3.14.1"));
    svc_state_destroy(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_file_is_a_fresh_state, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_prior_record_and_results, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_round_trip, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_stop_asked, make_dir, remove_dir),
        cmocka_unit_test(test_idle_steps),
        cmocka_unit_test_setup_teardown(test_damaged_files_are_refused, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_history, make_dir, remove_dir),
        cmocka_unit_test(test_command_templates),
        cmocka_unit_test(test_history_build_metadata),
    };
    return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
