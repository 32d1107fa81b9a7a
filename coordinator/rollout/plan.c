/* plan: `baton plan FILE`, the dry run. Every node is asked at once (Hello, then the agent's
 * read-only pre-flight, Plan) what a rollout would find: installed version, unit state,
 * database size and migrations, room for the dump, whether the artifact is staged, and every
 * reason it would refuse, not just the first; what the version rules say (an upgrade that must
 * go one minor at a time, a downgrade and what it takes, a refusal); the release's notes. Then
 * the batches and the databases. Nothing is reserved, journaled or changed anywhere; with
 * `rehearse: true` the artifact is staged (the service does not see it) so that the new
 * binary's migration can be timed on a scratch copy of the database: the expected downtime. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "digest.h"
#include "envelope.h"
#include "freeze.h"
#include "interrupt.h"
#include "engine.h"
#include "run.h"
#include "events.h"
#include "node.h"
#include "verdict.h"
#include "term.h"
#include "steps.h"

/* Per node, what plan learnt: kept beside the run's nodes. */
struct plan_node {
    json_t *problems; /* strings */
    json_t *info;     /* the plan_node event being built */
    bool ask;         /* its Plan is to be sent, once every Hello answered */
    bool stage;       /* the artifact goes first: its agent checks the release (`check`) */
};

static struct plan_node *pn; /* one per node, for this invocation */

static void problem(size_t i, const char *msg)
{
    json_array_append_new(pn[i].problems, json_string(msg));
}

static const engine_ops_t *plan_ops(void);

static void send_plan(struct run *run, node_t *nd)
{
    Baton__Step step;
    node_init_preflight(&step, run, nd);
    Baton__Envelope req = BATON__ENVELOPE__INIT;
    req.body_case = BATON__ENVELOPE__BODY_PLAN;
    req.plan = &step;
    node_send(run, nd, CALL_PREFLIGHT, &req, run->rf->step_timeout_ms, plan_ops());
}

static void hello_done(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err)
{
    size_t i = nd->index;
    const Baton__ServiceInfo *svc = NULL;
    char *msg = NULL, *also = NULL, *record = NULL;
    /* The rollout's verdict (verdict.h), and what the rollout's pre-flight would refuse of
     * another rollout's record, said now: every reason, the service's state first. */
    node_verdict(run, nd, r, env, err, &svc, &msg, &also);
    if (svc && !svc->running)
        record = node_record_refusal(run, svc);
    const char *reasons[] = {record, msg, also};
    for (size_t k = 0; k < sizeof(reasons) / sizeof(*reasons); k++)
        if (reasons[k])
            problem(i, reasons[k]);
    free(record);
    free(msg);
    free(also);
    msg = NULL;
    if (svc) {
        json_object_set_new(pn[i].info, "version", json_string(svc->version));
        json_object_set_new(pn[i].info, "active_state", json_string(svc->active_state));
        json_object_set_new(pn[i].info, "downgrade", json_boolean(nd->downgrade));
    }
    if (svc && nd->downgrade && run->opts->restore_dump &&
        asprintf(&msg,
                 "restoring %s loses every change made to the database since that dump was taken",
                 run->opts->restore_dump) > 0)
        json_object_set_new(pn[i].info, "warning", json_string(msg));
    free(msg);
    /* Asked what a pre-flight would find (plan_schedule), also where the Hello already
     * refuses: all reasons. (svc points into env: read before it is freed.) */
    pn[i].ask = nd->state != NODE_SKIP && svc;
    pn[i].stage = svc && svc->checks_release;
    envelope_free(&env);
}

static void plan_done(node_t *nd, int r, Baton__Envelope *env, baton_err_t *err)
{
    size_t i = nd->index;
    json_t *o = pn[i].info;
    if (r == 0 && env->result->status != BATON__STATUS__STATUS_OK)
        r = baton_err_set(err, -EIO, "%s", env->result->message);
    const Baton__PlanInfo *p = r == 0 ? env->result->plan : NULL;
    if (r == 0 && !p)
        r = baton_err_set(err, -EPROTO, "the agent answered Plan without a plan");
    if (r < 0) {
        problem(i, err->msg);
    } else {
        json_t *migrations = json_array();
        for (size_t k = 0; k < p->n_migrations; k++)
            json_array_append_new(migrations, json_string(p->migrations[k]));
        json_object_set_new(o, "active_state", json_string(p->active_state));
        json_object_set_new(o, "version", json_string(p->version));
        json_object_set_new(o, "binary_sha256", json_string(p->binary_sha256));
        json_object_set_new(o, "database_bytes", json_integer((json_int_t)p->database_bytes));
        json_object_set_new(o, "dump_room_bytes", json_integer((json_int_t)p->dump_room_bytes));
        json_object_set_new(o, "backup_free_bytes", json_integer((json_int_t)p->backup_free_bytes));
        json_object_set_new(o, "backup_dir", json_string(p->backup_dir));
        json_object_set_new(o, "migrations", migrations);
        json_object_set_new(o, "staged", json_boolean(p->staged));
        json_object_set_new(o, "database", json_string(p->database_id));
        json_object_set_new(o, "highest_version", json_string(p->highest_version));
        json_t *history = json_array();
        for (size_t k = 0; k < p->n_history; k++)
            json_array_append_new(history, json_string(p->history[k]));
        json_object_set_new(o, "history", history);
        if (p->rehearsed)
            json_object_set_new(o, "rehearse_ms", json_integer((json_int_t)p->rehearse_ms));
        json_object_set_new(o, "lock_holder", json_string(p->lock_holder));
        free(nd->database_id);
        nd->database_id = *p->database_id ? strdup(p->database_id) : NULL;
        for (size_t k = 0; k < p->n_problems; k++)
            problem(i, p->problems[k]);
    }
    envelope_free(&env);
}

static bool plan_schedule(struct run *run)
{
    bool waiting = node_stage_pump(run, plan_ops()); /* a pull asked again when due */
    node_hello_all(run, plan_ops());
    /* Once every node answered Hello (which databases they use is known then): each node's
     * Plan; a node that rehearses the migration for its database gets the artifact first
     * (when its agent can take it: one that cannot pull was told so by node_verdict). */
    for (size_t i = 0; i < run->n; i++)
        if (run->nodes[i].state == NODE_NEW || run->nodes[i].call == CALL_HELLO)
            return waiting;
    for (size_t i = 0;
         i < run->n && engine_busy(run) < run->rf->strategy.max_in_flight && !interrupt_count();
         i++) {
        node_t *nd = &run->nodes[i];
        if (!pn[i].ask)
            continue;
        pn[i].ask = false;
        if ((node_rehearses(run, nd) || pn[i].stage) && (!run->url || nd->pulls)) {
            nd->call_t0 = now_ms();
            node_stage_send(run, nd, plan_ops());
        } else {
            send_plan(run, nd);
        }
    }
    return waiting;
}

static void plan_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err)
{
    if (nd->ended == CALL_HELLO) {
        hello_done(run, nd, r, env, err);
    } else if (nd->ended == CALL_STAGE) {
        node_stage_result(run, nd, r, env, err, plan_ops());
        if (nd->call == CALL_NONE && nd->staged)
            send_plan(run, nd);
        else if (nd->call == CALL_NONE && !nd->stage_waiting)
            problem(nd->index, "the artifact could not be staged for the rehearsal or the check");
    } else {
        plan_done(nd, r, env, err);
    }
}

static const engine_ops_t ops = {plan_schedule, plan_result};
static const engine_ops_t *plan_ops(void)
{
    return &ops;
}

/* The bake's queries, asked once as the first batch's would read ({{nodes}} its nodes, planned
 * by run_plan_batches): each shown; the number Prometheus did not take. */
static size_t plan_bake(struct run *run)
{
    const analysis_t *a = run->rf->analysis;
    char *nodes = NULL, *addrs = NULL;
    size_t refused = 0;
    bool words = analysis_batch_words(run, 1, NODE_RESERVED, &nodes, &addrs) == 0;
    prom_vars_t vars = {NULL, NULL, run->rf->version, NULL, nodes ?: "", addrs ?: "", "1"};
    CURL *prom = words ? curl_easy_init() : NULL;
    json_t *tried = prom ? analysis_try(prom, a, true, &vars, &refused) : NULL;
    if (prom)
        curl_easy_cleanup(prom);
    for (size_t k = 0; k < json_array_size(tried); k++) {
        json_t *t = json_array_get(tried, k);
        char *msg = NULL;
        if (asprintf(&msg, "analysis bake %s (as batch 1's: %s): %s",
                     json_string_value(json_object_get(t, "check")), nodes,
                     json_string_value(json_object_get(t, "message"))) < 0)
            msg = NULL;
        if (!json_is_true(json_object_get(t, "ok")))
            emit_error(run, msg ? msg : "out of memory");
        else if (!run->opts->json)
            printf("  %s\n", msg ? msg : "out of memory");
        free(msg);
    }
    if (!tried)
        refused = 1, emit_error(run, "analysis bake: out of memory");
    json_decref(tried);
    free(nodes);
    free(addrs);
    return refused;
}

/* The analysis' queries, as this node's would read, asked of Prometheus once (every node's
 * through one handle, *prom); what Prometheus does not take is a problem. */
static void plan_node_analysis(struct run *run, node_t *nd, CURL **prom)
{
    size_t i = nd->index;
    const rollout_file_t *rf = run->rf;
    json_t *o = pn[i].info;
    char host[256];
    prom_endpoint_host(nd->def->endpoint, host, sizeof(host));
    const char *v = json_string_value(json_object_get(o, "version"));
    prom_vars_t vars = {nd->def->name, host, rf->version, v ? v : "", NULL, NULL, NULL};
    size_t refused = 0, said = 0;
    if (!*prom && !(*prom = curl_easy_init()))
        problem(i, "analysis: out of memory");
    json_t *tried = *prom ? analysis_try(*prom, rf->analysis, false, &vars, &refused) : NULL;
    for (size_t k = 0; k < json_array_size(tried); k++) {
        json_t *t = json_array_get(tried, k);
        if (json_is_true(json_object_get(t, "ok")))
            continue;
        char *msg = NULL;
        if (asprintf(&msg, "analysis %s: %s", json_string_value(json_object_get(t, "check")),
                     json_string_value(json_object_get(t, "message"))) > 0)
            problem(i, msg);
        free(msg);
        said++;
    }
    if (refused > said) /* a check with no line to say it (out of memory) */
        problem(i, "analysis: Prometheus did not take every query");
    if (tried)
        json_object_set_new(o, "analysis", tried);
}

/* A node's rows of the text plan: what it runs, what it would take, every reason it refuses. */
static void print_node(const struct run *run, const node_t *nd, bool upgrade)
{
    size_t i = nd->index;
    const rollout_file_t *rf = run->rf;
    json_t *o = pn[i].info;
    size_t n_problems = json_array_size(pn[i].problems);
    const char *v = json_string_value(json_object_get(o, "version"));
    const char *st = json_string_value(json_object_get(o, "active_state"));
    printf("  %-10s %-8s -> %-8s %-10s ", nd->def->name, v && *v ? v : "?", rf->version,
           st && *st ? st : "?");
    if (!upgrade)
        printf("already on the target version: nothing to do\n");
    else if (json_object_get(o, "database_bytes")) {
        /* The room asked of the backup folder is the database's size, a fifth more and 16 MiB
         * (agent/steps/step_preflight.c, dump_room): said, so that "~24 MiB" for a 7 MiB database
         * is no riddle. */
        size_t n_mig = json_array_size(json_object_get(o, "migrations"));
        printf("database %lld KiB, %zu migration%s applied; the dump may need ~%lld MiB "
               "(its size + 20%% + 16 MiB), %lld MiB free in %s; artifact %s\n",
               json_integer_value(json_object_get(o, "database_bytes")) >> 10, n_mig,
               n_mig == 1 ? "" : "s",
               json_integer_value(json_object_get(o, "dump_room_bytes")) >> 20,
               json_integer_value(json_object_get(o, "backup_free_bytes")) >> 20,
               json_string_value(json_object_get(o, "backup_dir")),
               json_is_true(json_object_get(o, "staged")) ? "staged already"
               : run->url                                 ? "to be pulled"
                                                          : "to be sent");
    } else
        printf("\n");
    for (size_t k = 0; k < n_problems; k++)
        printf("  %-10s %sREFUSED%s: %s\n", "", term_paint(PAINT_FAIL), term_paint(PAINT_OFF),
               json_string_value(json_array_get(pn[i].problems, k)));
    if (json_object_get(o, "rehearse_ms"))
        printf("  %-10s rehearsal: the migration took %lld ms on a copy of the database "
               "(expected downtime: that, plus stop and start)\n",
               "", json_integer_value(json_object_get(o, "rehearse_ms")));
    json_t *tried = json_object_get(o, "analysis");
    for (size_t k = 0; k < json_array_size(tried); k++) {
        json_t *t = json_array_get(tried, k);
        if (json_is_true(json_object_get(t, "ok")))
            printf("  %-10s analysis %s: %s\n", "", json_string_value(json_object_get(t, "check")),
                   json_string_value(json_object_get(t, "message")));
    }
    if (json_object_get(o, "warning"))
        printf("  %-10s WARNING: %s\n", "", json_string_value(json_object_get(o, "warning")));
    if (upgrade && !n_problems)
        printf("  %-10s would: stop, dump (pg_dump), swap, migrate %s, start, verify, commit\n", "",
               !nd->downgrade            ? "up"
               : run->opts->restore_dump ? "by restoring the dump (the downgrade)"
                                         : "down (the downgrade)");
    fflush(stdout);
}

/* The artifact read (*ret_data; staged to nodes that rehearse or check the release), its
 * digest checked, the freeze read (*ret_frozen: the nodes are still asked, so that the plan
 * shows what unfreezing would bring), the agents connected, the header said. */
static int plan_open(struct run *run, uint8_t **ret_data, char *sha, char **ret_frozen)
{
    const rollout_file_t *rf = run->rf;
    const struct rollout_opts *opts = run->opts;
    baton_err_t err = {0};
    /* Read whole, as a rollout does: a node that rehearses or checks the release gets it
     * staged first (which nodes check is known only once they answer Hello). */
    if (run_open_artifact(run, ret_data, sha, &err) < 0) {
        emit_error(run, err.msg);
        return -1;
    }
    if (rf->sha256 && strcmp(rf->sha256, sha)) {
        char *msg = NULL;
        if (asprintf(&msg, "artifact %s has sha256 %s but the rollout file says %s", rf->artifact,
                     sha, rf->sha256) > 0)
            emit_error(run, msg);
        free(msg);
        return -1;
    }
    /* Frozen: the nodes are still asked, so that the plan shows what unfreezing would bring. */
    if (freeze_refusal(opts->store, rf->service, ret_frozen) != 0 && !*ret_frozen) {
        emit_error(run, "out of memory");
        return -1;
    }
    if (run_connect(run, &err) < 0) {
        emit_error(run, err.msg);
        return -1;
    }
    if (!opts->json) {
        if (run->url)
            printf("baton plan: %s -> %s on %zu nodes (artifact %s, pulled by each agent, sha256 "
                   "%.16s…)\n",
                   rf->service, rf->version, run->n, rf->artifact, sha);
        else
            printf("baton plan: %s -> %s on %zu nodes (artifact %s, %llu bytes, sha256 %.16s…)\n",
                   rf->service, rf->version, run->n, rf->artifact, (unsigned long long)run->size,
                   sha);
        if (rf->release)
            printf("  release %s (asked: %s, from %s)%s%s%s\n", rf->release->version,
                   rf->version_asked, rf->catalog->path,
                   rf->release->maintenance ? "; requires maintenance" : "",
                   rf->release->notes ? ": " : "", rf->release->notes ? rf->release->notes : "");
    }
    return 0;
}

int rollout_plan(const rollout_file_t *rf, const struct rollout_opts *opts)
{
    struct run run = {.rf = rf,
                      .opts = opts,
                      .start_ms = now_ms(),
                      .n = rf->n_nodes,
                      .maintenance = rf->maintenance || opts->jump};
    char sha[DIGEST_HEX_LEN + 1] = "";
    int code = EXIT_REFUSED;
    uint8_t *data = NULL;
    char *frozen = NULL; /* why the service may not roll (baton freeze), as a rollout says it */
    CURL *prom = NULL;   /* the analysis' queries, every node's through one handle */
    snprintf(run.id, sizeof(run.id), "plan");
    run.nodes = calloc(rf->n_nodes, sizeof(*run.nodes));
    pn = calloc(rf->n_nodes, sizeof(*pn));
    if (!run.nodes || !pn) {
        emit_error(&run, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < run.n; i++) {
        run.nodes[i] = (node_t){.index = i, .def = &rf->nodes[i]};
        pn[i].problems = json_array();
        pn[i].info = json_pack("{s:s, s:s}", "event", "plan_node", "node", rf->nodes[i].name);
    }
    if (plan_open(&run, &data, sha, &frozen) < 0)
        goto out;
    engine_run(&run, &ops);
    if (!opts->json)
        printf("%s  %-10s %-8s    %-8s %-10s %s%s\n", term_paint(PAINT_BOLD), "NODE", "NOW",
               "TARGET", "UNIT", "WHAT IT WOULD TAKE", term_paint(PAINT_OFF));

    size_t refusing = 0, todo = 0;
    size_t n_steps = 0;
    const step_def_t *const *seq = step_upgrade_sequence(&n_steps);
    for (size_t i = 0; i < run.n; i++) {
        node_t *nd = &run.nodes[i];
        json_t *o = pn[i].info;
        size_t n_problems = 0;
        bool upgrade = nd->state != NODE_SKIP;
        if (rf->analysis && upgrade && !json_array_size(pn[i].problems))
            plan_node_analysis(&run, nd, &prom);
        n_problems = json_array_size(pn[i].problems);
        refusing += n_problems > 0;
        json_object_set_new(o, "target", json_string(rf->version));
        json_object_set(o, "problems", pn[i].problems);
        json_object_set_new(o, "ok", json_boolean(n_problems == 0));
        json_object_set_new(o, "upgrade", json_boolean(upgrade));
        json_t *steps = json_array();
        for (size_t s = 0; upgrade && s < n_steps; s++)
            json_array_append_new(steps, json_string(seq[s]->name));
        json_object_set_new(o, "steps", steps);
        if (upgrade && !n_problems) {
            nd->state = NODE_RESERVED; /* for the batch arithmetic only: nothing is reserved */
            todo++;
        }
        if (!opts->json)
            print_node(&run, nd, upgrade);
        else
            emit(&run, json_incref(o));
    }
    size_t bake_refused = 0;
    if (!refusing && todo) {
        run_plan_batches(&run);
        if (analysis_bakes(&run, 1)) /* a bake after batch 1 (analysis.h) */
            bake_refused = plan_bake(&run);
        for (size_t i = 0; i < run.n; i++)
            if (run.nodes[i].state == NODE_RESERVED)
                run.nodes[i].state = NODE_NEEDS;
    }
    if (frozen)
        code = emit_summary(&run, EXIT_REFUSED, "REFUSED: %s; nothing was changed", frozen);
    else if (bake_refused)
        code = emit_summary(&run, EXIT_REFUSED,
                            "REFUSED: Prometheus did not take %zu of the bake's queries (said "
                            "above); nothing was changed",
                            bake_refused);
    else if (refusing)
        code = emit_summary(&run, EXIT_REFUSED,
                            "REFUSED: %zu of %zu nodes would refuse the rollout (every reason is "
                            "listed above); nothing was changed",
                            refusing, run.n);
    else
        code = emit_summary(&run, EXIT_DONE,
                            "the rollout could run: %zu of %zu nodes to upgrade; nothing was "
                            "changed",
                            todo, run.n);
out:
    if (prom)
        curl_easy_cleanup(prom);
    run_disconnect(&run);
    for (size_t i = 0; pn && i < run.n; i++) {
        json_decref(pn[i].problems);
        json_decref(pn[i].info);
    }
    free(pn);
    pn = NULL;
    free(frozen);
    free(run.nodes);
    free(data); /* after run_disconnect(): libzmq may point into it until then (client.h) */
    return code;
}
