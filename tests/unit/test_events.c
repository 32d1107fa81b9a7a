/* Unit tests for the coordinator's events, one per builder: what --json prints for each (the
 * schema the README documents, which scripts and the Ansible module read), what the text mode
 * makes of them, and that the journal keeps them so a replay finds the rollout again. The step
 * and rollback events are built by node.c from an agent's Result, as in a rollout. */
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
#include <jansson.h>
#include <zmq.h>

#include "envelope.h"
#include "event_registry.h"
#include "journal.h"
#include "recap.h"
#include "engine.h"
#include "events.h"
#include "node.h"
#include "run.h"
#include "steps.h"

static rollout_node_t defs[2] = {{"node1", "ipc:///nonexistent/a", {""}},
                                 {"node2", "ipc:///nonexistent/b", {""}}};
static rollout_file_t rf = {.service = "gamesrv",
                            .version = "1.1.0",
                            .n_nodes = 2,
                            .nodes = defs,
                            .step_timeout_ms = 1000,
                            .connect_timeout_ms = 1000,
                            .liveness_ms = 30000,
                            .insecure = true};

struct fixture {
    struct rollout_opts opts;
    struct run run;
    node_t nodes[2];
    FILE *out; /* stdout goes here */
    int saved; /* the real stdout */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->opts.json = true;
    f->run = (struct run){.rf = &rf, .opts = &f->opts, .n = 2, .nodes = f->nodes};
    snprintf(f->run.id, sizeof(f->run.id), "r-test");
    f->run.sha256 = "5f0c0000000000000000000000000000000000000000000000000000000000aa";
    for (size_t i = 0; i < 2; i++)
        f->nodes[i] = (node_t){.index = i, .def = &defs[i], .batch = i + 1};
    fflush(stdout);
    f->saved = dup(STDOUT_FILENO);
    f->out = tmpfile();
    dup2(fileno(f->out), STDOUT_FILENO);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fflush(stdout);
    dup2(f->saved, STDOUT_FILENO);
    close(f->saved);
    fclose(f->out);
    run_disconnect(&f->run);
    free(f);
    return 0;
}

/* The last line printed, parsed. */
static json_t *last_event(struct fixture *f)
{
    fflush(stdout);
    rewind(f->out);
    char line[8192], last[8192] = "";
    while (fgets(line, sizeof(line), f->out))
        snprintf(last, sizeof(last), "%s", line);
    fseek(f->out, 0, SEEK_END);
    json_t *o = json_loads(last, 0, NULL);
    assert_non_null(o);
    /* Every event names its rollout and when it happened. */
    assert_string_equal(json_string_value(json_object_get(o, "rollout")), "r-test");
    assert_non_null(strchr(json_string_value(json_object_get(o, "at")), 'T'));
    return o;
}

static const char *s(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "(missing)";
}

static void test_check_node_error(void **state)
{
    struct fixture *f = *state;
    emit_check(&f->run, "preflight", &f->nodes[1], false, "unit gamesrv.service not found");
    json_t *o = last_event(f);
    assert_string_equal(s(o, "event"), "check");
    assert_string_equal(s(o, "phase"), "preflight");
    assert_string_equal(s(o, "node"), "node2");
    assert_true(json_is_false(json_object_get(o, "ok")));
    assert_true(json_is_integer(json_object_get(o, "ms")));
    assert_string_equal(s(o, "message"), "unit gamesrv.service not found");
    json_decref(o);

    emit_node(&f->run, &f->nodes[1], "upgrading");
    o = last_event(f);
    assert_string_equal(s(o, "event"), "node");
    assert_int_equal(json_integer_value(json_object_get(o, "index")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "of")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "batch")), 2);
    assert_string_equal(s(o, "message"), "upgrading");
    json_decref(o);

    emit_error(&f->run, "artifact ./x: No such file or directory");
    o = last_event(f);
    assert_string_equal(s(o, "event"), "error");
    assert_string_equal(s(o, "message"), "artifact ./x: No such file or directory");
    json_decref(o);
}

static void test_summary_and_names(void **state)
{
    struct fixture *f = *state;
    f->nodes[0].state = NODE_DONE;
    f->nodes[1].state = NODE_ROLLED_BACK;
    char *done = node_names(&f->run, NODE_DONE, NODE_DONE);
    char *none = node_names(&f->run, NODE_LOST, NODE_LOST);
    char *both = node_names(&f->run, NODE_DONE, NODE_ROLLED_BACK);
    assert_string_equal(done, "node1");
    assert_string_equal(none, "none");
    assert_string_equal(both, "node1, node2");
    free(done);
    free(none);
    free(both);
    assert_int_equal(emit_summary(&f->run, EXIT_ROLLED_BACK, "FAILED on %s: %d", "node2", 7),
                     EXIT_ROLLED_BACK);
    json_t *o = last_event(f);
    assert_string_equal(s(o, "event"), "summary");
    assert_true(json_is_false(json_object_get(o, "ok")));
    assert_int_equal(json_integer_value(json_object_get(o, "exit")), 3);
    assert_string_equal(s(o, "message"), "FAILED on node2: 7");
    assert_true(json_is_false(json_object_get(o, "interrupted")));
    json_t *nodes = json_object_get(o, "nodes");
    assert_string_equal(s(nodes, "node1"), "done");
    assert_string_equal(s(nodes, "node2"), "rolled_back");
    json_decref(o);
}

/* A summary of several lines: one line says how it ended, the others are a list, and the one
 * that says what to do next is also "next". Every event says its schema. */
static void test_summary_lines(void **state)
{
    struct fixture *f = *state;
    emit_summary(&f->run, EXIT_ROLLED_BACK,
                 "FAILED on node2: not healthy\n  node2: rolled back to where it was\n  next: "
                 "fix the cause, then baton rollout r.yml again\n  untouched: none");
    json_t *o = last_event(f);
    assert_int_equal(json_integer_value(json_object_get(o, "schema")), EVENTS_SCHEMA);
    assert_string_equal(s(o, "message"), "FAILED on node2: not healthy");
    json_t *d = json_object_get(o, "details");
    assert_int_equal(json_array_size(d), 3);
    assert_string_equal(json_string_value(json_array_get(d, 0)),
                        "node2: rolled back to where it was");
    assert_string_equal(json_string_value(json_array_get(d, 2)), "untouched: none");
    assert_string_equal(s(o, "next"), "fix the cause, then baton rollout r.yml again");
    assert_null(json_object_get(o, "recap")); /* no recap kept: none given */
    json_decref(o);
    emit_summary(&f->run, EXIT_DONE, "done: 2 of 2");
    o = last_event(f);
    assert_int_equal(json_array_size(json_object_get(o, "details")), 0);
    assert_null(json_object_get(o, "next"));
    json_decref(o);
}

/* The recap is made of the events as they were emitted: the version Hello reported, the
 * downtime from stop to the end of start (and the rollback's), the version after. */
static void test_recap(void **state)
{
    struct fixture *f = *state;
    f->run.recap = recap_new(&f->run);
    assert_non_null(f->run.recap);
    for (int i = 0; i < 2; i++)
        emit(&f->run, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s, s:s}", "event", "check", "phase",
                                "hello", "node", i ? "node2" : "node1", "ok", 1, "ms", 3, "message",
                                "", "version", "1.0.0"));
    emit_summary(&f->run, EXIT_REFUSED, "refused: nothing was changed");
    json_t *o = last_event(f);
    assert_null(json_object_get(o, "recap")); /* nothing began: no table */
    json_decref(o);
    static const struct {
        const char *step;
        int ms;
    } steps[] = {{"stop", 100}, {"dump", 200},    {"swap", 10},  {"migrate", 300},
                 {"start", 90}, {"verify", 5000}, {"commit", 40}};
    emit_node(&f->run, &f->nodes[0], "upgrading");
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++)
        emit(&f->run, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s}", "event", "step", "node", "node1",
                                "step", steps[k].step, "ok", 1, "ms", steps[k].ms, "message", ""));
    emit_node(&f->run, &f->nodes[1], "upgrading");
    emit(&f->run, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s}", "event", "step", "node", "node2",
                            "step", "stop", "ok", 1, "ms", 50, "message", ""));
    emit(&f->run, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s}", "event", "step", "node", "node2",
                            "step", "dump", "ok", 0, "ms", 70, "message", "disk full"));
    emit(&f->run, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s, s:s, s:b}", "event", "rollback", "node",
                            "node2", "step", "rollback", "ok", 1, "ms", 400, "message", "",
                            "version", "1.0.0", "restored_dump", 0));
    f->nodes[0].state = NODE_DONE;
    f->nodes[1].state = NODE_ROLLED_BACK;
    emit_summary(&f->run, EXIT_ROLLED_BACK, "FAILED on node2: disk full");
    o = last_event(f);
    json_t *recap = json_object_get(o, "recap");
    assert_int_equal(json_array_size(recap), 2);
    json_t *a = json_array_get(recap, 0), *b = json_array_get(recap, 1);
    assert_string_equal(s(a, "node"), "node1");
    assert_string_equal(s(a, "before"), "1.0.0");
    assert_string_equal(s(a, "after"), "1.1.0");
    assert_int_equal(json_integer_value(json_object_get(a, "down_ms")), 700);
    assert_string_equal(s(a, "outcome"), "upgraded");
    assert_string_equal(s(b, "after"), "1.0.0");
    assert_int_equal(json_integer_value(json_object_get(b, "down_ms")), 520);
    assert_string_equal(s(b, "state"), "rolled_back");
    assert_string_equal(s(b, "outcome"), "rolled back");
    json_decref(o);
    recap_destroy(&f->run.recap);
    assert_null(f->run.recap);
}

/* A stop that failed stopped nothing when the agent answers the rollback as a release (no
 * version): the recap shows no downtime. One that failed after systemd was asked is rolled
 * back: its time and the rollback's are downtime. */
static void test_recap_failed_stop(void **state)
{
    struct fixture *f = *state;
    f->run.recap = recap_new(&f->run);
    assert_non_null(f->run.recap);
    for (int i = 0; i < 2; i++) {
        const char *node = i ? "node2" : "node1";
        emit(&f->run,
             json_pack("{s:s, s:s, s:s, s:b, s:i, s:s, s:s}", "event", "check", "phase", "hello",
                       "node", node, "ok", 1, "ms", 3, "message", "", "version", "1.0.0"));
        emit_node(&f->run, &f->nodes[i], "upgrading");
        emit(&f->run, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s}", "event", "step", "node", node,
                                "step", "stop", "ok", 0, "ms", i ? 8000 : 30, "message",
                                i ? "stop of gamesrv.service timed out"
                                  : "migration lock is held by node9"));
        emit(&f->run, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s, s:s, s:b}", "event", "rollback",
                                "node", node, "step", "rollback", "ok", 1, "ms", i ? 900 : 20,
                                "message", i ? "back on 1.0.0" : "released: nothing had changed",
                                "version", i ? "1.0.0" : "", "restored_dump", 0));
        f->nodes[i].state = NODE_ROLLED_BACK;
    }
    emit_summary(&f->run, EXIT_ROLLED_BACK, "FAILED on node1");
    json_t *o = last_event(f);
    json_t *recap = json_object_get(o, "recap");
    assert_int_equal(json_array_size(recap), 2);
    json_t *a = json_array_get(recap, 0), *b = json_array_get(recap, 1);
    assert_int_equal(json_integer_value(json_object_get(a, "down_ms")), 0);
    assert_string_equal(s(a, "after"), "1.0.0");
    assert_int_equal(json_integer_value(json_object_get(b, "down_ms")), 8900);
    assert_string_equal(s(b, "after"), "1.0.0");
    json_decref(o);
    recap_destroy(&f->run.recap);
}

/* An agent's Result, as the client hands it over (unpacked, owned by the receiver). */
static Baton__Envelope *result(Baton__Status status, const char *msg, char **applied,
                               size_t n_applied, const char *version, bool restored)
{
    Baton__Result res = BATON__RESULT__INIT;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    res.status = status;
    res.message = (char *)msg;
    res.applied = applied;
    res.n_applied = n_applied;
    res.version = (char *)version;
    res.restored_dump = restored;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;
    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    assert_int_equal(envelope_pack(&env, &buf, &len, &err), 0);
    Baton__Envelope *out = NULL;
    assert_int_equal(envelope_unpack(buf, len, &out, &err), 0);
    free(buf);
    return out;
}

static bool no_schedule(struct run *run)
{
    (void)run;
    return false;
}

static void ignore(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err)
{
    (void)run, (void)nd, (void)r, (void)err;
    envelope_free(&env);
}

static void test_step_and_rollback(void **state)
{
    struct fixture *f = *state;
    const engine_ops_t ops = {no_schedule, ignore};
    baton_err_t err = {0};
    /* Clients whose sends only queue: a failed step's rollback goes nowhere here. */
    assert_int_equal(run_connect(&f->run, &err), 0);
    size_t n = 0, migrate = 0;
    const step_def_t *const *seq = step_upgrade_sequence(&n);
    while (seq[migrate]->id != STEP_MIGRATE)
        migrate++;

    node_t *nd = &f->nodes[0];
    nd->step = migrate;
    nd->state = NODE_UPGRADING;
    char *ids[] = {"0002_player_level.sql"};
    node_step_result(&f->run, nd, 0, result(BATON__STATUS__STATUS_OK, "", ids, 1, "", false), &err,
                     &ops);
    json_t *o = last_event(f);
    assert_string_equal(s(o, "event"), "step");
    assert_string_equal(s(o, "node"), "node1");
    assert_string_equal(s(o, "step"), "migrate");
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_string_equal(s(o, "message"), "applied 0002_player_level.sql");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "applied"), 0)),
                        "0002_player_level.sql");
    assert_true(nd->applied);
    json_decref(o);
    client_abandon(nd->client); /* the next step went to the queue */

    /* A failed verify: the event says why, the node is rolled back (the policy halts). */
    nd->step = migrate + 2;
    node_step_result(
        &f->run, nd, 0,
        result(BATON__STATUS__STATUS_FAILED, "not healthy after 3 s", NULL, 0, "", false), &err,
        &ops);
    o = last_event(f);
    assert_string_equal(s(o, "step"), "verify");
    assert_true(json_is_false(json_object_get(o, "ok")));
    assert_string_equal(s(o, "message"), "not healthy after 3 s");
    json_decref(o);
    assert_string_equal(nd->why, "not healthy after 3 s");
    assert_int_equal(nd->call, CALL_ROLLBACK);
    assert_true(f->run.halting);
    assert_int_equal(f->run.failures, 1);

    client_abandon(nd->client);
    node_set_call(&f->run, nd, CALL_NONE);
    nd->call_t0 = now_ms();
    node_rollback_result(&f->run, nd, 0,
                         result(BATON__STATUS__STATUS_OK, "", NULL, 0, "1.0.0", true), &err);
    o = last_event(f);
    assert_string_equal(s(o, "event"), "rollback");
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_string_equal(s(o, "message"), "back on 1.0.0 (database restored from the dump)");
    assert_true(json_is_true(json_object_get(o, "restored_dump")));
    assert_int_equal(nd->state, NODE_ROLLED_BACK);
    json_decref(o);
}

/* The text mode renders the same events; a step of another node gets that node's header. */
static void test_text(void **state)
{
    struct fixture *f = *state;
    f->opts.json = false;
    emit_node(&f->run, &f->nodes[0], "upgrading");
    emit(&f->run, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s}", "event", "step", "node", "node1",
                            "step", "stop", "ok", 1, "ms", 12, "message", ""));
    emit(&f->run, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s}", "event", "step", "node", "node2",
                            "step", "dump", "ok", 0, "ms", 40, "message", "disk full"));
    fflush(stdout);
    rewind(f->out);
    char buf[4096] = "";
    size_t len = fread(buf, 1, sizeof(buf) - 1, f->out);
    buf[len] = '\0';
    assert_non_null(strstr(buf, "[1/2] node1 (upgrading)\n  stop       ok       12 ms  \n"));
    assert_non_null(strstr(buf, "[node2]\n  dump       FAIL     40 ms  disk full\n"));
}

/* What is journaled is what a replay reads back: the rollout's file, digest and plan. */
static void test_journaled(void **state)
{
    struct fixture *f = *state;
    char dir[] = "/tmp/baton-test-events-XXXXXX";
    assert_non_null(mkdtemp(dir));
    journal_store_t *store = NULL;
    baton_err_t err = {0};
    assert_int_equal(journal_store_new(dir, NULL, &store, &err), 0);
    assert_int_equal(journal_open(store, "r-test", &f->run.journal, &err), 0);
    emit(&f->run,
         json_pack("{s:s, s:s, s:s, s:[s,s], s:s, s:i, s:s, s:s, s:b}", "event", "start", "service",
                   "gamesrv", "version", "1.1.0", "nodes", "node1", "node2", "artifact",
                   "gamesrv-1.1.0", "size", 5, "file", "/etc/r.yml", "sha256", "ab", "resumed", 0));
    emit(&f->run, json_pack("{s:s, s:[[s],[s]], s:n, s:b, s:s, s:i, s:[], s:s}", "event", "plan",
                            "batches", "node1", "node2", "max_unavailable", "maintenance", 0,
                            "on_failure", "halt", "max_failures", 0, "databases", "message", ""));
    emit(&f->run, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s}", "event", "step", "node", "node1",
                            "step", "commit", "ok", 1, "ms", 3, "message", ""));
    journal_close(&f->run.journal);
    journal_record_t rec;
    assert_int_equal(journal_read(store, "r-test", &rec, &err), 0);
    assert_string_equal(rec.file, "/etc/r.yml");
    assert_string_equal(rec.service, "gamesrv");
    assert_int_equal(json_array_size(rec.plan), 2);
    assert_string_equal(json_string_value(json_array_get(rec.committed, 0)), "node1");
    assert_string_equal(rec.last_event, "step");
    assert_int_equal(rec.exit, -1);
    journal_record_clear(&rec);
    journal_store_destroy(&store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    /* Every event these tests emit is checked against the registry (it aborts otherwise). */
    setenv("BATON_EVENTS_STRICT", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_check_node_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_and_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recap_failed_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_and_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journaled, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
