/* rollout: the driver of `baton rollout` and `baton resume`.
 *
 * Nothing is stopped anywhere until every node answered Hello, received the binary intact, and
 * passed its pre-flight checks; those run on all nodes at once (at most max_in_flight requests
 * in flight), except that the first node's pre-flight runs alone: two operators starting the
 * same file race for that node, and exactly one goes on. Then the nodes go in batches (the
 * first is the canary); nodes of a batch run side by side, never more than max_unavailable of
 * them between stop and verified. The rollout may pause after a batch until `baton resume`.
 *
 * The database turn, per database (group.h): a node takes it before it stops and keeps it
 * through its migration; a node whose migration applied something keeps it until it verified,
 * so no other node of its database stops, dumps or migrates on a schema that may still be
 * rolled back under it. Nodes whose migration found nothing to do (or was their database's
 * first node's) give the turn back at once: after the canary, batches overlap freely, and
 * nodes on databases of their own never wait for each other.
 *
 * What happens to one node, step by step, and on its failure is in node.c. */
#include "rollout.h"
#include "analysis.h"
#include "rollout_metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "digest.h"
#include "envelope.h"
#include "freeze.h"
#include "interrupt.h"
#include "live.h"
#include "names.h"
#include "recap.h"
#include "engine.h"
#include "run.h"
#include "events.h"
#include "node.h"
#include "steps.h"
#include "verdict.h"

static void on_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err);

/* ---- before any change: hello, staging, pre-flight ------------------------------------------ */

static bool result_ok(const Baton__Envelope *env)
{
    return env && env->result->status == BATON__STATUS__STATUS_OK;
}

/* Resuming: where this rollout left a node, from the agent's own record. */
static int resume_point(node_t *nd, const Baton__ServiceInfo *svc, char **ret_msg)
{
    size_t n = 0;
    const step_def_t *const *seq = step_upgrade_sequence(&n);
    if (!svc->in_progress && !strcmp(svc->step, "committed")) {
        nd->state = NODE_SKIP;
        return asprintf(ret_msg, "upgraded by this rollout (committed)") < 0 ? -ENOMEM : 0;
    }
    for (size_t s = 0; s < n; s++)
        if (!strcmp(svc->step, seq[s]->name)) {
            /* A step cut short runs again; after a completed one, the next. */
            nd->first_step = nd->step = svc->in_progress ? s : s + 1;
            nd->resuming = true;
            nd->staged = true;
            nd->state = NODE_RESERVED;
            return asprintf(ret_msg, "resumes at %s (last step %s%s)", seq[nd->step]->name,
                            svc->step, svc->in_progress ? ", interrupted" : "") < 0
                       ? -ENOMEM
                       : 0;
        }
    if (!strcmp(svc->step, "preflight") || !*svc->step) {
        nd->state = NODE_NEEDS;
        return asprintf(ret_msg, "reserved by this rollout: pre-flight again") < 0 ? -ENOMEM : 0;
    }
    nd->state = NODE_BAD;
    if (asprintf(ret_msg, "this rollout failed here (%s): start a new rollout", svc->step) < 0)
        return -ENOMEM;
    return -EPERM;
}

/* Resuming: the version it ran before this rollout, the newest other than the one it runs now
 * in its history ({{from_version}}); NULL when there is none. */
static char *resumed_from(const Baton__ServiceInfo *svc)
{
    for (size_t k = svc->n_history; k > 0; k--)
        if (strcmp(svc->history[k - 1]->version, svc->version))
            return strdup(svc->history[k - 1]->version);
    return NULL;
}

static void hello_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err)
{
    char *msg = NULL;
    const char *version = "";
    const Baton__ServiceInfo *svc = NULL;
    verdict_t v = node_verdict(run, nd, r, env, err, &svc, &msg, NULL);
    int bad = v == VERDICT_REFUSED;
    if (svc && !svc->running)
        version = svc->version;
    if (v == VERDICT_RESUME) {
        free(nd->from_version);
        nd->from_version = resumed_from(svc);
        free(nd->database_id);
        nd->database_id = *svc->database_id ? strdup(svc->database_id) : NULL;
        /* Its agent's record says whether it dumped and migrated the database for this
         * rollout, and what that left: the group's migrator, whatever the journal lost. */
        nd->was_migrator = svc->dumped && !*svc->shared_from;
        nd->down_limit = svc->down_limit;
        nd->downgrade = svc->down_limit > 0;
        if (nd->was_migrator && svc->n_migrated_ids && !nd->mig_ids &&
            (nd->mig_ids = calloc(svc->n_migrated_ids, sizeof(char *)))) {
            for (size_t k = 0; k < svc->n_migrated_ids; k++) {
                if (!(nd->mig_ids[k] = strdup(svc->migrated_ids[k])))
                    break;
                nd->n_mig_ids = k + 1;
            }
        }
        bad = resume_point(nd, svc, &msg) < 0 ? 1 : 0;
        /* Verified, its commit not begun: its analysis is asked again (analysis.h); a commit
         * under way is never undone by one. */
        nd->reanalyse = !bad && !svc->in_progress && !strcmp(svc->step, "verify");
        /* A commit sent by an earlier run (done, or cut short) means its before_commit gate
         * said yes: a decision taken, not asked again. */
        run->commit_decided |=
            !strcmp(svc->step, "committed") || (svc->in_progress && !strcmp(svc->step, "commit"));
    } else if (v == VERDICT_GO && asprintf(&msg, "%s %s, %s%s%s%s", svc->unit, svc->version,
                                           svc->active_state, *svc->step ? ", last step " : "",
                                           svc->step, nd->downgrade ? "; a DOWNGRADE" : "") < 0) {
        msg = NULL;
    }
    if (bad)
        nd->state = NODE_BAD;
    emit(run,
         json_pack("{s:s, s:s, s:s, s:b, s:I, s:s, s:s}", "event", "check", "phase", "hello",
                   "node", nd->def->name, "ok", !bad, "ms", (json_int_t)(now_ms() - nd->call_t0),
                   "message", msg ? msg : "?", "version", version));
    free(msg);
    envelope_free(&env);
}

static void preflight_result(struct run *run, node_t *nd, int r, Baton__Envelope *env,
                             baton_err_t *err)
{
    if (r == 0 && !result_ok(env))
        r = baton_err_set(err, env->result->status == BATON__STATUS__STATUS_BUSY ? -EBUSY : -EIO,
                          "%s", env->result->message);
    if (r == 0 && *env->result->database_id) {
        free(nd->database_id);
        nd->database_id = strdup(env->result->database_id);
    }
    char *msg = NULL;
    if (r == 0) {
        nd->down_limit = env->result->down_limit;
        if (node_rehearses(run, nd) &&
            asprintf(&msg,
                     "all checks passed; the migration rehearsed on a copy of the database "
                     "in %llu ms",
                     (unsigned long long)env->result->rehearse_ms) < 0)
            msg = NULL;
    }
    envelope_free(&env);
    nd->state = r == 0 ? NODE_RESERVED : NODE_BAD;
    /* A node held by another rollout ends the pre-flight phase at once. */
    if (r == -EBUSY)
        run->halting = true;
    emit_check(run, "preflight", nd, r == 0, r == 0 ? (msg ? msg : "all checks passed") : err->msg);
    free(msg);
}

static void release_result(struct run *run, node_t *nd, int r, Baton__Envelope *env,
                           baton_err_t *err)
{
    if (r == 0 && !result_ok(env))
        r = baton_err_set(err, -EIO, "%s", env->result->message);
    emit_check(run, "release", nd, r == 0, r == 0 ? env->result->message : err->msg);
    envelope_free(&env);
    nd->state = r == 0 ? NODE_RELEASED : NODE_ROLLBACK_FAILED;
}

static const engine_ops_t *ops_of(const struct run *run);

/* Phases of the checks: each one a schedule function over the nodes. */
static bool room(const struct run *run)
{
    return engine_busy(run) < run->rf->strategy.max_in_flight;
}

static bool schedule_hello(struct run *run)
{
    node_hello_all(run, ops_of(run));
    return false;
}

static bool schedule_stage(struct run *run)
{
    bool waiting = node_stage_pump(run, ops_of(run)); /* a pull asks again when due */
    for (size_t i = 0; i < run->n && room(run) && !interrupt_count(); i++) {
        node_t *nd = &run->nodes[i];
        if (nd->state == NODE_NEEDS && !nd->staged && !nd->stage_waiting && nd->stage_off == 0 &&
            nd->call == CALL_NONE) {
            nd->call_t0 = now_ms();
            node_stage_send(run, nd, ops_of(run));
        }
    }
    return waiting;
}

static bool schedule_preflight(struct run *run)
{
    /* Until one node passed, pre-flights go one at a time: the race for the first node. */
    bool first_done = false, running = false;
    for (size_t i = 0; i < run->n; i++) {
        first_done |= run->nodes[i].state == NODE_RESERVED && !run->nodes[i].resuming;
        running |= run->nodes[i].call == CALL_PREFLIGHT;
    }
    if (!first_done && running)
        return false;
    for (size_t i = 0; i < run->n && room(run) && !run->halting && !interrupt_count(); i++) {
        node_t *nd = &run->nodes[i];
        if (nd->state != NODE_NEEDS || nd->call != CALL_NONE)
            continue;
        Baton__Step step;
        node_init_preflight(&step, run, nd);
        Baton__Envelope req = BATON__ENVELOPE__INIT;
        req.body_case = BATON__ENVELOPE__BODY_PREFLIGHT;
        req.preflight = &step;
        node_send(run, nd, CALL_PREFLIGHT, &req, run->rf->step_timeout_ms, ops_of(run));
        if (!first_done)
            break;
    }
    return false;
}

/* Releases every node reserved and not started (a refused or stopped rollout holds nothing). */
static bool schedule_release(struct run *run)
{
    for (size_t i = 0; i < run->n && room(run) && interrupt_count() < 2; i++) {
        node_t *nd = &run->nodes[i];
        if (nd->state == NODE_RESERVED && nd->call == CALL_NONE && !group_hold_release(run, nd)) {
            nd->call_t0 = now_ms();
            node_rollback(run, nd, true, ops_of(run));
        }
    }
    return false;
}

/* ---- the upgrade: batches, limits, pauses, the policy on failure -------------------------- */

static bool turn_needed(const node_t *nd)
{
    size_t n = 0;
    const step_def_t *const *seq = step_upgrade_sequence(&n);
    for (size_t s = nd->step; s < n; s++)
        if (seq[s]->id == STEP_MIGRATE)
            return true;
    return false;
}

static void halt(struct run *run, const char *why)
{
    if (run->halting)
        return;
    run->halting = true;
    free(run->halt_reason);
    run->halt_reason = strdup(why);
    emit(run, json_pack("{s:s, s:s}", "event", "halt", "message", why));
}

static bool batch_settled(const struct run *run, size_t b)
{
    for (size_t i = 0; i < run->n; i++) {
        const node_t *nd = &run->nodes[i];
        if (nd->batch == b &&
            (nd->call != CALL_NONE || nd->state == NODE_RESERVED || nd->state == NODE_UPGRADING))
            return false;
    }
    return true;
}

static bool pause_reached_before(const struct run *run, size_t b)
{
    for (size_t i = 0; run->record && i < run->record->n_pauses_reached; i++)
        if (run->record->pauses_reached[i] == b)
            return true;
    return false;
}

/* ---- webhook gates (webhook.h) ------------------------------------------------------------ */

/* The body of a gate: where the rollout stands (before the commit: the last batch, passed). */
static json_t *gate_state(const struct run *run, const char *gate)
{
    size_t batch = run->batch > run->n_batches ? run->n_batches : run->batch;
    json_t *nodes = json_array();
    for (size_t i = 0; nodes && i < run->n; i++)
        json_array_append_new(nodes, json_pack("{s:s, s:s, s:I}", "node", run->nodes[i].def->name,
                                               "state", node_state_name(run->nodes[i].state),
                                               "batch", (json_int_t)run->nodes[i].batch));
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "gate", gate, "rollout", run->id,
                     "service", run->rf->service, "version", run->rf->version, "batch",
                     (json_int_t)batch, "of", (json_int_t)run->n_batches, "nodes", nodes);
}

/* 0 when every webhook at `at` said yes (or there is none); else -1 and *ret_why. */
static int gate(const struct run *run, unsigned at, char **ret_why)
{
    *ret_why = NULL;
    if (!run->rf->n_webhooks)
        return 0;
    json_t *st = gate_state(run, webhook_at_name(at));
    int r = st ? webhook_gate(run->rf->webhooks, run->rf->n_webhooks, at, st, ret_why) : -1;
    json_decref(st);
    if (r < 0 && !*ret_why)
        *ret_why = strdup("webhook: out of memory");
    return r;
}

/* The batch run->batch is about to start: its webhooks first. false (halted) on a no. */
static bool gate_batch(struct run *run)
{
    bool starts = false;
    for (size_t i = 0; i < run->n && !starts; i++)
        starts = run->nodes[i].batch == run->batch && run->nodes[i].state == NODE_RESERVED;
    char *why = NULL;
    if (!starts || run->batch <= 1 || gate(run, WEBHOOK_BEFORE_BATCH, &why) == 0)
        return true;
    halt(run, why ? why : "webhook: out of memory");
    free(why);
    return false;
}

/* rollback-all, every batch passed: the webhooks at before_commit, before the first commit is
 * sent, once per rollout (commit_decided). false (halted) on a no: every verified node is
 * undone, as after a failed node; Ctrl-C leaves them verified, as during any other gate, and a
 * resume asks again. */
static bool gate_commit(struct run *run)
{
    if (run->rf->strategy.on_failure != ON_FAILURE_ROLLBACK_ALL || run->commit_decided)
        return true;
    bool verified = false;
    for (size_t i = 0; i < run->n && !verified; i++)
        verified = run->nodes[i].state == NODE_VERIFIED;
    char *why = NULL;
    if (!verified || gate(run, WEBHOOK_BEFORE_COMMIT, &why) == 0) {
        run->commit_decided = verified;
        return true;
    }
    halt(run, why ? why : "webhook: out of memory");
    free(why);
    if (!interrupt_count())
        run->undo_in_flight = true;
    return false;
}

/* rollback-all, resumed: a node of batch run->batch that an earlier run verified waits for
 * every batch (and before_commit) again, as it did then: its commit is not its batch's to send.
 * Verified here, with no call to make, so that the batch settles. */
static void resumed_verified(struct run *run)
{
    size_t n = 0;
    (void)step_upgrade_sequence(&n);
    for (size_t i = 0; i < run->n && run->rf->strategy.on_failure == ON_FAILURE_ROLLBACK_ALL; i++) {
        node_t *nd = &run->nodes[i];
        if (nd->batch != run->batch || nd->state != NODE_RESERVED || !nd->resuming ||
            nd->step != n - 1 || nd->call != CALL_NONE)
            continue;
        if (run->rf->analysis && run->rf->analysis->n_checks && nd->reanalyse &&
            !run->commit_decided) {
            /* Whether its analysis passed, the journal cannot say: again. */
            nd->reanalyse = false;
            analysis_begin(run, nd, ops_of(run));
            continue;
        }
        emit_node(run, nd, "verified by an earlier run: its commit waits for every batch");
        nd->settled_seq = ++run->settled;
        nd->state = NODE_VERIFIED;
    }
}

/* A node of `batch` (0: any) verified and waiting for its commit. */
static bool any_verified(const struct run *run, size_t batch)
{
    for (size_t i = 0; i < run->n; i++)
        if (run->nodes[i].state == NODE_VERIFIED && (!batch || run->nodes[i].batch == batch))
            return true;
    return false;
}

/* Sends the commit of every node of `batch` (0: any) verified and waiting, as room allows: true
 * when one was sent or still waits for room (the batch is not settled until they ended). */
static bool commit_verified(struct run *run, size_t batch)
{
    size_t n = 0;
    bool sent = false;
    (void)step_upgrade_sequence(&n);
    for (size_t i = 0; i < run->n && room(run); i++) {
        node_t *nd = &run->nodes[i];
        if (nd->state == NODE_VERIFIED && nd->call == CALL_NONE && (!batch || nd->batch == batch)) {
            nd->step = n - 1;
            node_next_step(run, nd, ops_of(run));
            sent = true;
        }
    }
    return sent || any_verified(run, batch);
}

static void start_node(struct run *run, node_t *nd)
{
    /* Resumed verified and not committed: whether its analysis (or its batch's bake) passed,
     * the journal cannot say; it runs again. */
    if (run->rf->analysis && nd->reanalyse && !run->commit_decided) {
        nd->reanalyse = false;
        analysis_begin(run, nd, ops_of(run));
        return;
    }
    emit_node(run, nd, nd->resuming ? "upgrading (resumed)" : "upgrading");
    if (turn_needed(nd) && !run->maintenance)
        group_turn_take(nd);
    node_next_step(run, nd, ops_of(run));
}

static bool schedule_batches(struct run *run);

/* The batches, and the analyses of nodes between their verify and their commit (analysis.h):
 * the loop wakes for those while any runs. */
static bool schedule_upgrade(struct run *run)
{
    analysis_schedule(run, ops_of(run));
    /* After the batches: an analysis begun there (a resumed node) has no call to wake for. */
    return schedule_batches(run) || analysis_running(run);
}

/* A paused rollout: 1 while it stays paused, or when `baton resume` let a held analysis go on
 * (the loop waits for either), -1 once `baton resume` asked or Ctrl-C halted it (schedule as
 * usual), 0 when the next batch's gate said no. */
static int schedule_paused(struct run *run, uint64_t now)
{
    if (interrupt_count()) {
        run->paused = run->analysis_paused = false;
        halt(run, "interrupted while paused");
        return -1;
    }
    if (!journal_take(run->opts->store, run->id, "continue"))
        return 1;
    bool analysis = run->analysis_paused;
    run->paused = false;
    run->progress_at = now;
    emit(run, json_pack("{s:s, s:I, s:s}", "event", "continued", "batch", (json_int_t)run->batch,
                        "message",
                        analysis ? "continued by baton resume: the analysis counts as passed"
                                 : "continued by baton resume"));
    if (analysis) {
        /* The held nodes go on (their commits), or a held bake counts as passed: the loop
         * wakes again for either (a bake's batch has no call in flight). */
        analysis_continue(run, ops_of(run));
        return 1;
    }
    run->batch++;
    return gate_batch(run) ? -1 : 0;
}

/* What halts a rollout between its calls: Ctrl-C, a journal that failed, progress_deadline. */
static void check_halts(struct run *run, uint64_t now)
{
    if (!run->halting && (interrupt_count() || run->journal_failed))
        halt(run, interrupt_count() ? "interrupted" : "the journal could not be written");
    if (!run->halting && run->rf->progress_deadline_ms &&
        now - run->progress_at > run->rf->progress_deadline_ms) {
        run->deadline_missed = true;
        char *why = NULL;
        if (asprintf(&why, "progress_deadline: no node finished within %llu s",
                     (unsigned long long)(run->rf->progress_deadline_ms / 1000)) > 0)
            halt(run, why);
        free(why);
    }
}

/* A halting rollout starts no node: it restores a shared database first, commits or undoes
 * the nodes waiting for a bake or for rollback-all, then releases the reserved ones. */
static bool schedule_halting(struct run *run)
{
    /* A restore of a shared database with its group stopped goes first. */
    if (group_schedule(run, ops_of(run)))
        return false;
    /* Nodes waiting uncommitted for their batch's bake (analysis.h; rollback-all's wait for
     * more): rolled back when the bake failed or the run was stopped; after a halt for another
     * reason committed, as they would have been without a bake. */
    bool rollback_all = run->rf->strategy.on_failure == ON_FAILURE_ROLLBACK_ALL;
    if (!rollback_all && !run->bake_undo && any_verified(run, 0) &&
        (interrupt_count() || run->journal_failed || run->deadline_missed))
        run->bake_undo = run->undo_in_flight = true;
    if (!rollback_all && !run->bake_undo && commit_verified(run, 0))
        return false;
    /* rollback-all (or a bake's undo): once nothing is in flight, undo the verified nodes
     * newest first, one at a time (the node that migrated the schema is undone last). */
    if ((rollback_all || run->bake_undo) && run->undo_in_flight && engine_busy(run) == 0) {
        node_t *newest = NULL;
        for (size_t i = 0; i < run->n; i++)
            if (run->nodes[i].state == NODE_VERIFIED &&
                (!newest || run->nodes[i].settled_seq > newest->settled_seq))
                newest = &run->nodes[i];
        if (newest) {
            node_set_why(newest, !run->bake_undo     ? "on_failure: rollback-all"
                                 : run->bake.running ? "stopped during its batch's bake"
                                 : interrupt_count() ? "stopped while waiting for its batch's bake"
                                                     : "a bake failed (see the halt)");
            node_rollback(run, newest, false, ops_of(run));
            return false;
        }
    }
    if (engine_busy(run) == 0 || !run->undo_in_flight)
        schedule_release(run);
    return false;
}

/* The batches that are settled are done with: each one's bake, its nodes' commits, a pause
 * after it, the next one's gate. -1 when the batch run->batch has nodes to start, else what
 * schedule_batches() returns. */
static int next_batch(struct run *run)
{
    const strategy_t *s = &run->rf->strategy;
    resumed_verified(run);
    while (run->batch <= run->n_batches && batch_settled(run, run->batch)) {
        /* Its bake (analysis.h), then its nodes' commits (they waited for it). */
        char *why = NULL;
        bake_state_t bk = analysis_bake(run, &why);
        if (bk == BAKE_WAIT)
            return 1;
        if (bk == BAKE_FAILED) {
            halt(run, why ? why : "analysis: a bake failed");
            free(why);
            run->bake_undo = run->undo_in_flight = true;
            return schedule_batches(run); /* the undo starts now: nothing is in flight */
        }
        if (s->on_failure != ON_FAILURE_ROLLBACK_ALL && commit_verified(run, run->batch))
            return 0;
        if (run->batch < run->n_batches && strategy_pauses_after(s, run->batch) &&
            !pause_reached_before(run, run->batch)) {
            char *msg = NULL;
            if (asprintf(&msg,
                         "PAUSED after batch %zu of %zu%s: continue with `baton resume %s` "
                         "(Ctrl-C here stops with every node settled)",
                         run->batch, run->n_batches, run->batch == 1 ? " (the canary)" : "",
                         run->id) < 0)
                msg = NULL;
            emit(run, json_pack("{s:s, s:I, s:I, s:s}", "event", "paused", "batch",
                                (json_int_t)run->batch, "of", (json_int_t)run->n_batches, "message",
                                msg ? msg : "paused"));
            free(msg);
            run->paused = true;
            return 1;
        }
        run->batch++;
        if (!gate_batch(run))
            return 0;
        resumed_verified(run);
    }
    if (run->batch > run->n_batches) {
        /* rollback-all: every node verified; the webhooks' word, then commit them all. A no
         * halts: schedule again at once, the undo starts now (nothing is in flight, the loop
         * would end). */
        if (!gate_commit(run))
            return schedule_upgrade(run);
        commit_verified(run, 0);
        return 0;
    }
    return -1;
}

/* The batch's reserved nodes, in file order, while max_unavailable and the calls in flight
 * allow, and each database's turn is free. */
static void start_batch_nodes(struct run *run)
{
    size_t unavailable = 0;
    for (size_t i = 0; i < run->n; i++)
        unavailable += node_unavailable(&run->nodes[i]);
    for (size_t i = 0; i < run->n && room(run); i++) {
        node_t *nd = &run->nodes[i];
        if (nd->batch != run->batch || nd->state != NODE_RESERVED || nd->call != CALL_NONE)
            continue;
        if (unavailable >= run->max_unavailable)
            break;
        if (turn_needed(nd) && group_turn_held(nd) && !run->maintenance)
            continue; /* in file order: the next node of that database waits for the turn */
        start_node(run, nd);
        unavailable++;
    }
}

static bool schedule_batches(struct run *run)
{
    uint64_t now = now_ms();
    int r;
    if (run->paused && (r = schedule_paused(run, now)) >= 0)
        return r;
    check_halts(run, now);
    group_maint_schedule(run, ops_of(run));
    if (run->halting)
        return schedule_halting(run);
    /* Next batch when this one is settled, unless the rollout pauses here. */
    if ((r = next_batch(run)) >= 0)
        return r;
    start_batch_nodes(run);
    return false;
}

static void on_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err)
{
    switch (nd->ended) {
    case CALL_HELLO:
        hello_result(run, nd, r, env, err);
        break;
    case CALL_STAGE:
        node_stage_result(run, nd, r, env, err, ops_of(run));
        break;
    case CALL_PREFLIGHT:
        preflight_result(run, nd, r, env, err);
        break;
    case CALL_STEP:
        node_step_result(run, nd, r, env, err, ops_of(run));
        break;
    case CALL_ROLLBACK:
        node_rollback_result(run, nd, r, env, err);
        break;
    case CALL_RELEASE:
        release_result(run, nd, r, env, err);
        break;
    case CALL_NONE:
        envelope_free(&env);
        break;
    }
}

static const engine_ops_t ops_hello = {schedule_hello, on_result};
static const engine_ops_t ops_stage = {schedule_stage, on_result};
static const engine_ops_t ops_preflight = {schedule_preflight, on_result};
static const engine_ops_t ops_release = {schedule_release, on_result};
static const engine_ops_t ops_upgrade = {schedule_upgrade, on_result};

/* Calls started from on_result belong to the phase running; one set of ops per phase. */
static const engine_ops_t *current_ops = &ops_hello;
static const engine_ops_t *ops_of(const struct run *run)
{
    (void)run;
    return current_ops;
}

static int phase(struct run *run, const engine_ops_t *ops)
{
    current_ops = ops;
    return engine_run(run, ops);
}

/* ---- the whole rollout -------------------------------------------------------------------- */

static int read_artifact(const char *path, uint8_t **ret_data, uint64_t *ret_size,
                         char hex[DIGEST_HEX_LEN + 1], baton_err_t *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return baton_err_set(err, -errno, "artifact %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size <= 0 || size > (2L << 30)) {
        fclose(f);
        return baton_err_set(err, -EINVAL, "artifact %s: size %ld not in 1 byte..2 GiB", path,
                             size);
    }
    uint8_t *data = malloc((size_t)size);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        fclose(f);
        return baton_err_set(err, -EIO, "artifact %s: read failed", path);
    }
    fclose(f);
    digest_t d;
    digest_init(&d);
    digest_update(&d, data, (size_t)size);
    digest_final_hex(&d, hex);
    *ret_data = data;
    *ret_size = (uint64_t)size;
    return 0;
}

int run_open_artifact(struct run *run, uint8_t **ret_data, char hex[DIGEST_HEX_LEN + 1],
                      baton_err_t *err)
{
    const rollout_file_t *rf = run->rf;
    *ret_data = NULL;
    if (artifact_is_url(rf->artifact)) { /* the rollout file required its digest */
        snprintf(hex, DIGEST_HEX_LEN + 1, "%s", rf->sha256);
        run->url = rf->artifact;
        run->sha256 = hex;
        return 0;
    }
    int r = digest_global_init(err);
    if (r < 0 || (r = read_artifact(rf->artifact, ret_data, &run->size, hex, err)) < 0)
        return r;
    run->data = *ret_data;
    run->sha256 = hex;
    return 0;
}

static void make_id(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    unsigned char rnd[3] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, rnd, sizeof(rnd)) < 0)
            rnd[0] = (unsigned char)getpid();
        close(fd);
    }
    snprintf(buf, len, "r%04d%02d%02dT%02d%02d%02d-%02x%02x%02x", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rnd[0], rnd[1], rnd[2]);
}

static size_t count(const struct run *run, node_state_t s)
{
    size_t n = 0;
    for (size_t i = 0; i < run->n; i++)
        n += run->nodes[i].state == s;
    return n;
}

/* Resuming: the batches the journal's plan event gave (batch numbers stay those the operator
 * saw), a node new since then in the last. */
static json_t *batches_from_journal(struct run *run)
{
    size_t nb = json_array_size(run->record->plan);
    for (size_t b = 0; b < nb; b++) {
        json_t *names = json_array_get(run->record->plan, b);
        for (size_t k = 0; k < json_array_size(names); k++) {
            const char *name = json_string_value(json_array_get(names, k));
            for (size_t i = 0; name && i < run->n; i++)
                if (!strcmp(run->nodes[i].def->name, name))
                    run->nodes[i].batch = b + 1;
        }
    }
    run->n_batches = nb ? nb : 1;
    for (size_t i = 0; i < run->n; i++) /* new since the plan: last batch */
        if (run->nodes[i].state == NODE_RESERVED && !run->nodes[i].batch)
            run->nodes[i].batch = run->n_batches;
    return json_incref(run->record->plan);
}

/* Maintenance style: every node at once (the barriers in group.c order them). */
static json_t *batches_maintenance(struct run *run)
{
    json_t *batches = json_array(), *all = json_array();
    run->n_batches = 1;
    for (size_t i = 0; i < run->n; i++)
        if (run->nodes[i].state == NODE_RESERVED) {
            json_array_append_new(all, json_string(run->nodes[i].def->name));
            run->nodes[i].batch = 1;
        }
    json_array_append_new(batches, all);
    return batches;
}

/* The strategy's batches of the `todo` reserved nodes, in file order; NULL without memory. */
static json_t *batches_by_strategy(struct run *run, size_t todo)
{
    size_t *sizes = calloc(todo ? todo : 1, sizeof(*sizes));
    if (!sizes)
        return NULL;
    json_t *batches = json_array();
    run->n_batches = strategy_batches(&run->rf->strategy, todo, sizes);
    size_t b = 0, in_batch = 0;
    for (size_t i = 0; i < run->n; i++) {
        if (run->nodes[i].state != NODE_RESERVED)
            continue;
        if (in_batch == sizes[b]) {
            b++;
            in_batch = 0;
        }
        if (in_batch == 0)
            json_array_append_new(batches, json_array());
        json_array_append_new(json_array_get(batches, b), json_string(run->nodes[i].def->name));
        run->nodes[i].batch = b + 1;
        in_batch++;
    }
    if (run->n_batches == 0)
        run->n_batches = 1;
    free(sizes);
    return batches;
}

/* The plan said as a person reads it: "node1 | node2, node3" for the batches, "at most 2 nodes
 * down at a time" or "a batch at a time", the databases; the caller's. */
static char *plan_message(struct run *run, json_t *batches, size_t todo)
{
    const strategy_t *s = &run->rf->strategy;
    char mu[128], *msg = NULL, *text = NULL, *dbs = group_describe(run);
    size_t text_len = 0;
    FILE *tf = open_memstream(&text, &text_len);
    for (size_t b = 0; tf && b < json_array_size(batches); b++) {
        json_t *names = json_array_get(batches, b);
        for (size_t k = 0; k < json_array_size(names); k++)
            fprintf(tf, "%s%s",
                    k   ? ", "
                    : b ? " | "
                        : "",
                    json_string_value(json_array_get(names, k)));
    }
    if (tf)
        fclose(tf);
    if (run->maintenance) {
        snprintf(mu, sizeof(mu), "every node of a database down together (maintenance)");
    } else if (s->max_unavailable_set) {
        char amount[32];
        amount_str(s->max_unavailable, amount, sizeof(amount));
        snprintf(mu, sizeof(mu), "at most %zu node%s down at a time (max_unavailable %s)",
                 run->max_unavailable, run->max_unavailable == 1 ? "" : "s", amount);
    } else {
        snprintf(mu, sizeof(mu), "a batch at a time");
    }
    if (asprintf(&msg, "%s%zu node%s in %zu batch%s: %s; %s; on_failure %s; %s",
                 run->maintenance ? "MAINTENANCE: every node of a database stops, its first node "
                                    "dumps, migrates and verifies, then the others start; "
                                  : "",
                 todo, todo == 1 ? "" : "s", run->n_batches, run->n_batches == 1 ? "" : "es",
                 text ? text : "", mu, on_failure_str(s->on_failure), dbs ? dbs : "") < 0)
        msg = NULL;
    free(text);
    free(dbs);
    return msg;
}

/* Puts every node to upgrade into a batch: the journal's plan when resuming, else the
 * strategy over the nodes in file order. Emits the plan. */
int run_plan_batches(struct run *run)
{
    const strategy_t *s = &run->rf->strategy;
    if (group_build(run) < 0)
        return -ENOMEM;
    /* A downgrade that takes migrations down (or restores a dump) on a shared database cannot
     * run mixed: the nodes not yet downgraded run a binary that needs the migrations gone (and
     * could not even be started again), and a restore must not run under serving nodes. It
     * goes in maintenance style. */
    for (size_t i = 0; i < run->n && !run->maintenance; i++) {
        const node_t *nd = &run->nodes[i];
        if (nd->state == NODE_RESERVED &&
            (nd->down_limit || (nd->downgrade && run->opts->restore_dump)) && nd->grp &&
            nd->grp->n_nodes > 1)
            run->maintenance = true;
    }
    size_t todo = count(run, NODE_RESERVED);
    json_t *batches = run->record && run->record->plan ? batches_from_journal(run)
                      : run->maintenance               ? batches_maintenance(run)
                                                       : batches_by_strategy(run, todo);
    if (!batches)
        return -ENOMEM;
    run->max_unavailable = s->max_unavailable_set && !run->maintenance
                               ? amount_resolve(s->max_unavailable, todo, 1)
                               : SIZE_MAX;
    run->max_failures = amount_resolve(s->max_failures, todo, 0);
    char *msg = plan_message(run, batches, todo);
    json_t *groups = json_array();
    for (size_t k = 0; k < run->n_groups; k++) {
        json_t *names = json_array();
        for (size_t i = 0; i < run->n; i++)
            if (run->nodes[i].grp == &run->groups[k])
                json_array_append_new(names, json_string(run->nodes[i].def->name));
        json_array_append_new(groups, json_pack("{s:s, s:o}", "database",
                                                run->groups[k].database_id, "nodes", names));
    }
    for (size_t i = 0; i < json_array_size(batches); i++)
        run->parallel |= json_array_size(json_array_get(batches, i)) > 1;
    /* max_unavailable: the nodes that may be down at once, or null: as many as a batch has
     * (none set, or maintenance: a database's nodes all at once). */
    json_t *jmu = s->max_unavailable_set && !run->maintenance
                      ? json_integer((json_int_t)run->max_unavailable)
                      : json_null();
    emit(run, json_pack("{s:s, s:o, s:s, s:o, s:b, s:i, s:o, s:s}", "event", "plan", "batches",
                        batches, "on_failure", on_failure_str(s->on_failure), "max_unavailable",
                        jmu, "maintenance", run->maintenance, "max_failures",
                        (int)run->max_failures, "databases", groups, "message", msg ? msg : ""));
    free(msg);
    run->batch = 1;
    return 0;
}

/* One line per node that failed, for the summary ("\n  node2: rolled back to where it was"),
 * and the first that failed for a reason of its own (not rollback-all's); the caller's. */
static char *failed_lines_of(struct run *run, node_t **ret_first_failed)
{
    char *lines = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&lines, &len);
    *ret_first_failed = NULL;
    for (size_t i = 0; f && i < run->n; i++) {
        node_t *nd = &run->nodes[i];
        if (nd->state != NODE_ROLLED_BACK && nd->state != NODE_ROLLBACK_FAILED)
            continue;
        if (!*ret_first_failed && nd->why && !strstr(nd->why, "rollback-all"))
            *ret_first_failed = nd;
        bool say_why = nd->why && nd != *ret_first_failed;
        fprintf(f, "\n  %s: %s%s%s%s", nd->def->name,
                nd->state == NODE_ROLLED_BACK ? "rolled back to where it was"
                : nd->restore_needed ? "STOPPED, NOT RESTORED: other nodes serve from its database"
                                     : "ROLLBACK FAILED: the node needs attention (baton status)",
                say_why ? " (" : "", say_why ? nd->why : "", say_why ? ")" : "");
        if (nd->restore_needed && nd->restore_why)
            fprintf(f, "\n  %s: %s", nd->def->name, nd->restore_why);
    }
    if (f)
        fclose(f);
    return lines;
}

/* A second Ctrl-C: the nodes with a call in flight are left to their agents (NODE_LEFT), said
 * in one line; the caller's. */
static char *leave_in_flight(struct run *run)
{
    char *left = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&left, &len);
    for (size_t i = 0; f && i < run->n; i++) {
        node_t *nd = &run->nodes[i];
        if (nd->call == CALL_NONE)
            continue;
        fprintf(f, "%s%s is left in the middle of its upgrade (%s: interrupted twice during %s)",
                ftell(f) ? "; " : "", nd->def->name, nd->def->name, client_command(nd->client));
        nd->state = NODE_LEFT;
    }
    if (f)
        fclose(f);
    return left;
}

/* The end: one summary that says what happened to every node and what to do next. */
static int summarize(struct run *run, int engine_r)
{
    const rollout_file_t *rf = run->rf;
    char *up = node_names(run, NODE_DONE, NODE_DONE);
    char *untouched = node_names(run, NODE_RELEASED, NODE_RESERVED);
    node_t *first_failed = NULL;
    char *failed_lines = failed_lines_of(run, &first_failed);
    const char *tail_fmt = "%s\n  upgraded to %s: %s\n  untouched: %s";
    int code;
    char *head = NULL;
    size_t rb_failed = count(run, NODE_ROLLBACK_FAILED), rolled = count(run, NODE_ROLLED_BACK);
    node_t *lost_node = NULL;
    for (size_t i = 0; i < run->n && !lost_node; i++)
        if (run->nodes[i].state == NODE_LOST)
            lost_node = &run->nodes[i];
    if (engine_r == -EINTR) {
        /* Ctrl-C twice: leave now. The agents finish their steps and record them. */
        char *left = leave_in_flight(run);
        code = EXIT_NEEDS_CARE;
        if (asprintf(&head,
                     "INTERRUPTED twice: %s; its agent finishes the step and records it\n  "
                     "next: baton status %s, then baton rollback %s",
                     left ? left : "?", rf->path, rf->path) < 0)
            head = NULL;
        free(left);
    } else if (lost_node) {
        code = EXIT_NEEDS_CARE;
        if (asprintf(&head,
                     "LOST %s: %s\n  %s: its agent records how the step ended%s\n  next: baton "
                     "status %s, then baton rollback %s",
                     lost_node->def->name, lost_node->why ? lost_node->why : "",
                     lost_node->def->name, failed_lines ? failed_lines : "", rf->path,
                     rf->path) < 0)
            head = NULL;
    } else if (rb_failed ||
               (rolled && !interrupt_count() && !run->deadline_missed && !run->journal_failed)) {
        code = rb_failed ? EXIT_NEEDS_CARE : EXIT_ROLLED_BACK;
        /* What to do next, said where the operator reads: a node that needs a person first;
         * else the choice between going on once fixed and taking the fleet back. */
        char *next = NULL;
        if ((rb_failed ? asprintf(&next, "next: baton status %s, then baton rollback %s", rf->path,
                                  rf->path)
                       : asprintf(&next,
                                  "next: fix the cause, then baton rollout %s again (nodes on %s "
                                  "are skipped), or baton rollback %s to take every node back",
                                  rf->path, rf->version, run->id)) < 0)
            next = NULL;
        /* No node failed when a gate's no (before_commit) undid them all: its reason. */
        if ((first_failed
                 ? asprintf(&head, "FAILED on %s: %s%s\n  %s", first_failed->def->name,
                            first_failed->why ? first_failed->why : "",
                            failed_lines ? failed_lines : "", next ? next : "")
                 : asprintf(&head, "FAILED: %s%s\n  %s", run->halt_reason ? run->halt_reason : "?",
                            failed_lines ? failed_lines : "", next ? next : "")) < 0)
            head = NULL;
        free(next);
    } else if (rolled) {
        /* Stopped on purpose (Ctrl-C, the journal, progress_deadline): nodes in flight were
         * brought back; how to continue. */
        code = EXIT_ROLLED_BACK;
        node_t *nd = first_failed;
        if (asprintf(&head, "INTERRUPTED %s: %s%s\n  to continue: baton rollout %s",
                     nd ? nd->def->name : "?", nd && nd->why ? nd->why : "",
                     failed_lines ? failed_lines : "", rf->path) < 0)
            head = NULL;
    } else if (run->halting) {
        /* Stopped between nodes or while paused: every node is settled, the fleet mixed. */
        code = EXIT_NEEDS_CARE;
        if (asprintf(&head,
                     "INTERRUPTED (%s, %s): every node is settled, the fleet is mixed\n  to "
                     "continue: baton resume %s, or baton rollout %s (upgraded nodes are skipped)",
                     interrupt_count() ? interrupt_name() : "stopped",
                     run->halt_reason ? run->halt_reason : "", run->id, rf->path) < 0)
            head = NULL;
    } else {
        free(up);
        free(untouched);
        free(failed_lines);
        return emit_summary(
            run, EXIT_DONE, "done: %zu of %zu nodes on %s %s (%zu upgraded now) in %.1f s",
            count(run, NODE_DONE) + count(run, NODE_SKIP), run->n, rf->service, rf->version,
            count(run, NODE_DONE), (double)(now_ms() - run->start_ms) / 1000.0);
    }
    code = emit_summary(run, code, tail_fmt, head ? head : "out of memory", rf->version,
                        up ? up : "?", untouched ? untouched : "?");
    free(head);
    free(up);
    free(untouched);
    free(failed_lines);
    return code;
}

/* A refused rollout: release what it reserved, then say why. */
static int refuse(struct run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(struct run *run, const char *fmt, ...)
{
    if (count(run, NODE_RESERVED))
        phase(run, &ops_release);
    va_list ap;
    va_start(ap, fmt);
    int code = emit_summary_v(run, EXIT_REFUSED, fmt, ap);
    va_end(ap);
    return code;
}

static size_t count_bad(const struct run *run)
{
    return count(run, NODE_BAD);
}

/* The run made ready: the artifact read (*ret_data), the journal read (resume) and opened,
 * the freeze and the digest checked, the start said, the agents connected. Returns -1 to go
 * on, else the exit code. */
static int run_open(struct run *run, journal_record_t *record, uint8_t **ret_data, char *sha,
                    char **ret_file)
{
    const rollout_file_t *rf = run->rf;
    const struct rollout_opts *opts = run->opts;
    baton_err_t err = {0};
    int code = EXIT_REFUSED;
    if (run_open_artifact(run, ret_data, sha, &err) < 0) {
        emit_error(run, err.msg);
        return code;
    }
    if (opts->resume_id) {
        if (journal_read(opts->store, opts->resume_id, record, &err) < 0) {
            emit_error(run, err.msg);
            return code;
        }
        run->record = record;
        if (strcmp(record->sha256, sha)) {
            emit_error(run, "refused: the artifact changed since the rollout began (its sha256 "
                            "differs from the journal's); nothing was changed");
            return code;
        }
    }
    /* A frozen service (baton freeze) rolls neither anew nor on: refused before its journal is
     * opened or a paused coordinator told to go on. Rollbacks never ask. */
    char *frozen = NULL;
    if (freeze_refusal(opts->store, rf->service, &frozen) != 0) {
        char *msg = NULL;
        emit_error(run, asprintf(&msg, "refused: %s; nothing was changed",
                                 frozen ? frozen : "out of memory") > 0
                            ? msg
                            : "refused: out of memory");
        free(msg);
        free(frozen);
        return code;
    }
    /* The journal first: a rollout that cannot be resumed does not start. */
    char *file = *ret_file = realpath(rf->path, NULL);
    if (!file) {
        emit_error(run, "rollout file: cannot resolve its path");
        return code;
    }
    if (journal_open(opts->store, run->id, &run->journal, &err) < 0) {
        /* A paused rollout's coordinator holds the journal: tell it to go on. */
        if (err.code == -EBUSY && run->record && record->waiting &&
            journal_request(opts->store, run->id, "continue", &err) == 0) {
            printf("baton: rollout %s was paused; its coordinator continues it now\n", run->id);
            return EXIT_DONE;
        }
        emit_error(run, err.msg);
        return code;
    }
    run->live = live_new(run);
    run->recap = recap_new(run);
    run->metrics = rollout_metrics_new(rf->service);
    if (rf->n_notify && notifier_new(rf->notify, rf->n_notify, rf->service, &run->notify, &err) < 0)
        fprintf(stderr, "baton: warning: %s; this rollout sends no notifications\n", err.msg);
    /* Stale requests from a dead run. */
    (void)journal_take(opts->store, run->id, "continue");
    (void)journal_take(opts->store, run->id, "abort");
    json_t *node_list = json_array();
    for (size_t i = 0; i < run->n; i++)
        json_array_append_new(node_list, json_string(rf->nodes[i].name));
    emit(run, json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:s, s:s, s:b}", "event", "start",
                        "service", rf->service, "version", rf->version, "nodes", node_list,
                        "artifact", rf->artifact, "size", (json_int_t)run->size, "sha256", sha,
                        "file", file, "resumed", opts->resume_id != NULL));
    if (rf->sha256 && strcmp(rf->sha256, sha)) {
        return emit_summary(run, EXIT_REFUSED,
                            "refused: artifact %s has sha256 %s but the %s says %s; nothing was "
                            "changed",
                            rf->artifact, sha, rf->catalog ? "catalog" : "rollout file",
                            rf->sha256);
    }
    if (run_connect(run, &err) < 0)
        return emit_summary(run, EXIT_REFUSED, "refused: %s; nothing was changed", err.msg);
    return -1;
}

/* Hello, staging and pre-flight of every node at once, the batches, the webhooks' word:
 * everything before the first stop. Returns -1 to go on, else the exit code. */
static int run_checks(struct run *run)
{
    /* Hello, staging, pre-flight: all nodes at once; nothing stopped before all passed. */
    phase(run, &ops_hello);
    size_t bad = count_bad(run);
    if (bad || interrupt_count())
        return interrupt_count()
                   ? refuse(run, "interrupted (%s): nothing was changed", interrupt_name())
                   : refuse(run, "refused: %zu of %zu nodes not ready; nothing was changed", bad,
                            run->n);
    phase(run, &ops_stage);
    if ((bad = count_bad(run)) || interrupt_count())
        return interrupt_count()
                   ? refuse(run, "interrupted (%s): nothing was changed", interrupt_name())
                   : refuse(run, "refused: staging failed on %zu nodes; nothing was changed", bad);
    phase(run, &ops_preflight);
    if ((bad = count_bad(run)) || interrupt_count()) {
        bool busy = run->halting;
        run->halting = false;
        return interrupt_count()
                   ? refuse(run, "interrupted (%s): nothing was stopped, nothing is left reserved",
                            interrupt_name())
                   : refuse(run,
                            "refused: pre-flight failed on %zu of %zu nodes%s; nothing was "
                            "stopped, nothing is left reserved",
                            bad, run->n, busy ? " (held by another rollout)" : "");
    }
    for (size_t i = 0; i < run->n; i++)
        if (run->nodes[i].state == NODE_SKIP && !run->nodes[i].resuming) {
            run->nodes[i].call_t0 = now_ms();
            emit_node(run, &run->nodes[i], "already on the target version");
        }
    if (run_plan_batches(run) < 0)
        return refuse(run, "refused: out of memory; nothing was stopped");
    /* Every check passed, nothing stopped yet: the webhooks' word (not again on a resume). */
    char *why = NULL;
    if (!run->opts->resume_id && gate(run, WEBHOOK_BEFORE_ROLLOUT, &why) < 0) {
        int code = refuse(run, "refused: %s; nothing was stopped, nothing is left reserved", why);
        free(why);
        return code;
    }
    return -1;
}

int rollout_run(const rollout_file_t *rf, const struct rollout_opts *opts)
{
    struct run run = {.rf = rf,
                      .opts = opts,
                      .start_ms = now_ms(),
                      .n = rf->n_nodes,
                      .maintenance = rf->maintenance || opts->jump};
    journal_record_t record;
    memset(&record, 0, sizeof(record));
    record.exit = -1;
    uint8_t *data = NULL;
    char sha[DIGEST_HEX_LEN + 1];
    int code = EXIT_REFUSED;
    char *file = NULL;
    if (opts->resume_id)
        snprintf(run.id, sizeof(run.id), "%s", opts->resume_id);
    else
        make_id(run.id, sizeof(run.id));
    if (!(run.nodes = calloc(rf->n_nodes, sizeof(*run.nodes)))) {
        emit_error(&run, "out of memory");
        return EXIT_REFUSED;
    }
    for (size_t i = 0; i < run.n; i++)
        run.nodes[i] = (node_t){.index = i, .def = &rf->nodes[i]};

    if ((code = run_open(&run, &record, &data, sha, &file)) >= 0 || (code = run_checks(&run)) >= 0)
        goto out;
    run.progress_at = now_ms();
    int r = phase(&run, &ops_upgrade);
    /* Nodes that could not start (the database turn held by a node that needs attention) are
     * released: a rollout that ended holds nothing. */
    if (r == 0 && count(&run, NODE_RESERVED))
        phase(&run, &ops_release);
    code = summarize(&run, r);
out:
    notifier_destroy(&run.notify); /* what is still queued gets a few seconds more */
    rollout_metrics_destroy(&run.metrics);
    run_disconnect(&run);
    live_destroy(&run.live);
    recap_destroy(&run.recap);
    journal_record_clear(&record);
    free(run.halt_reason);
    free(run.nodes);
    free(file);
    free(data); /* after run_disconnect(): libzmq may point into it until then (client.h) */
    return code;
}
