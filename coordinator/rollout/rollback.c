/* rollback: `baton rollback FILE`: after a crash of the agent or of the coordinator, or a
 * failure, undo every node's unfinished rollout (or release its reservation), one node at a
 * time. A committed rollout is never undone here: the agent refuses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "envelope.h"
#include "interrupt.h"
#include "rollout_metrics.h"
#include "engine.h"
#include "run.h"
#include "events.h"
#include "node.h"
#include "steps.h"

/* Asks every node of the file which database it uses (nodes that do not answer count as
 * sharing: the safe guess), so that a rollback never restores a dump into a database other
 * nodes of the file serve from, unless the operator said --restore-shared. */
static void learn_databases(struct run *run)
{
    node_ask_all(run);
    for (size_t i = 0; i < run->n; i++) {
        node_t *nd = &run->nodes[i];
        baton_err_t err = {0};
        const Baton__ServiceInfo *svc = node_asked_service(run, nd, &err);
        nd->database_id = svc && *svc->database_id ? strdup(svc->database_id) : NULL;
        envelope_free(&nd->asked);
        free(nd->why);
        nd->why = NULL;
        nd->state = NODE_NEW;
    }
}

static bool shares_database(const struct run *run, const node_t *nd)
{
    for (size_t i = 0; i < run->n; i++) {
        const node_t *o = &run->nodes[i];
        if (o != nd &&
            (!o->database_id || !nd->database_id || !strcmp(o->database_id, nd->database_id)))
            return true;
    }
    return false;
}

/* Rolls one node back, waiting for the answer; true when it is back where it was. */
static bool rollback_now(struct run *run, node_t *nd, bool undo_committed)
{
    Baton__Step step;
    node_init_step(&step, run, "");
    step.undo_committed = undo_committed;
    step.no_restore = !run->opts->restore_shared && shares_database(run, nd);
    Baton__Envelope req = BATON__ENVELOPE__INIT, *res = NULL;
    req.body_case = BATON__ENVELOPE__BODY_ROLLBACK;
    req.rollback = &step;
    baton_err_t err = {0};
    nd->call_t0 = now_ms();
    int r = client_call(nd->client, run->id, &req, run->rf->step_timeout_ms * 5, on_progress, run,
                        &res, &err);
    node_rollback_result(run, nd, r, res, &err);
    if (nd->restore_needed && nd->restore_why)
        emit_node(run, nd, nd->restore_why);
    return nd->state == NODE_ROLLED_BACK;
}

int rollout_rollback(const rollout_file_t *rf, const struct rollout_opts *opts)
{
    struct run run = {.rf = rf, .opts = opts, .start_ms = now_ms(), .n = rf->n_nodes};
    baton_err_t err = {0};
    int code;
    if (!(run.nodes = calloc(rf->n_nodes, sizeof(*run.nodes)))) {
        emit_error(&run, "out of memory");
        return EXIT_REFUSED;
    }
    for (size_t i = 0; i < run.n; i++)
        run.nodes[i] = (node_t){.index = i, .def = &rf->nodes[i]};
    /* Undoing one rollout (baton abort of a dead one): its journal records how it ended. */
    if (opts->only_rollout) {
        snprintf(run.id, sizeof(run.id), "%s", opts->only_rollout);
        if (journal_open(opts->store, run.id, &run.journal, &err) < 0) {
            code = emit_summary(&run, EXIT_REFUSED, "refused: %s", err.msg);
            goto out;
        }
    }
    if (run_connect(&run, &err) < 0) {
        code = emit_summary(&run, EXIT_REFUSED, "refused: %s", err.msg);
        goto out;
    }
    learn_databases(&run);
    int failed = 0, done = 0, unreachable = 0;
    for (size_t i = 0; i < rf->n_nodes; i++) {
        node_t *nd = &run.nodes[i];
        Baton__Envelope *res = NULL;
        nd->call_t0 = now_ms();
        const Baton__ServiceInfo *svc = node_ask_service(&run, nd, &res, &err);
        if (!svc) {
            unreachable++;
            emit_check(&run, "hello", nd, false, err.msg);
        } else if (svc->running) {
            unreachable++;
            emit_check(&run, "hello", nd, false, "busy: a step is running; wait for it");
        } else if (!node_record_unfinished(svc)) {
            emit_node(&run, nd, "nothing to roll back");
        } else if (opts->only_rollout && strcmp(svc->rollout_id, opts->only_rollout)) {
            char *msg = NULL;
            int n = asprintf(&msg, "nothing to roll back for %s (its record is of rollout %s)",
                             opts->only_rollout, svc->rollout_id);
            emit_node(&run, nd, n > 0 ? msg : "nothing to roll back");
            if (n > 0)
                free(msg);
        } else {
            char *msg = NULL;
            int n = !strcmp(svc->step, "preflight")
                        ? asprintf(&msg, "releasing %s (pre-flight only%s, nothing to undo)",
                                   svc->rollout_id, svc->in_progress ? ", interrupted" : "")
                        : asprintf(&msg, "rolling back %s (%s%s)", svc->rollout_id, svc->step,
                                   svc->in_progress ? ", interrupted" : "");
            emit_node(&run, nd, n > 0 ? msg : "rolling back");
            if (n > 0)
                free(msg);
            /* The rollback names that node's own rollout, whatever run started it. */
            snprintf(run.id, sizeof(run.id), "%s", svc->rollout_id);
            if (rollback_now(&run, nd, false))
                done++;
            else
                failed++;
        }
        envelope_free(&res);
        baton_err_clear(&err);
    }
    if (opts->only_rollout)
        emit(&run, json_pack("{s:s, s:s}", "event", "aborted", "message",
                             "baton abort: its coordinator was gone; the nodes it left "
                             "unfinished were rolled back"));
    if (failed || unreachable)
        code = emit_summary(&run, EXIT_NEEDS_CARE,
                            "rollback: %d rolled back, %d FAILED, %d unreachable", done, failed,
                            unreachable);
    else
        code = emit_summary(&run, EXIT_DONE,
                            "rollback: %d node%s rolled back, the others had nothing to undo", done,
                            done == 1 ? "" : "s");
out:
    run_disconnect(&run);
    free(run.nodes);
    return code;
}

int rollout_undo(const rollout_file_t *rf, const struct rollout_opts *opts, const char *rollout_id,
                 const char *const *newest_first, size_t n_newest)
{
    struct run run = {.rf = rf, .opts = opts, .start_ms = now_ms(), .n = rf->n_nodes};
    baton_err_t err = {0};
    int code;
    size_t *order = calloc(rf->n_nodes ? rf->n_nodes : 1, sizeof(*order));
    bool *listed = calloc(rf->n_nodes ? rf->n_nodes : 1, sizeof(*listed));
    snprintf(run.id, sizeof(run.id), "%s", rollout_id);
    run.metrics = rollout_metrics_new(rf->service);
    if (!(run.nodes = calloc(rf->n_nodes, sizeof(*run.nodes))) || !order || !listed) {
        emit_error(&run, "out of memory");
        free(order);
        free(listed);
        free(run.nodes);
        return EXIT_REFUSED;
    }
    for (size_t i = 0; i < run.n; i++)
        run.nodes[i] = (node_t){.index = i, .def = &rf->nodes[i]};
    /* The nodes it committed, newest first (the node that migrated the schema, usually the
     * canary, last); then every other node, in case it holds something of this rollout. */
    size_t k = 0;
    for (size_t j = 0; j < n_newest; j++)
        for (size_t i = 0; i < run.n; i++)
            if (!listed[i] && !strcmp(rf->nodes[i].name, newest_first[j])) {
                order[k++] = i;
                listed[i] = true;
            }
    for (size_t i = 0; i < run.n; i++)
        if (!listed[i])
            order[k++] = i;
    /* The journal is locked: no coordinator drives this rollout meanwhile. */
    if (journal_open(opts->store, rollout_id, &run.journal, &err) < 0) {
        code = emit_summary(&run, EXIT_REFUSED, "refused: %s%s", err.msg,
                            err.code == -EBUSY ? " (baton abort it first)" : "");
        goto out;
    }
    if (run_connect(&run, &err) < 0) {
        code = emit_summary(&run, EXIT_REFUSED, "refused: %s", err.msg);
        goto out;
    }
    learn_databases(&run);
    int failed = 0, done = 0, blocked = 0;
    for (size_t j = 0; j < run.n; j++) {
        node_t *nd = &run.nodes[order[j]];
        Baton__Envelope *res = NULL;
        baton_err_clear(&err);
        nd->call_t0 = now_ms();
        const Baton__ServiceInfo *svc = node_ask_service(&run, nd, &res, &err);
        char *msg = NULL;
        int n = 0;
        if (!svc) {
            blocked++;
            emit_check(&run, "hello", nd, false, err.msg);
        } else if (svc->running) {
            blocked++;
            emit_check(&run, "hello", nd, false, "busy: a step is running; wait for it");
        } else if (strcmp(svc->rollout_id, rollout_id)) {
            /* A later rollout changed this node: undoing an older one under it would be a
             * guess. Said, and counted. */
            bool ours = listed[order[j]];
            blocked += ours;
            n = asprintf(&msg, "%s (its record is of rollout %s)",
                         ours ? "CANNOT UNDO: a later rollout changed it" : "nothing to undo",
                         *svc->rollout_id ? svc->rollout_id : "none");
            emit_node(&run, nd, n > 0 ? msg : "nothing to undo");
        } else if (!strcmp(svc->step, "rolled_back") && !svc->in_progress) {
            emit_node(&run, nd, "already rolled back");
        } else {
            n = asprintf(&msg, "undoing %s (%s%s)", rollout_id, svc->step,
                         svc->in_progress ? ", interrupted" : "");
            emit_node(&run, nd, n > 0 ? msg : "undoing");
            if (rollback_now(&run, nd, !strcmp(svc->step, "committed") && !svc->in_progress))
                done++;
            else
                failed++;
        }
        if (n > 0)
            free(msg);
        envelope_free(&res);
        if (interrupt_count())
            break;
    }
    emit(&run, json_pack("{s:s, s:s}", "event", "undone", "message",
                         "baton rollback: the nodes this rollout changed were rolled back"));
    if (failed || blocked || interrupt_count())
        code = emit_summary(&run, EXIT_NEEDS_CARE,
                            "rollback of %s: %d nodes back, %d FAILED, %d could not be undone%s",
                            rollout_id, done, failed, blocked,
                            interrupt_count() ? " (interrupted)" : "");
    else
        code = emit_summary(&run, EXIT_DONE,
                            "rollback of %s: %d nodes back on their previous version, newest "
                            "first",
                            rollout_id, done);
out:
    rollout_metrics_destroy(&run.metrics);
    run_disconnect(&run);
    free(run.nodes);
    free(order);
    free(listed);
    return code;
}
