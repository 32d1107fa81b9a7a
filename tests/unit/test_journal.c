/* Unit tests for the coordinator's journal on files (coordinator/journal/journal.c,
 * journal_file.c): what `baton resume`, `baton list` and `baton rollback ID` read back from it,
 * including what a crash, a full disk or a hostile edit left there (a torn last line, a damaged
 * line in the middle, lines of the wrong shape), and the lock that keeps a second coordinator out.
 * No root, no cluster: a folder under /tmp. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "journal.h"

#define ID "r20261202T120000-abcdef"
#define START                                                                                      \
    "{\"event\":\"start\",\"file\":\"/etc/baton/"                                                  \
    "r.yml\",\"sha256\":\"ab12\",\"service\":\"gamesrv\","                                         \
    "\"version\":\"1.1.0\",\"at\":\"2026-12-02T12:00:00.000Z\"}"

struct fixture {
    char dir[64];
    char path[128];
    journal_store_t *store;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_journal.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/rollouts/%s.jsonl", f->dir, ID);
    baton_err_t err = {0};
    assert_int_equal(journal_store_new(f->dir, NULL, &f->store, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    journal_store_destroy(&f->store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* The journal file exactly as given, as a crash or an editor could leave it. */
static void write_raw(struct fixture *f, const char *text)
{
    char dir[96];
    snprintf(dir, sizeof(dir), "%s/rollouts", f->dir);
    mkdir(dir, 0700);
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void append_all(struct fixture *f, const char *const *lines)
{
    journal_t *j = NULL;
    baton_err_t err = {0};
    assert_int_equal(journal_open(f->store, ID, &j, &err), 0);
    for (size_t i = 0; lines[i]; i++)
        assert_int_equal(journal_append(j, lines[i], &err), 0);
    assert_int_equal(journal_sync(j, &err), 0);
    journal_close(&j);
    assert_null(j);
}

/* A rollout that paused after batch 1, was continued, committed two nodes and ended: the
 * record has what resume and list need. */
static void test_replay_a_whole_rollout(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {
        START,
        "{\"event\":\"plan\",\"batches\":[[\"node1\"],[\"node2\",\"node3\"]]}",
        "{\"event\":\"step\",\"node\":\"node1\",\"step\":\"commit\",\"ok\":true}",
        "{\"event\":\"paused\",\"batch\":1,\"of\":2}",
        "{\"event\":\"continued\",\"batch\":1}",
        "{\"event\":\"step\",\"node\":\"node2\",\"step\":\"commit\",\"ok\":true}",
        "{\"event\":\"step\",\"node\":\"node3\",\"step\":\"commit\",\"ok\":false}",
        "{\"event\":\"step\",\"node\":\"node2\",\"step\":\"commit\",\"ok\":true}",
        "{\"event\":\"summary\",\"ok\":false,\"exit\":3,\"message\":\"FAILED on node3\","
        "\"details\":[\"node3: rolled back\",7,\"next: baton rollout r.yml\"]}",
        NULL,
    };
    append_all(f, lines);
    journal_record_t rec;
    baton_err_t err = {0};
    assert_int_equal(journal_read(f->store, ID, &rec, &err), 0);
    assert_string_equal(rec.file, "/etc/baton/r.yml");
    assert_string_equal(rec.sha256, "ab12");
    assert_string_equal(rec.service, "gamesrv");
    assert_string_equal(rec.version, "1.1.0");
    assert_string_equal(rec.started_at, "2026-12-02T12:00:00.000Z");
    assert_int_equal(json_array_size(rec.plan), 2);
    assert_int_equal(rec.n_pauses_reached, 1);
    assert_int_equal(rec.pauses_reached[0], 1);
    assert_false(rec.waiting);
    /* In the order they committed, each once; a failed commit is none. */
    assert_int_equal(json_array_size(rec.committed), 2);
    assert_string_equal(json_string_value(json_array_get(rec.committed, 0)), "node1");
    assert_string_equal(json_string_value(json_array_get(rec.committed, 1)), "node2");
    assert_int_equal(rec.exit, 3);
    /* The summary as printed: its line, then its details (what is no string is left out). */
    assert_string_equal(rec.outcome,
                        "FAILED on node3\n  node3: rolled back\n  next: baton rollout r.yml");
    assert_string_equal(rec.last_event, "summary");
    assert_int_equal(rec.lines, 9);
    journal_record_clear(&rec);
}

/* A coordinator killed mid-write left half a line: the reader takes the whole lines, and the
 * next coordinator cuts the half line off before it appends (or its first event would be glued
 * to it and the journal unreadable from there). */
static void test_torn_last_line(void **state)
{
    struct fixture *f = *state;
    write_raw(f, START "\n{\"event\":\"paused\",\"batch\":1}\n{\"event\":\"step\",\"no");
    journal_record_t rec;
    baton_err_t err = {0};
    assert_int_equal(journal_read(f->store, ID, &rec, &err), 0);
    assert_true(rec.waiting);
    assert_string_equal(rec.last_event, "paused");
    journal_record_clear(&rec);

    journal_t *j = NULL;
    assert_int_equal(journal_open(f->store, ID, &j, &err), 0);
    assert_int_equal(journal_append(j, "{\"event\":\"continued\",\"batch\":1}", &err), 0);
    journal_close(&j);
    assert_int_equal(journal_read(f->store, ID, &rec, &err), 0);
    assert_false(rec.waiting);
    assert_int_equal(rec.lines, 3);
    journal_record_clear(&rec);
    FILE *fp = fopen(f->path, "r");
    assert_non_null(fp);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_null(strstr(buf, "\"no"));
    assert_int_equal(buf[n - 1], '\n');
}

/* Only the last line can be torn by a crash: a damaged line before it is damage, named by its
 * number, and nothing of the record is handed out. */
static void test_damaged_line_in_the_middle(void **state)
{
    struct fixture *f = *state;
    write_raw(f, START "\n{\"event\":\"paused\",\"batch\":1}\nnot json at all\n"
                       "{\"event\":\"continued\",\"batch\":1}\n");
    journal_record_t rec;
    baton_err_t err = {0};
    assert_int_equal(journal_read(f->store, ID, &rec, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "line 3 is not a journal event"));
    assert_null(rec.file);
    assert_null(rec.plan);

    /* An empty line in the middle is damage too; a JSON array is no event. */
    write_raw(f, START "\n\n{\"event\":\"continued\"}\n");
    err = (baton_err_t){0};
    assert_int_equal(journal_read(f->store, ID, &rec, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "line 2"));
    write_raw(f, START "\n[1,2]\n{\"event\":\"continued\"}\n");
    err = (baton_err_t){0};
    assert_int_equal(journal_read(f->store, ID, &rec, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "line 2"));
}

static void test_not_the_start_of_a_rollout(void **state)
{
    struct fixture *f = *state;
    journal_record_t rec;
    baton_err_t err = {0};
    write_raw(f, "{\"event\":\"paused\",\"batch\":1}\n");
    assert_int_equal(journal_read(f->store, ID, &rec, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "not the start of a rollout"));
    /* A start without its file or digest starts nothing. */
    write_raw(f, "{\"event\":\"start\",\"file\":\"/r.yml\"}\n");
    err = (baton_err_t){0};
    assert_int_equal(journal_read(f->store, ID, &rec, &err), -EBADMSG);
    write_raw(f, "");
    err = (baton_err_t){0};
    assert_int_equal(journal_read(f->store, ID, &rec, &err), -EBADMSG);
    err = (baton_err_t){0};
    assert_int_equal(journal_read(f->store, "r20991231T000000-000000", &rec, &err), -ENOENT);
}

/* Fields of the wrong type, out of range or missing are ignored, never trusted: no pause
 * beyond the record's room, no node that is no string, no exit code from a string. */
static void test_hostile_fields(void **state)
{
    struct fixture *f = *state;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    assert_non_null(m);
    fputs(START "\n", m);
    fputs("{\"event\":\"paused\",\"batch\":-4}\n{\"event\":\"paused\",\"batch\":\"2\"}\n", m);
    fputs("{\"event\":\"paused\",\"batch\":99999999999}\n", m);
    for (int i = 0; i < 100; i++)
        fprintf(m, "{\"event\":\"paused\",\"batch\":%d}\n", i + 1);
    fputs("{\"event\":\"step\",\"node\":7,\"step\":\"commit\",\"ok\":true}\n", m);
    fputs("{\"event\":\"step\",\"node\":\"node1\",\"step\":\"commit\",\"ok\":\"yes\"}\n", m);
    fputs("{\"event\":\"plan\",\"batches\":\"node1\"}\n", m);
    fputs("{\"event\":5}\n", m);
    fputs("{\"event\":\"summary\",\"exit\":\"3\",\"message\":[\"x\"]}\n", m);
    fclose(m);
    write_raw(f, text);
    free(text);
    journal_record_t rec;
    baton_err_t err = {0};
    assert_int_equal(journal_read(f->store, ID, &rec, &err), 0);
    assert_int_equal(rec.n_pauses_reached, 64); /* its room; the rest not kept */
    assert_int_equal(rec.pauses_reached[0], 1);
    assert_int_equal(json_array_size(rec.committed), 0);
    assert_null(rec.plan);
    assert_int_equal(rec.exit, -1); /* no exit code: not read as 0, done */
    assert_null(rec.outcome);
    assert_string_equal(rec.last_event, "summary");
    journal_record_clear(&rec);
}

/* Who dumped and migrated each database, and that a rollback of that node takes it back out
 * (what `baton rollback ID` and a resume use to decide who restores a shared database). */
static void test_groups(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {
        START,
        "{\"event\":\"step\",\"node\":\"node1\",\"step\":\"dump\",\"ok\":true,\"database\":\"7/"
        "game\"}",
        "{\"event\":\"step\",\"node\":\"node1\",\"step\":\"migrate\",\"ok\":true,"
        "\"database\":\"7/game\",\"ids\":[\"0001\",\"0002\"]}",
        "{\"event\":\"step\",\"node\":\"node2\",\"step\":\"dump\",\"ok\":true,\"database\":\"7/"
        "game\","
        "\"shared\":true}",
        "{\"event\":\"step\",\"node\":\"node3\",\"step\":\"dump\",\"ok\":true,\"database\":\"9/"
        "chat\"}",
        "{\"event\":\"step\",\"node\":\"node4\",\"step\":\"dump\",\"ok\":false,\"database\":\"5/"
        "x\"}",
        NULL,
    };
    append_all(f, lines);
    journal_record_t rec;
    baton_err_t err = {0};
    assert_int_equal(journal_read(f->store, ID, &rec, &err), 0);
    assert_int_equal(json_object_size(rec.groups), 2);
    json_t *g = json_object_get(rec.groups, "7/game");
    assert_string_equal(json_string_value(json_object_get(g, "migrator")), "node1");
    assert_int_equal(json_array_size(json_object_get(g, "ids")), 2);
    journal_record_clear(&rec);

    const char *more[] = {
        "{\"event\":\"rollback\",\"node\":\"node1\",\"step\":\"rollback\",\"ok\":true}", NULL};
    append_all(f, more);
    assert_int_equal(journal_read(f->store, ID, &rec, &err), 0);
    assert_int_equal(json_object_size(rec.groups), 1);
    assert_non_null(json_object_get(rec.groups, "9/chat"));
    journal_record_clear(&rec);
}

/* One coordinator drives a rollout: a second one is told who holds it, and gets it once the
 * first closed it. Requests (resume, abort) are taken once. */
static void test_lock_and_requests(void **state)
{
    struct fixture *f = *state;
    journal_t *a = NULL, *b = NULL;
    baton_err_t err = {0};
    assert_int_equal(journal_open(f->store, ID, &a, &err), 0);
    assert_int_equal(journal_append(a, START, &err), 0);
    assert_int_equal(journal_probe_lock(f->store, ID, &err), -EBUSY);
    err = (baton_err_t){0};
    assert_int_equal(journal_open(f->store, ID, &b, &err), -EBUSY);
    assert_non_null(strstr(err.msg, "driven by another coordinator"));
    assert_null(b);
    journal_close(&a);
    err = (baton_err_t){0};
    assert_int_equal(journal_probe_lock(f->store, ID, &err), 0);

    assert_false(journal_take(f->store, ID, "continue"));
    assert_int_equal(journal_request(f->store, ID, "continue", &err), 0);
    assert_true(journal_take(f->store, ID, "continue"));
    assert_false(journal_take(f->store, ID, "continue"));
}

/* Names that are no rollout id never reach the file system. */
static void test_hostile_ids(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {"../../etc/passwd", "", "a/b", "r 1", NULL};
    for (size_t i = 0; bad[i]; i++) {
        journal_record_t rec;
        journal_t *j = NULL;
        baton_err_t err = {0};
        assert_int_equal(journal_read(f->store, bad[i], &rec, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "is not a rollout id"));
        err = (baton_err_t){0};
        assert_int_equal(journal_open(f->store, bad[i], &j, &err), -EINVAL);
        assert_null(j);
        err = (baton_err_t){0};
        assert_int_equal(journal_request(f->store, bad[i], "abort", &err), -EINVAL);
        assert_false(journal_take(f->store, bad[i], "abort"));
    }
}

static void test_list_newest_first(void **state)
{
    struct fixture *f = *state;
    const char *ids[] = {"r20261202T110000-000001", "r20261202T130000-000003",
                         "r20261202T120000-000002"};
    /* Newest by its last line, not by its name: the oldest rollout, resumed, comes first. */
    const time_t last[] = {3000, 1000, 2000};
    for (size_t i = 0; i < 3; i++) {
        journal_t *j = NULL;
        baton_err_t err = {0};
        assert_int_equal(journal_open(f->store, ids[i], &j, &err), 0);
        assert_int_equal(journal_append(j, START, &err), 0);
        journal_close(&j);
        char path[160];
        snprintf(path, sizeof(path), "%s/rollouts/%s.jsonl", f->dir, ids[i]);
        const struct timespec t[2] = {{last[i], 0}, {last[i], 0}};
        assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
    }
    char **list = NULL;
    size_t n = 0;
    baton_err_t err = {0};
    assert_int_equal(journal_list(f->store, &list, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0], ids[0]);
    assert_string_equal(list[1], ids[2]);
    assert_string_equal(list[2], ids[1]);
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_a_whole_rollout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_last_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_line_in_the_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_the_start_of_a_rollout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_newest_first, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
