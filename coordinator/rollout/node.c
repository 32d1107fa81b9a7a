/* node: one node's upgrade as a state machine, moved along by the event loop: send a step, read
 * its Result, then the next step, the rollback, or the end. What happens when a step fails, on
 * which node state the rollout's policy (on_failure) is decided, and when a node gives back the
 * database turn: all here, in node_step_result(). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "semver.h"
#include "version.h"
#include "envelope.h"
#include "interrupt.h"
#include "reach.h"
#include "engine.h"
#include "run.h"
#include "events.h"
#include "node.h"
#include "steps.h"

/* Rollback may stop, down-migrate or restore, start and verify: give it the step deadline
 * several times over before calling a node lost. */
#define ROLLBACK_STEPS 5

const char *node_state_name(node_state_t s)
{
    static const char *const names[] = {
        [NODE_NEW] = "new",
        [NODE_SKIP] = "skipped",
        [NODE_BAD] = "refused",
        [NODE_NEEDS] = "checked",
        [NODE_RESERVED] = "reserved",
        [NODE_UPGRADING] = "upgrading",
        [NODE_VERIFIED] = "verified",
        [NODE_DONE] = "done",
        [NODE_ROLLED_BACK] = "rolled_back",
        [NODE_ROLLBACK_FAILED] = "rollback_failed",
        [NODE_LOST] = "lost",
        [NODE_RELEASED] = "released",
        [NODE_LEFT] = "left_in_flight",
    };
    return (size_t)s < sizeof(names) / sizeof(names[0]) && names[s] ? names[s] : "?";
}

bool node_unavailable(const node_t *nd)
{
    return nd->state == NODE_UPGRADING || nd->call == CALL_ROLLBACK;
}

void failpoint(const char *node, const char *step)
{
    const char *fp = getenv("BATON_FAILPOINT");
    char *want = NULL;
    if (fp && asprintf(&want, "kill-after:%s:%s", node, step) > 0 && !strcmp(fp, want))
        raise(SIGKILL);
    free(want);
}

const Baton__ServiceInfo *node_hello_service(const struct run *run, const Baton__Envelope *res,
                                             baton_err_t *err)
{
    const Baton__Result *r = res->result;
    if (r->status != BATON__STATUS__STATUS_OK || !r->hello) {
        baton_err_set(err, r->status == BATON__STATUS__STATUS_UNSUPPORTED ? -EPROTONOSUPPORT : -EIO,
                      "%s", r->message);
        return NULL;
    }
    /* The other side of the window: an agent too old or too new for this coordinator is
     * refused before anything is staged (every command asks Hello first). */
    char peer[96];
    snprintf(peer, sizeof(peer), "the agent of node %.64s", r->hello->node_name);
    if (version_skew_check(r->hello->agent_version, peer, "coordinator", err) < 0)
        return NULL;
    for (size_t j = 0; j < r->hello->n_services; j++)
        if (!strcmp(r->hello->services[j]->name, run->rf->service))
            return r->hello->services[j];
    baton_err_set(err, -ENOENT, "service %s not managed by this agent", run->rf->service);
    return NULL;
}

version_move_t node_version_move(const struct run *run, const Baton__ServiceInfo *svc, char *why,
                                 size_t len)
{
    const char *ran[64];
    size_t n = 0;
    for (size_t i = 0; i < svc->n_history && n < 64; i++)
        ran[n++] = svc->history[i]->version;
    version_facts_t f = {.current = svc->version,
                         .highest = svc->highest_version,
                         .ran = ran,
                         .n_ran = n,
                         .catalog = run->rf->catalog,
                         .allow_downgrade = run->opts->allow_downgrade,
                         .restore_dump = run->opts->restore_dump != NULL};
    return version_move(&f, run->rf->version, why, len);
}

bool node_rehearses(const struct run *run, const node_t *nd)
{
    if (!run->rf->rehearse)
        return false;
    for (size_t i = 0; nd->database_id && i < nd->index; i++) {
        const node_t *o = &run->nodes[i];
        if (o->database_id && !strcmp(o->database_id, nd->database_id) && o->state != NODE_SKIP)
            return false;
    }
    return true;
}

bool node_on_target(const struct run *run, const Baton__ServiceInfo *svc)
{
    return version_same(svc->version, run->rf->version) && !strcmp(svc->active_state, "active") &&
           !svc->in_progress && step_finished(svc->step, "");
}

bool node_record_unfinished(const Baton__ServiceInfo *svc)
{
    return *svc->rollout_id &&
           !step_finished(svc->in_progress ? "" : svc->step, svc->in_progress ? svc->step : "");
}

const Baton__ServiceInfo *node_ask_service(struct run *run, node_t *nd, Baton__Envelope **ret_res,
                                           baton_err_t *err)
{
    Baton__Hello hello = BATON__HELLO__INIT;
    hello.coordinator_version = BATON_VERSION;
    Baton__Envelope req = BATON__ENVELOPE__INIT;
    req.body_case = BATON__ENVELOPE__BODY_HELLO;
    req.hello = &hello;
    *ret_res = NULL;
    if (client_call(nd->client, run->id, &req, run->rf->connect_timeout_ms, on_progress, run,
                    ret_res, err) < 0)
        return NULL;
    return node_hello_service(run, *ret_res, err);
}

/* ---- asking every node at once (status, the version survey, rollback's database survey) ---- */

void node_hello_all(struct run *run, const engine_ops_t *ops)
{
    for (size_t i = 0;
         i < run->n && engine_busy(run) < run->rf->strategy.max_in_flight && !interrupt_count();
         i++) {
        node_t *nd = &run->nodes[i];
        if (nd->state != NODE_NEW || nd->call != CALL_NONE)
            continue;
        nd->state = NODE_NEEDS; /* asked; until its answer says otherwise */
        Baton__Hello hello = BATON__HELLO__INIT;
        hello.coordinator_version = BATON_VERSION;
        Baton__Envelope req = BATON__ENVELOPE__INIT;
        req.body_case = BATON__ENVELOPE__BODY_HELLO;
        req.hello = &hello;
        node_send(run, nd, CALL_HELLO, &req, run->rf->connect_timeout_ms, ops);
    }
}

static const engine_ops_t ask_ops;

static bool ask_schedule(struct run *run)
{
    node_hello_all(run, &ask_ops);
    return false;
}

static void ask_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err)
{
    (void)run;
    if (r < 0) {
        free(nd->why);
        nd->why = strdup(err->msg);
        return;
    }
    nd->asked = env;
}

static const engine_ops_t ask_ops = {ask_schedule, ask_result};

int node_ask_all(struct run *run)
{
    for (size_t i = 0; i < run->n; i++)
        run->nodes[i].state = NODE_NEW;
    return engine_run(run, &ask_ops);
}

const Baton__ServiceInfo *node_asked_service(struct run *run, node_t *nd, baton_err_t *err)
{
    if (!nd->asked) {
        baton_err_set(err, -EHOSTDOWN, "%s",
                      nd->why             ? nd->why
                      : interrupt_count() ? "interrupted"
                                          : "not asked");
        return NULL;
    }
    return node_hello_service(run, nd->asked, err);
}

void node_init_step(Baton__Step *s, const struct run *run, const char *sha256)
{
    baton__step__init(s);
    s->service = run->rf->service;
    s->version = *sha256 ? run->rf->version : "";
    s->sha256 = (char *)sha256;
    s->min_healthy_set = run->rf->min_healthy_set;
    s->min_healthy_ms = run->rf->min_healthy_ms;
    s->healthy_deadline_set = run->rf->healthy_deadline_set;
    s->healthy_deadline_ms = run->rf->healthy_deadline_ms;
}

int node_hello_silence(const struct run *run, const node_t *nd, const char *what, char **ret)
{
    char why[512];
    if (!reach_tcp(nd->def->endpoint, 2000, why, sizeof(why)))
        return asprintf(ret, "%s: %s", what, why);
    if (run->rf->insecure)
        return asprintf(ret,
                        "%s (TCP connects: the agent listens but does not answer; does it "
                        "run with CURVE while this file says insecure?)",
                        what);
    /* TCP got through and the handshake is silent: the keys. */
    return asprintf(ret,
                    "%s (TCP connects, so with CURVE: is this coordinator's public key in "
                    "the agent's authorized keys, is the node's public_key its agent's, "
                    "and does the agent not run insecure?)",
                    what);
}

void node_init_preflight(Baton__Step *s, const struct run *run, const node_t *nd)
{
    node_init_step(s, run, run->sha256);
    s->downgrade = nd->downgrade;
    s->rehearse = node_rehearses(run, nd);
    s->restore_dump =
        nd->downgrade && run->opts->restore_dump ? (char *)run->opts->restore_dump : "";
}

/* What a successful step says in one line; the caller's. */
static char *describe(const Baton__Result *res, bool migrate)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    if (res->shared)
        fputs(migrate ? "shared database, migrated by its first node: nothing to apply"
                      : "shared database, dumped by its first node: no second dump",
              f);
    else if (migrate && res->restored_dump)
        fputs("restored the dump taken at the target version (--restore-dump)", f);
    else if (migrate && !res->n_applied && !res->n_removed)
        fputs("nothing to apply (the database is already there)", f);
    if (res->dump)
        fprintf(f, "%s (%llu bytes, sha256 %.16s…) ", res->dump->path,
                (unsigned long long)res->dump->size, res->dump->sha256);
    for (size_t i = 0; i < res->n_applied; i++)
        fprintf(f, "%s%s", i ? ", " : "applied ", res->applied[i]);
    for (size_t i = 0; i < res->n_removed; i++)
        fprintf(f, "%s%s", i ? ", " : ftell(f) ? " removed " : "removed ", res->removed[i]);
    if (*res->version)
        fprintf(f, "%srunning %s", ftell(f) ? " " : "", res->version);
    fclose(f);
    return buf;
}

static json_t *string_list(char **items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

void node_next_step(struct run *run, node_t *nd, const engine_ops_t *ops)
{
    size_t n = 0;
    const step_def_t *const *seq = step_upgrade_sequence(&n);
    const step_def_t *def = seq[nd->step];
    Baton__Step step;
    Baton__Migrate mig = BATON__MIGRATE__INIT;
    /* Maintenance style: the dump waits until every node of the database stopped, and for all
     * but the first until that one verified (group.c moves it on). */
    if (run->maintenance && def->id == STEP_DUMP && !group_maint_may_go(run, nd)) {
        nd->parked = true;
        nd->state = NODE_UPGRADING;
        return;
    }
    node_init_step(&step, run, run->sha256);
    Baton__Envelope req = BATON__ENVELOPE__INIT;
    req.body_case = def->body;
    if (def->body == BATON__ENVELOPE__BODY_MIGRATE) {
        mig.service = run->rf->service;
        mig.direction = BATON__DIRECTION__DIRECTION_UP;
        /* A downgrade takes down what its pre-flight counted (a shared node only checks). */
        if (nd->down_limit && !nd->shared) {
            mig.direction = BATON__DIRECTION__DIRECTION_DOWN;
            mig.limit = nd->down_limit;
        }
        req.migrate = &mig;
    } else {
        if (def->id == STEP_DUMP)
            group_prepare_dump(run, nd, &step);
        if (def->id == STEP_STOP)
            step.lock = !nd->group_stop && group_dumps_own(run, nd);
        req.preflight = &step; /* every Step-shaped command shares the union's slot */
    }
    nd->state = NODE_UPGRADING;
    if (def->id == STEP_VERIFY)
        analysis_watch(run, nd); /* measured during its stability window */
    node_send(run, nd, CALL_STEP, &req, run->rf->step_timeout_ms, ops);
}

static void set_why(node_t *nd, const char *fmt, const char *a, const char *b)
{
    free(nd->why);
    if (asprintf(&nd->why, fmt, a, b) < 0)
        nd->why = NULL;
}

void node_set_why(node_t *nd, const char *why)
{
    set_why(nd, "%s%s", why, "");
}

/* The rollout's answer to a failed node: halt (start no other node), go on while failures stay
 * within max_failures, or undo everything (rollback-all). */
static void apply_policy(struct run *run, node_t *nd)
{
    run->failures++;
    const strategy_t *s = &run->rf->strategy;
    if (nd->state == NODE_LOST) {
        /* Its agent finishes or records the step on its own; a rollout goes no further
         * while a node's state is unknown. */
        run->halting = true;
        return;
    }
    if (s->on_failure == ON_FAILURE_CONTINUE && run->failures <= run->max_failures)
        return;
    run->halting = true;
    if (s->on_failure == ON_FAILURE_ROLLBACK_ALL)
        run->undo_in_flight = true;
}

void node_step_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err,
                      const engine_ops_t *ops)
{
    size_t n = 0;
    const step_def_t *const *seq = step_upgrade_sequence(&n);
    const step_def_t *def = seq[nd->step];
    bool migrate = def->body == BATON__ENVELOPE__BODY_MIGRATE;
    json_t *e =
        json_pack("{s:s, s:s, s:s}", "event", "step", "node", nd->def->name, "step", def->name);
    char *msg = NULL;
    if (r == 0) {
        const Baton__Result *res = env->result;
        if (res->status == BATON__STATUS__STATUS_OK)
            msg = describe(res, migrate);
        else
            r = baton_err_set(err, -EIO, "%s", res->message);
        json_object_set_new(e, "applied", string_list(res->applied, res->n_applied));
        if (res->dump)
            json_object_set_new(e, "dump",
                                json_pack("{s:s, s:I, s:s}", "path", res->dump->path, "size",
                                          (json_int_t)res->dump->size, "sha256",
                                          res->dump->sha256));
        if (res->n_unit_log)
            json_object_set_new(e, "unit_log", string_list(res->unit_log, res->n_unit_log));
        if (r == 0 && migrate)
            nd->applied = res->n_applied > 0;
        /* What a resumed rollout needs to know of the group: who dumped and migrated its
         * database, and the ids that left. */
        if (def->id == STEP_DUMP || migrate) {
            json_object_set_new(e, "database", json_string(nd->database_id ?: ""));
            json_object_set_new(e, "shared", json_boolean(res->shared));
        }
        if (migrate) {
            json_object_set_new(e, "ids", string_list(res->ids, res->n_ids));
            if (r == 0 && !res->shared && group_migrated(run, nd, res->ids, res->n_ids) < 0)
                r = baton_err_set(err, -ENOMEM, "out of memory");
        }
    }
    json_object_set_new(e, "ok", json_boolean(r == 0));
    json_object_set_new(e, "ms", json_integer((json_int_t)(now_ms() - nd->call_t0)));
    json_object_set_new(e, "message", json_string(r == 0 ? (msg ? msg : "") : err->msg));
    emit(run, e);
    free(msg);
    envelope_free(&env);
    if (nd->group_stop) { /* stopped only for its group's restore (group.c) */
        group_stop_result(run, nd, r, r < 0 ? err->msg : "");
        return;
    }

    if (r < 0) {
        if (r == -EHOSTDOWN) {
            /* LOST: it keeps the database turn; its agent settles the step on its own. Its
             * analysis ends unjudged (a failed node's ends with its rollback). */
            analysis_drop(run, nd);
            set_why(nd, "%s%s", err->msg, "");
            nd->state = NODE_LOST;
            apply_policy(run, nd);
            return;
        }
        node_failed(run, nd, err->msg, ops);
        return;
    }
    failpoint(nd->def->name, def->name);
    /* A migration that applied nothing changes nothing another node could depend on; one that
     * applied something holds the turn until its node verified and passed its analysis
     * (node_verified; see rollout.c). */
    if (migrate && !nd->applied)
        group_turn_give(nd);
    nd->step++;
    if (nd->step == n) { /* committed */
        nd->state = NODE_DONE;
        run->progress_at = now_ms();
        return;
    }
    bool stop_here =
        interrupt_count() || run->journal_failed || run->undo_in_flight || run->deadline_missed;
    if (stop_here) {
        set_why(nd, "%s after its %s step",
                interrupt_count()      ? interrupt_name()
                : run->journal_failed  ? "the journal could not be written"
                : run->deadline_missed ? "progress_deadline passed"
                                       : "rollback-all",
                def->name);
        node_rollback(run, nd, false, ops);
        return;
    }
    if (def->id == STEP_VERIFY) {
        analysis_verified(run, nd, ops); /* its checks' verdict, if any, then node_verified() */
        return;
    }
    node_next_step(run, nd, ops);
}

void node_verified(struct run *run, node_t *nd, const engine_ops_t *ops)
{
    group_turn_give(nd);
    nd->settled_seq = ++run->settled;
    /* rollback-all: every node stays undoable until the whole fleet is verified; a batch with a
     * bake (analysis.h): until it passed. */
    if (run->rf->strategy.on_failure == ON_FAILURE_ROLLBACK_ALL || analysis_bakes(run, nd->batch)) {
        nd->state = NODE_VERIFIED;
        run->progress_at = now_ms();
        return;
    }
    node_next_step(run, nd, ops);
}

void node_failed(struct run *run, node_t *nd, const char *why, const engine_ops_t *ops)
{
    set_why(nd, "%s%s", why, "");
    apply_policy(run, nd);
    node_rollback(run, nd, false, ops);
}

void node_rollback(struct run *run, node_t *nd, bool release, const engine_ops_t *ops)
{
    analysis_drop(run, nd); /* rolled back: whatever its analysis would have said */
    Baton__Step step;
    node_init_step(&step, run, "");
    step.no_restore = !release && group_no_restore(run, nd);
    Baton__Envelope req = BATON__ENVELOPE__INIT;
    req.body_case = BATON__ENVELOPE__BODY_ROLLBACK;
    req.rollback = &step;
    uint64_t timeout = run->rf->step_timeout_ms * (release ? 1 : ROLLBACK_STEPS);
    node_send(run, nd, release ? CALL_RELEASE : CALL_ROLLBACK, &req, timeout, ops);
}

void node_rollback_result(struct run *run, node_t *nd, int r, Baton__Envelope *env,
                          baton_err_t *err)
{
    if (r == 0 && env->result->status != BATON__STATUS__STATUS_OK)
        r = baton_err_set(err, -EIO, "%s", env->result->message);
    char *msg = NULL;
    bool restored = false, restore_needed = env && env->result->restore_needed;
    if (r == 0) {
        restored = env->result->restored_dump;
        if (*env->result->version) {
            /* What it did to the schema, said by the agent (an older one says nothing). */
            const char *schema = env->result->schema ? env->result->schema : "";
            if (asprintf(&msg, "back on %s%s%s", env->result->version, *schema ? "; " : "",
                         *schema    ? schema
                         : restored ? " (database restored from the dump)"
                                    : "") < 0)
                msg = NULL;
        } else { /* a release: nothing had changed */
            msg = strdup(env->result->message);
        }
    }
    json_t *e =
        json_pack("{s:s, s:s, s:s, s:b, s:I, s:s, s:b}", "event", "rollback", "node", nd->def->name,
                  "step", "rollback", "ok", r == 0, "ms", (json_int_t)(now_ms() - nd->call_t0),
                  "message", r == 0 ? (msg ? msg : "") : err->msg, "restored_dump", restored);
    if (r == 0) {
        json_object_set_new(e, "version", json_string(env->result->version));
        /* Not "schema": every event's "schema" is the events' own version (events.c). */
        json_object_set_new(e, "schema_change", json_string(env->result->schema ?: ""));
    }
    if (env && env->result->n_unit_log)
        json_object_set_new(e, "unit_log",
                            string_list(env->result->unit_log, env->result->n_unit_log));
    emit(run, e);
    free(msg);
    envelope_free(&env);
    nd->state = r == 0 ? NODE_ROLLED_BACK : NODE_ROLLBACK_FAILED;
    if (r == 0)
        group_rolled_back(run, nd);
    if (restore_needed) {
        /* Only the dump brings this shared database back: the group is stopped first
         * (stop-group, group.c), or the operator is told how. */
        nd->restore_needed = true;
        free(nd->restore_why);
        if (asprintf(&nd->restore_why,
                     "its rollback: %s\n  to restore it: stop every node that uses this "
                     "database, then run `baton rollback %s --restore-shared` (or roll out with "
                     "restore_shared: stop-group)",
                     err->msg, run->rf->path) < 0)
            nd->restore_why = NULL;
    }
    /* A node whose rollback failed needs a person: whatever on_failure says, no other node
     * starts after it. */
    if (r < 0)
        run->halting = true;
    /* A failed rollback keeps the turn: the database is in an unknown state. */
    if (r == 0)
        group_turn_give(nd);
}

/* ---- staging: the artifact in chunks, a window of them in flight per node --------------------
 *
 * A transfer opens with an empty chunk that asks what the agent holds: all of it (nothing is
 * sent again), a partial file (it goes on from there), or nothing. Then up to STAGE_WINDOW
 * chunks are in flight; each answer says how much the agent holds and makes room for the next.
 * A chunk the agent refuses as out of order (it restarted, or a chunk was lost with a
 * connection) or a call that timed out asks again where it stands, up to STAGE_REWINDS times. */

#define STAGE_WINDOW 4  /* 4 MiB in flight per agent: enough to keep a fast link busy */
#define STAGE_REWINDS 3 /* then the node fails its stage check */
/* Chunks in flight to all nodes together, whatever the fleet's size. A chunk sent as a frame of
 * its own points into the one artifact buffer, but libzmq still holds each agent's CURVE
 * ciphertext of it until it is written, and an agent without the "frame" feature gets a packed
 * copy: 32 MiB of such buffers at most (1,000 agents x 4 would be 4 GiB). Not raised without
 * measuring (BENCHMARKS.md section 5). */
#define STAGE_FLEET_CHUNKS 32

/* A chunk of a pushed artifact (none: what do you hold?), or for an artifact by URL the
 * question where its pull stands (the agent answers at once). */
static int stage_send_chunk(struct run *run, node_t *nd, uint64_t off, uint64_t len,
                            const engine_ops_t *ops)
{
    Baton__Stage st = BATON__STAGE__INIT;
    st.service = run->rf->service;
    st.version = run->rf->version;
    st.sha256 = (char *)run->sha256;
    st.size = run->size;
    st.offset = off;
    st.data.data = run->data ? (uint8_t *)run->data + off : NULL;
    st.data.len = (size_t)len;
    if (len && nd->frames) /* one buffer for every agent: client.c's stamp_and_send() */
        st.data_frame = (uint32_t)len;
    if (run->url)
        st.url = (char *)run->url;
    Baton__Envelope req = BATON__ENVELOPE__INIT;
    req.body_case = BATON__ENVELOPE__BODY_STAGE;
    req.stage = &st;
    if (client_busy(nd->client)) {
        baton_err_t err = {0};
        return client_send_ahead(nd->client, run->id, &req, &err);
    }
    uint64_t t0 = nd->stage_t0; /* the check times the whole transfer */
    int r = node_send(run, nd, CALL_STAGE, &req, run->rf->step_timeout_ms, ops);
    nd->call_t0 = t0;
    return r;
}

void node_stage_send(struct run *run, node_t *nd, const engine_ops_t *ops)
{
    nd->stage_t0 = now_ms();
    if (run->url) { /* node_verdict() refused an agent that cannot pull */
        nd->stage_off = nd->stage_pause = 0;
        nd->stage_rewinds = 0;
        nd->stage_grew_at = nd->stage_t0;
        stage_send_chunk(run, nd, 0, 0, ops);
        return;
    }
    nd->stage_off = 0;
    nd->stage_rewinds = 0;
    nd->stage_asked = true;
    stage_send_chunk(run, nd, 0, 0, ops); /* what do you hold? */
}

/* Chunks in flight to every node: the fleet's share of the coordinator's memory (each is a
 * packed 1 MiB copy in libzmq's queue until the agent has it, or, sent as a frame of its own to
 * an agent that takes one, a copy only while CURVE encrypts it for the wire). */
static size_t fleet_in_flight(const struct run *run)
{
    size_t n = 0;
    for (size_t i = 0; i < run->n; i++)
        if (run->nodes[i].call == CALL_STAGE)
            n += client_in_flight(run->nodes[i].client);
    return n;
}

static void stage_end(struct run *run, node_t *nd, int r, baton_err_t *err)
{
    client_abandon(nd->client);
    node_set_call(run, nd, CALL_NONE);
    nd->stage_waiting = false;
    nd->staged = r == 0;
    if (r < 0)
        nd->state = NODE_BAD;
    emit_check(run, "stage", nd, r == 0,
               r < 0           ? err->msg
               : run->url      ? err->msg /* the agent's words: pulled, or held already */
               : nd->stage_off ? "binary received, sha256 verified"
                               : "held already (sha256 verified on arrival)");
}

/* A transfer's call lost with its connection, or a chunk out of order: the coordinator asks
 * the agent where the transfer stands, STAGE_REWINDS times in a row at most. False when none is
 * left. */
static bool stage_rewind(struct run *run, node_t *nd, const baton_err_t *err, const char *what)
{
    if (nd->stage_rewinds >= STAGE_REWINDS || interrupt_count())
        return false;
    nd->stage_rewinds++;
    client_abandon(nd->client);
    char note[BATON_ERR_MSG_MAX + 80];
    snprintf(note, sizeof(note), "stage: %s; asking where the %s stands (%zu of %d)", err->msg,
             what, nd->stage_rewinds, STAGE_REWINDS);
    emit_node(run, nd, note);
    return true;
}

/* The answer to a pull's ask: going on (say how far, ask again after a pause that doubles from
 * PULL_FIRST_ASK_MS to BATON_PULL_ASK_MAX_MS: a small file is seen soon, a long pull costs one
 * ask a second), kept, or failed. A pull whose bytes did not grow for the step timeout fails
 * (the agent stops it once no one asks). */
#define PULL_FIRST_ASK_MS 50

static void stage_pull_result(struct run *run, node_t *nd, int r, Baton__Envelope *env,
                              baton_err_t *err, const engine_ops_t *ops)
{
    const Baton__Result *res = r == 0 ? env->result : NULL;
    bool lost = r == -ETIMEDOUT || r == -EHOSTDOWN;
    uint64_t held = res ? res->staged_bytes : 0, now = now_ms();
    if (res && res->status != BATON__STATUS__STATUS_OK)
        r = baton_err_set(err, -EIO, "%s", res->message);
    else if (res && !res->stage_pulling &&
             (!res->stage_size || res->staged_bytes != res->stage_size))
        r = baton_err_set(err, -EPROTO, "the agent ended the pull holding %llu of %llu bytes",
                          (unsigned long long)res->staged_bytes,
                          (unsigned long long)res->stage_size);
    else if (res)
        baton_err_set(err, 0, "%s", res->message);
    bool pulling = r == 0 && res->stage_pulling;
    if (pulling && *res->message) {
        Baton__Progress p = BATON__PROGRESS__INIT;
        p.step = "stage";
        p.message = res->message;
        on_progress(nd->def->name, &p, run);
    }
    envelope_free(&env);
    if (pulling && held > nd->stage_off) {
        nd->stage_off = held;
        nd->stage_grew_at = now;
    } else if (pulling && now - nd->stage_grew_at >= run->rf->step_timeout_ms) {
        r = baton_err_set(err, -ETIMEDOUT,
                          "stage: no byte pulled for %llu s (%llu held); the agent stops the "
                          "pull when no one asks",
                          (unsigned long long)(now - nd->stage_grew_at) / 1000,
                          (unsigned long long)held);
        pulling = false;
    }
    if (interrupt_count() && (pulling || lost)) {
        baton_err_set(err, -ECANCELED, "interrupted (the agent stops pulling when no one asks)");
        stage_end(run, nd, -ECANCELED, err);
    } else if (lost && stage_rewind(run, nd, err, "pull")) {
        node_set_call(run, nd, CALL_NONE);
        stage_send_chunk(run, nd, 0, 0, ops);
    } else if (pulling) {
        nd->stage_rewinds = 0;
        nd->stage_pause = !nd->stage_pause                              ? PULL_FIRST_ASK_MS
                          : nd->stage_pause * 2 > BATON_PULL_ASK_MAX_MS ? BATON_PULL_ASK_MAX_MS
                                                                        : nd->stage_pause * 2;
        nd->stage_ask_at = now + nd->stage_pause;
        nd->stage_waiting = true; /* node_stage_pump() asks when it is time */
    } else {
        stage_end(run, nd, r, err);
    }
}

/* Sends what the node's window and the fleet's budget allow. Returns false when the node's
 * transfer was settled meanwhile (a send failed and on_result ended it). */
static bool stage_fill(struct run *run, node_t *nd, const engine_ops_t *ops)
{
    if (client_busy(nd->client))
        node_set_call(run, nd, CALL_STAGE); /* chunks still in flight: the call goes on */
    while (nd->stage_off < run->size && client_in_flight(nd->client) < STAGE_WINDOW &&
           fleet_in_flight(run) < STAGE_FLEET_CHUNKS && !interrupt_count()) {
        uint64_t n = run->size - nd->stage_off > BATON_CHUNK_MAX ? BATON_CHUNK_MAX
                                                                 : run->size - nd->stage_off;
        bool behind = client_busy(nd->client);
        if (stage_send_chunk(run, nd, nd->stage_off, n, ops) < 0) {
            if (!behind)
                return false; /* node_send handed the failure to on_result: settled there */
            break;            /* the queue is full: what is in flight goes on */
        }
        nd->stage_off += n;
    }
    /* Nothing in flight, more to send: the fleet's budget is spent elsewhere; wait for it. */
    nd->stage_waiting = !client_busy(nd->client) && nd->stage_off < run->size && !interrupt_count();
    return true;
}

bool node_stage_pump(struct run *run, const engine_ops_t *ops)
{
    bool any = false;
    uint64_t now = now_ms();
    run->stage_wake = 0;
    for (size_t i = 0; i < run->n; i++) {
        node_t *nd = &run->nodes[i];
        if (!nd->stage_waiting || nd->call != CALL_NONE)
            continue;
        if (interrupt_count()) {
            baton_err_t err = {0};
            baton_err_set(&err, -ECANCELED, "interrupted");
            stage_end(run, nd, -ECANCELED, &err);
            continue;
        }
        if (run->url && now < nd->stage_ask_at) { /* a pull: not time to ask yet */
            if (!run->stage_wake || nd->stage_ask_at < run->stage_wake)
                run->stage_wake = nd->stage_ask_at;
            any = true;
            continue;
        }
        if (run->url) {
            nd->stage_waiting = false;
            stage_send_chunk(run, nd, 0, 0, ops);
            continue;
        }
        if (fleet_in_flight(run) >= STAGE_FLEET_CHUNKS)
            return true;
        if (stage_fill(run, nd, ops) && nd->stage_waiting)
            any = true;
    }
    return any;
}

void node_stage_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err,
                       const engine_ops_t *ops)
{
    if (run->url) {
        stage_pull_result(run, nd, r, env, err, ops);
        return;
    }
    bool resume = false;
    uint64_t held = 0;
    if (r == 0) {
        held = env->result->staged_bytes;
        resume = env->result->status != BATON__STATUS__STATUS_OK && env->result->stage_resume;
        if (env->result->status != BATON__STATUS__STATUS_OK)
            r = baton_err_set(err, -EIO, "%s", env->result->message);
    } else {
        resume = r == -ETIMEDOUT || r == -EHOSTDOWN; /* lost with a connection, maybe */
    }
    envelope_free(&env);
    if (r < 0 && resume && stage_rewind(run, nd, err, "transfer")) {
        nd->stage_off = 0;
        nd->stage_asked = true;
        stage_send_chunk(run, nd, 0, 0, ops);
        return;
    }
    if (r == 0 && nd->stage_asked && held > 0 && held < run->size) {
        char note[160];
        snprintf(note, sizeof(note),
                 "stage: the agent holds %llu of %llu bytes; going on from there",
                 (unsigned long long)held, (unsigned long long)run->size);
        emit_node(run, nd, note);
    }
    nd->stage_asked = false;
    if (r == 0 && held < run->size) {
        /* The agent's count is the truth: after the question it may be ahead of what we sent. */
        if (held > nd->stage_off)
            nd->stage_off = held;
        if (!stage_fill(run, nd, ops) || client_busy(nd->client) || nd->stage_waiting)
            return;
        r = baton_err_set(err, interrupt_count() ? -ECANCELED : -EIO,
                          interrupt_count() ? "interrupted" : "stage: nothing in flight at %llu",
                          (unsigned long long)held);
    }
    stage_end(run, nd, r, err);
}
