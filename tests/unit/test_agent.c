/* Unit tests for the agent's core below the cluster: what it does with each step request
 * (agent.c, the rules of common/steps.c), the worker thread that runs it and puts its Result on
 * record (worker.c), and the state file that a restarted agent starts from (state.c). The
 * agent is the real one, on inproc://, with a real state folder; only the steps are the test's
 * (step_function() is weak in agent/steps/step.c): each counts its runs and fails when told.
 * An agent "restart" is the lanes stopped and started again on a state file as a crash left it
 * (copied while the step ran).
 *
 * The cluster tests run the real steps on systemd and PostgreSQL (recovery.sh, agentrestart.sh,
 * powercut.sh); these run in a second, without root, and say which rule broke. */
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
#include <zmq.h>

#include "agent.h"
#include "config.h"
#include "envelope.h"
#include "step.h"
#include "state.h"
#include "steps.h"
#include "worker.h"

/* ---- the test's steps ------------------------------------------------------------------- */

static _Atomic unsigned runs[STEP__MAX]; /* how many times each step ran */
static _Atomic int fails;                /* the step that fails, STEP_NONE when none */
static _Atomic int holds;                /* the step that waits for the test (a byte on held[0]) */
static int held[2];                      /* that pipe */

static int fake_step(step_ctx_t *ctx, baton_err_t *err)
{
    const step_def_t *def = step_by_name(ctx->step);
    runs[def->id]++;
    char c;
    if ((int)def->id == holds && read(held[0], &c, 1) != 1)
        return baton_err_set(err, -EIO, "the test's pipe");
    if ((int)def->id == fails)
        return baton_err_set(err, -EIO, "%s failed (the test says so)", def->name);
    if (def->id == STEP_DUMP) { /* what a dump leaves on the record, for its Result */
        ctx->st->dump_size = 1234;
        if (svc_state_set(&ctx->st->dump_path, "/backups/gamesrv+r1.dump") < 0 ||
            svc_state_set(&ctx->st->dump_sha256, "ab") < 0)
            return baton_err_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

step_fn step_function(step_id_t id)
{
    return id > STEP_NONE && id < STEP__MAX ? fake_step : NULL;
}

/* ---- the agent, and a coordinator's socket to it ------------------------------------------ */

struct fixture {
    char dir[64];
    char state_file[128];
    agent_config_t *cfg;
    void *zctx;
    agent_t agent;
    void *coord;     /* DEALER: the coordinator's side */
    void *lane_zctx; /* the lanes' context: a new one at each restart (inproc names of a closed
                      * socket are let go by libzmq later, and a new worker may get its address) */
};

static void lanes_start(struct fixture *f)
{
    baton_err_t err = {0};
    for (size_t i = 0; i < AGENT_SERVICES_MAX; i++)
        f->agent.lanes[i].stage.fd = -1; /* no staging file open (as main.c starts them) */
    f->lane_zctx = zmq_ctx_new();
    for (size_t i = 0; i < f->cfg->n_services; i++)
        if (worker_new(f->lane_zctx, f->cfg, &f->cfg->services[i], &f->agent.lanes[i].worker,
                       &err) < 0)
            fail_msg("worker_new: %s", err.msg);
}

/* A new agent process, as far as the rules go: fresh lanes, the records read again. */
static void agent_restart(struct fixture *f)
{
    agent_lanes_stop(&f->agent);
    zmq_ctx_term(f->lane_zctx);
    memset(f->agent.lanes, 0, sizeof(f->agent.lanes));
    lanes_start(f);
}

static int setup(void **state)
{
    struct fixture *f = *state = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/baton-unit-agent-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[128], sub[128];
    snprintf(sub, sizeof(sub), "%s/state", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(f->state_file, sizeof(f->state_file), "%s/state/gamesrv.json", f->dir);
    snprintf(path, sizeof(path), "%s/agent.yml", f->dir);
    FILE *y = fopen(path, "w");
    assert_non_null(y);
    fprintf(y,
            "node: node1\nlisten: tcp://127.0.0.1:7400\nstate_dir: %s/state\ninsecure: true\n"
            "services:\n  - name: gamesrv\n    unit: gamesrv.service\n"
            "    binary: %s/gamesrv\n    database: dbname=game\n"
            "    backup_dir: %s/backups\n    health:\n      tcp: 127.0.0.1:7350\n",
            f->dir, f->dir, f->dir);
    fclose(y);
    baton_err_t err = {0};
    if (agent_config_load(path, &f->cfg, &err) < 0)
        fail_msg("%s", err.msg);
    f->zctx = zmq_ctx_new();
    f->agent.cfg = f->cfg;
    f->agent.zctx = f->zctx;
    f->agent.router = zmq_socket(f->zctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(f->agent.router, "inproc://agent"), 0);
    f->coord = zmq_socket(f->zctx, ZMQ_DEALER);
    assert_int_equal(zmq_connect(f->coord, "inproc://agent"), 0);
    lanes_start(f);
    memset(runs, 0, sizeof(runs));
    fails = holds = STEP_NONE;
    assert_int_equal(pipe(held), 0);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    /* A test that failed while a step was held: the step lets go first (its read ends), or
     * stopping its worker would wait for it for ever. */
    close(held[1]);
    if (f->cfg)
        agent_lanes_stop(&f->agent);
    if (f->lane_zctx)
        zmq_ctx_term(f->lane_zctx);
    int linger = 0;
    zmq_setsockopt(f->coord, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_close(f->coord);
    zmq_close(f->agent.router);
    zmq_ctx_term(f->zctx);
    agent_config_destroy(&f->cfg);
    close(held[0]);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* The coordinator sends `step` of `rollout` as request `id`; the agent reads and serves it as
 * its main loop would (main.c). */
static void ask(struct fixture *f, step_id_t step, const char *rollout, uint64_t id)
{
    const step_def_t *def = step_get(step);
    Baton__Step body = BATON__STEP__INIT;
    Baton__Migrate mig = BATON__MIGRATE__INIT;
    body.service = mig.service = "gamesrv";
    Baton__Envelope req = BATON__ENVELOPE__INIT;
    req.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    req.request_id = id;
    req.rollout_id = (char *)rollout;
    req.body_case = def->body;
    if (step == STEP_MIGRATE)
        req.migrate = &mig;
    else
        req.preflight = &body; /* every Step-shaped body shares the union's slot */
    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    assert_int_equal(envelope_pack(&req, &buf, &len, &err), 0);
    assert_int_equal(zmq_send(f->coord, buf, len, 0), (int)len);
    free(buf);

    zmq_msg_t peer, payload;
    zmq_msg_init(&peer);
    zmq_msg_init(&payload);
    assert_true(zmq_msg_recv(&peer, f->agent.router, 0) >= 0);
    assert_true(zmq_msg_recv(&payload, f->agent.router, 0) >= 0);
    Baton__Envelope *env = NULL;
    assert_int_equal(envelope_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload), &env, &err),
                     0);
    zmq_msg_close(&payload);
    agent_serve(&f->agent, &peer, &env);
    envelope_free(&env);
    zmq_msg_close(&peer);
}

/* The answer to the last request: its Result (Progress skipped), with the worker's messages
 * handed to the agent meanwhile as its main loop does. The caller's. */
static Baton__Result *answer(struct fixture *f, Baton__Envelope **ret_env)
{
    struct lane *lane = &f->agent.lanes[0];
    for (;;) {
        zmq_pollitem_t items[2] = {{.socket = f->coord, .events = ZMQ_POLLIN},
                                   {.socket = worker_socket(lane->worker), .events = ZMQ_POLLIN}};
        assert_true(zmq_poll(items, 2, 5000) > 0);
        if (items[1].revents & ZMQ_POLLIN)
            agent_from_worker(&f->agent, lane);
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        assert_true(zmq_msg_recv(&msg, f->coord, 0) >= 0);
        Baton__Envelope *env = NULL;
        baton_err_t err = {0};
        assert_int_equal(envelope_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg), &env, &err), 0);
        zmq_msg_close(&msg);
        if (env->body_case == BATON__ENVELOPE__BODY_RESULT) {
            *ret_env = env;
            return env->result;
        }
        envelope_free(&env);
    }
}

/* Asks and checks the answer's status, and that its message holds `says` (when given). */
static void expect(struct fixture *f, step_id_t step, const char *rollout, uint64_t id,
                   Baton__Status status, const char *says)
{
    ask(f, step, rollout, id);
    Baton__Envelope *env = NULL;
    Baton__Result *res = answer(f, &env);
    if (res->status != status || (says && !strstr(res->message, says)))
        fail_msg("%s of %s (request %llu): status %d \"%s\", expected %d \"%s\"",
                 step_get(step)->name, rollout, (unsigned long long)id, res->status, res->message,
                 status, says ? says : "");
    envelope_free(&env);
}

#define OK BATON__STATUS__STATUS_OK
#define FAILED BATON__STATUS__STATUS_FAILED
#define BUSY BATON__STATUS__STATUS_BUSY

static void copy_file(const char *from, const char *to)
{
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

/* The agent crashes while `step` runs: its state file as the crash leaves it (the step in
 * progress, by this request) is copied while the step is held, put back once the step ended,
 * and the agent restarts on it. */
static void crash_during(struct fixture *f, step_id_t step, const char *rollout, uint64_t id)
{
    char crashed[160];
    snprintf(crashed, sizeof(crashed), "%s/crashed.json", f->dir);
    holds = step;
    ask(f, step, rollout, id);
    copy_file(f->state_file, crashed);
    assert_int_equal(write(held[1], "", 1), 1);
    holds = STEP_NONE;
    Baton__Envelope *env = NULL;
    assert_int_equal(answer(f, &env)->status, OK);
    envelope_free(&env);
    copy_file(crashed, f->state_file);
    agent_restart(f);
}

/* ---- the tests ------------------------------------------------------------------------- */

/* Each step after the one before it; a step asked again by the same request is answered from
 * the record, never run twice; out of order and another rollout are refused, nothing run. */
static void test_order_replay_and_refusals(void **state)
{
    struct fixture *f = *state;
    expect(f, STEP_PREFLIGHT, "r1", 1, OK, NULL);
    expect(f, STEP_STOP, "r1", 2, OK, NULL);
    expect(f, STEP_STOP, "r1", 2, OK, NULL); /* the asker lost the answer */
    assert_int_equal(runs[STEP_STOP], 1);
    expect(f, STEP_SWAP, "r1", 3, FAILED, "swap cannot follow stop");
    expect(f, STEP_PREFLIGHT, "r2", 4, BUSY, "in rollout r1 (at stop); roll it back first");
    expect(f, STEP_DUMP, "r2", 5, BUSY, "in rollout r1 (at stop)");
    assert_int_equal(runs[STEP_SWAP] + runs[STEP_DUMP], 0);
    assert_int_equal(runs[STEP_PREFLIGHT], 1);
    /* The dump's Result, asked again by its asker (also after an agent restart), is the one on
     * record, with the dump: the coordinator needs where it is. */
    for (int i = 0; i < 3; i++) {
        if (i == 2)
            agent_restart(f);
        ask(f, STEP_DUMP, "r1", 6);
        Baton__Envelope *env = NULL;
        Baton__Result *res = answer(f, &env);
        assert_int_equal(res->status, OK);
        assert_non_null(res->dump);
        assert_string_equal(res->dump->path, "/backups/gamesrv+r1.dump");
        assert_int_equal(res->dump->size, 1234);
        envelope_free(&env);
    }
    assert_int_equal(runs[STEP_DUMP], 1);
    expect(f, STEP_SWAP, "r1", 7, OK, NULL);
    expect(f, STEP_MIGRATE, "r1", 8, OK, NULL);
    expect(f, STEP_START, "r1", 9, OK, NULL);
    expect(f, STEP_VERIFY, "r1", 10, OK, NULL);
    expect(f, STEP_COMMIT, "r1", 11, OK, NULL);
    /* Committed: a rollback after a crash or a failure never undoes it. */
    expect(f, STEP_ROLLBACK, "r1", 12, FAILED, "a committed rollout is never rolled back");
    assert_int_equal(runs[STEP_ROLLBACK], 0);
    /* The service is settled: the next rollout may begin. */
    expect(f, STEP_PREFLIGHT, "r2", 13, OK, NULL);
}

/* A failed step is on record as failed: the next step is refused, the rollback runs. */
static void test_failed_step_then_rollback(void **state)
{
    struct fixture *f = *state;
    fails = STEP_MIGRATE;
    expect(f, STEP_PREFLIGHT, "r1", 1, OK, NULL);
    expect(f, STEP_STOP, "r1", 2, OK, NULL);
    expect(f, STEP_DUMP, "r1", 3, OK, NULL);
    expect(f, STEP_SWAP, "r1", 4, OK, NULL);
    expect(f, STEP_MIGRATE, "r1", 5, FAILED, "migrate failed (the test says so)");
    expect(f, STEP_START, "r1", 6, FAILED, "start cannot follow swap");
    expect(f, STEP_ROLLBACK, "r1", 7, OK, NULL);
    assert_int_equal(runs[STEP_ROLLBACK], 1);
    expect(f, STEP_ROLLBACK, "r1", 8, OK, NULL); /* rolled back: answered again, not run */
    assert_int_equal(runs[STEP_ROLLBACK], 1);
    expect(f, STEP_MIGRATE, "r1", 9, FAILED, "was rolled back");
}

/* The agent restarted while the dump ran (its record says in progress, by request 3): that
 * asker is told, another step is refused, a new request runs it again, a rollback runs. */
static void test_restart_mid_step(void **state)
{
    struct fixture *f = *state;
    expect(f, STEP_PREFLIGHT, "r1", 1, OK, NULL);
    expect(f, STEP_STOP, "r1", 2, OK, NULL);
    crash_during(f, STEP_DUMP, "r1", 3);

    expect(f, STEP_DUMP, "r1", 3, FAILED, "dump was interrupted: the agent restarted while it ran");
    expect(f, STEP_SWAP, "r1", 4, FAILED,
           "step dump of rollout r1 was interrupted: run it again or roll back");
    expect(f, STEP_PREFLIGHT, "r2", 5, BUSY, "in rollout r1 (interrupted in dump)");
    assert_int_equal(runs[STEP_DUMP], 1);
    expect(f, STEP_DUMP, "r1", 6, OK, NULL); /* an operator's deliberate retry */
    assert_int_equal(runs[STEP_DUMP], 2);
    expect(f, STEP_SWAP, "r1", 7, OK, NULL);
    expect(f, STEP_ROLLBACK, "r1", 8, OK, NULL);
    assert_int_equal(runs[STEP_ROLLBACK], 1);
}

/* A pre-flight cut short by a restart changed nothing live: the service stays reserved for its
 * rollout, whose own asker is told it failed and whose rollback releases it at once. */
static void test_preflight_cut_short(void **state)
{
    struct fixture *f = *state;
    crash_during(f, STEP_PREFLIGHT, "r1", 1);

    expect(f, STEP_PREFLIGHT, "r2", 2, BUSY,
           "reserved by rollout r1 (its pre-flight was interrupted)");
    /* Its own asker, asking again: told it failed, and the reservation goes at once. */
    expect(f, STEP_PREFLIGHT, "r1", 1, FAILED,
           "the pre-flight was interrupted (the agent restarted while it ran); it changed nothing "
           "here (pre-flight only): released");
    assert_int_equal(runs[STEP_PREFLIGHT], 1);
    expect(f, STEP_PREFLIGHT, "r2", 3, OK, NULL);
}

/* The same, and the rollout's own rollback releases it (nothing to undo). */
static void test_preflight_cut_short_rolled_back(void **state)
{
    struct fixture *f = *state;
    crash_during(f, STEP_PREFLIGHT, "r1", 1);

    expect(f, STEP_STOP, "r1", 3, FAILED, "the pre-flight of rollout r1 was interrupted");
    expect(f, STEP_ROLLBACK, "r1", 4, OK, "changed nothing here (pre-flight only): released");
    assert_int_equal(runs[STEP_ROLLBACK], 0); /* released, nothing to undo */
    expect(f, STEP_PREFLIGHT, "r2", 5, OK, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_replay_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_step_then_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_mid_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preflight_cut_short, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preflight_cut_short_rolled_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
