/* analysis: see analysis.h. */
#include "analysis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "interrupt.h"
#include "engine.h"
#include "run.h"
#include "events.h"
#include "node.h"

static void free_checks(analysis_check_t *checks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(checks[i].name);
        free(checks[i].query);
        free(checks[i].success_text);
    }
}

void analysis_free(analysis_t **a)
{
    if (!*a)
        return;
    free_checks((*a)->checks, (*a)->n_checks);
    free_checks((*a)->bake, (*a)->n_bake);
    free((*a)->prometheus);
    free(*a);
    *a = NULL;
}

uint64_t analysis_min_ms(const analysis_check_t *checks, size_t n)
{
    uint64_t most = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t t = checks[i].interval_ms * checks[i].count;
        most = t > most ? t : most;
    }
    return most;
}

static CURL *handle(struct run *run)
{
    if (!run->prom_curl)
        run->prom_curl = curl_easy_init();
    return run->prom_curl;
}

static void tally_start(analysis_tally_t *t, const analysis_check_t *checks, size_t n)
{
    uint64_t now = now_ms();
    free(t->why);
    *t = (analysis_tally_t){.running = true};
    /* The first measurement one interval on: Prometheus has scraped the new version by then. */
    for (size_t i = 0; i < n; i++)
        t->next[i] = now + checks[i].interval_ms;
}

typedef enum verdict { V_PASSING, V_PASSED, V_FAILED, V_HELD } verdict_t;

/* A query in flight ends at Ctrl-C or `baton abort`. */
static bool interrupted(void *data)
{
    (void)data;
    return interrupt_count() > 0;
}

/* One analysis (a node's, or a bake): the measurements due, each emitted as an `analysis` event
 * (node "" for a bake, with its batch). V_FAILED with *why set, V_HELD (an inconclusive one,
 * *why set), V_PASSED once every check took its count, else V_PASSING. */
static verdict_t tally_step(struct run *run, analysis_tally_t *t, const analysis_check_t *checks,
                            size_t n, const prom_vars_t *v, const char *node, char *why,
                            size_t why_size)
{
    const analysis_t *a = run->rf->analysis;
    bool all_done = true;
    for (size_t i = 0; i < n; i++) {
        const analysis_check_t *c = &checks[i];
        if (t->taken[i] >= c->count || now_ms() < t->next[i]) {
            all_done &= t->taken[i] >= c->count;
            continue;
        }
        char value[48] = "", msg[640], cond[64], err[512];
        char *query = NULL;
        double x = 0;
        int r = prom_expand(c->query, v, &query, err, sizeof(err));
        if (r == 0) {
            CURL *h = handle(run);
            r = h ? prom_query(h, a->prometheus, query, a->timeout_ms, interrupted, NULL, &x, err,
                               sizeof(err))
                  : -1;
            if (!h)
                snprintf(err, sizeof(err), "out of memory");
        }
        free(query);
        t->taken[i]++;
        t->next[i] = now_ms() + c->interval_ms;
        run->progress_at = now_ms(); /* a measurement is progress (progress_deadline) */
        all_done &= t->taken[i] >= c->count;
        const char *verdict = "inconclusive";
        prom_condition_str(&c->success, cond, sizeof(cond));
        bool ok = false;
        if (r == 0) {
            snprintf(value, sizeof(value), "%g", x);
            ok = prom_condition_met(&c->success, x);
            t->failed[i] += !ok;
            verdict = ok ? "success" : "failure";
            if (t->failed[i])
                snprintf(msg, sizeof(msg), "%s: %s %s %s (%u of %u, %u failed)", c->name, value,
                         ok ? "is" : "is not", cond, t->taken[i], c->count, t->failed[i]);
            else
                snprintf(msg, sizeof(msg), "%s: %s is %s (%u of %u)", c->name, value, cond,
                         t->taken[i], c->count);
        } else {
            snprintf(msg, sizeof(msg), "%s: %s", c->name, err);
        }
        json_t *e =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "event", "analysis", "node", node,
                      "check", c->name, "verdict", verdict, "value", value, "measurement",
                      (json_int_t)t->taken[i], "of", (json_int_t)c->count, "message", msg);
        if (e && !*node)
            json_object_set_new(e, "batch", json_integer((json_int_t)run->batch));
        emit(run, e);
        if (r != 0) {
            snprintf(why, why_size, "%s: %s", c->name, err);
            t->held = true;
            return V_HELD;
        }
        if (t->failed[i] > c->failure_limit) {
            snprintf(why, why_size,
                     "%s failed: %s is not %s (%u of %u measurements failed; failure_limit %u)",
                     c->name, value, cond, t->failed[i], t->taken[i], c->failure_limit);
            t->running = false;
            return V_FAILED;
        }
    }
    if (!all_done)
        return V_PASSING;
    t->running = false;
    return V_PASSED;
}

/* The rollout pauses on an inconclusive measurement (once, whoever else is held). */
static void pause_on(struct run *run, const char *node, const char *why)
{
    if (run->paused)
        return;
    char *msg = NULL, what[96];
    if (*node)
        snprintf(what, sizeof(what), "%s's analysis", node);
    else
        snprintf(what, sizeof(what), "the bake of batch %zu", run->batch);
    if (asprintf(&msg,
                 "PAUSED in batch %zu of %zu: %s is inconclusive (%s); `baton resume %s` counts "
                 "it as passed and goes on, `baton abort %s` %s",
                 run->batch, run->n_batches, what, why, run->id, run->id,
                 *node ? "rolls it back"
                 : run->rf->strategy.on_failure == ON_FAILURE_ROLLBACK_ALL
                     ? "stops it, the nodes verified and uncommitted (as Ctrl-C does with "
                       "rollback-all)"
                     : "rolls the batch back") < 0)
        msg = NULL;
    emit(run, json_pack("{s:s, s:I, s:I, s:s, s:s}", "event", "paused", "batch",
                        (json_int_t)run->batch, "of", (json_int_t)run->n_batches, "node", node,
                        "message", msg ? msg : "paused: analysis inconclusive"));
    free(msg);
    run->paused = true;
    run->analysis_paused = true;
}

static void start(struct run *run, node_t *nd, const char *when)
{
    const analysis_t *a = run->rf->analysis;
    tally_start(&nd->an, a->checks, a->n_checks);
    char msg[200];
    snprintf(msg, sizeof(msg), "analysis: %zu check%s against Prometheus, about %llu s, %s",
             a->n_checks, a->n_checks == 1 ? "" : "s",
             (unsigned long long)(analysis_min_ms(a->checks, a->n_checks) / 1000), when);
    emit_node(run, nd, msg);
}

void analysis_watch(struct run *run, node_t *nd)
{
    if (run->rf->analysis && run->rf->analysis->n_checks)
        start(run, nd, "from its verify on (its stability window)");
}

void analysis_begin(struct run *run, node_t *nd, const engine_ops_t *ops)
{
    const analysis_t *a = run->rf->analysis;
    if (!a || !a->n_checks) {
        node_verified(run, nd, ops);
        return;
    }
    nd->state = NODE_UPGRADING;
    start(run, nd, "again: it was verified by an earlier run");
}

static void passed(struct run *run, node_t *nd, const engine_ops_t *ops, const char *how)
{
    nd->an.running = nd->an.held = false;
    emit_node(run, nd, how);
    node_verified(run, nd, ops);
}

/* A node's analysis decided. With its verify still in flight the verdict waits for its end
 * (analysis_verified): the agent's step is not cut short. */
static void decided(struct run *run, node_t *nd, bool ok, const char *why, const engine_ops_t *ops)
{
    nd->an.running = nd->an.held = false;
    if (nd->call != CALL_NONE) {
        nd->an.outcome = ok ? 1 : -1;
        free(nd->an.why);
        nd->an.why = why ? strdup(why) : NULL;
        return;
    }
    if (ok)
        passed(run, nd, ops, "analysis passed");
    else
        node_failed(run, nd, why ? why : "analysis failed", ops);
}

void analysis_verified(struct run *run, node_t *nd, const engine_ops_t *ops)
{
    int outcome = nd->an.outcome;
    char *why = nd->an.why;
    nd->an.outcome = 0;
    nd->an.why = NULL;
    if (outcome > 0)
        passed(run, nd, ops, "analysis passed");
    else if (outcome < 0)
        node_failed(run, nd, why ? why : "analysis failed", ops);
    else if (!nd->an.running)
        analysis_begin(run, nd, ops); /* no checks: node_verified() */
    /* else measuring on, or held: analysis_schedule() decides */
    free(why);
}

/* Whether any analysis (a node's, or the bake) still holds the rollout's pause. */
static bool any_held(const struct run *run)
{
    for (size_t k = 0; k < run->n; k++)
        if (run->nodes[k].an.running && run->nodes[k].an.held)
            return true;
    return run->bake.running && run->bake.held;
}

void analysis_drop(struct run *run, node_t *nd)
{
    bool was_held = nd->an.held;
    nd->an.running = nd->an.held = false;
    nd->an.outcome = 0;
    free(nd->an.why);
    nd->an.why = NULL;
    if (was_held && run->analysis_paused && !any_held(run)) {
        run->paused = run->analysis_paused = false;
        if (interrupt_count())
            return; /* Ctrl-C, `baton abort`: the halt says it */
        char msg[160];
        snprintf(msg, sizeof(msg), "the pause ended: %s, whose analysis held it, is rolled back",
                 nd->def->name);
        emit(run, json_pack("{s:s, s:I, s:s}", "event", "continued", "batch",
                            (json_int_t)run->batch, "message", msg));
    }
}

bool analysis_running(const struct run *run)
{
    for (size_t k = 0; k < run->n; k++)
        if (run->nodes[k].an.running)
            return true;
    return false;
}

void analysis_schedule(struct run *run, const engine_ops_t *ops)
{
    const analysis_t *a = run->rf->analysis;
    if (!a)
        return;
    for (size_t k = 0; k < run->n; k++) {
        node_t *nd = &run->nodes[k];
        if (!nd->an.running)
            continue;
        /* Ctrl-C, `baton abort`, rollback-all undoing, a journal that failed: the node's
         * analysis did not pass; it is rolled back as after a step (with its verify in flight,
         * by the step's end, node.c). */
        const char *stop = interrupt_count()      ? interrupt_name()
                           : run->undo_in_flight  ? "rollback-all"
                           : run->journal_failed  ? "the journal could not be written"
                           : run->deadline_missed ? "progress_deadline passed"
                                                  : NULL;
        if (stop && nd->call != CALL_NONE)
            continue;
        if (stop) {
            char why[160];
            snprintf(why, sizeof(why), "%s during its analysis", stop);
            node_set_why(nd, why);
            node_rollback(run, nd, false, ops); /* ends its analysis, and a pause it held */
            continue;
        }
        /* Held, or the rollout paused (by another's inconclusive measurement: the same
         * Prometheus, most likely down): nothing is asked until `baton resume`. */
        if (nd->an.held || run->paused)
            continue;
        char why[1024];
        char host[256];
        prom_endpoint_host(nd->def->endpoint, host, sizeof(host));
        prom_vars_t v = {nd->def->name, host, run->rf->version, nd->from_version ?: "", NULL,
                         NULL,          NULL};
        switch (
            tally_step(run, &nd->an, a->checks, a->n_checks, &v, nd->def->name, why, sizeof(why))) {
        case V_PASSING:
            break;
        case V_HELD:
            pause_on(run, nd->def->name, why);
            break;
        case V_PASSED:
            decided(run, nd, true, NULL, ops);
            break;
        case V_FAILED: {
            char *fail = NULL;
            if (asprintf(&fail, "analysis: %s", why) < 0)
                fail = NULL;
            decided(run, nd, false, fail ? fail : "analysis failed", ops);
            free(fail);
            break;
        }
        }
    }
}

bool analysis_bakes(const struct run *run, size_t batch)
{
    const analysis_t *a = run->rf->analysis;
    return a && a->n_bake &&
           (batch < run->n_batches || run->rf->strategy.on_failure == ON_FAILURE_ROLLBACK_ALL);
}

int analysis_batch_words(const struct run *run, size_t batch, int state, char **ret_nodes,
                         char **ret_addrs)
{
    char *n = NULL, *ad = NULL;
    size_t nl = 0, al = 0;
    FILE *fn = open_memstream(&n, &nl), *fa = open_memstream(&ad, &al);
    bool first = true;
    for (size_t k = 0; fn && fa && k < run->n; k++) {
        const node_t *nd = &run->nodes[k];
        if (nd->batch != batch || (int)nd->state != state)
            continue;
        char host[256];
        prom_endpoint_host(nd->def->endpoint, host, sizeof(host));
        fputs(first ? "" : "|", fn);
        for (const char *p = nd->def->name; *p; p++) /* a name's only regex character: "." */
            fprintf(fn, "%s%c", *p == '.' ? "\\\\" : "", *p);
        fputs(first ? "" : "|", fa);
        for (const char *p = host; *p; p++)
            fprintf(fa, "%s%c", *p == '.' ? "\\\\" : "", *p);
        first = false;
    }
    if (fn)
        fclose(fn);
    if (fa)
        fclose(fa);
    if (!fn || !fa) {
        free(n);
        free(ad);
        return -1;
    }
    *ret_nodes = n;
    *ret_addrs = ad;
    return 0;
}

bake_state_t analysis_bake(struct run *run, char **ret_why)
{
    const analysis_t *a = run->rf->analysis;
    *ret_why = NULL;
    if (!analysis_bakes(run, run->batch) || run->baked >= run->batch)
        return BAKE_DONE;
    bool any = false;
    for (size_t k = 0; k < run->n && !any; k++)
        any = run->nodes[k].batch == run->batch && run->nodes[k].state == NODE_VERIFIED;
    if (!any) { /* no node of it passed: nothing to bake */
        run->baked = run->batch;
        return BAKE_DONE;
    }
    if (!run->bake.running) {
        tally_start(&run->bake, a->bake, a->n_bake);
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "batch %zu of %zu: its bake, %zu check%s against Prometheus, about %llu s, "
                 "before %s",
                 run->batch, run->n_batches, a->n_bake, a->n_bake == 1 ? "" : "s",
                 (unsigned long long)(analysis_min_ms(a->bake, a->n_bake) / 1000),
                 run->batch < run->n_batches ? "the next batch" : "the commit");
        emit(run,
             json_pack("{s:s, s:I, s:I, s:s}", "event", "bake", "batch", (json_int_t)run->batch,
                       "of", (json_int_t)run->n_batches, "message", msg));
    }
    if (run->bake.held)
        return BAKE_WAIT;
    char *nodes = NULL, *addrs = NULL, batch[24], why[1024];
    if (analysis_batch_words(run, run->batch, NODE_VERIFIED, &nodes, &addrs) < 0) {
        *ret_why = strdup("analysis: out of memory");
        return BAKE_FAILED;
    }
    snprintf(batch, sizeof(batch), "%zu", run->batch);
    prom_vars_t v = {NULL, NULL, run->rf->version, NULL, nodes, addrs, batch};
    verdict_t r = tally_step(run, &run->bake, a->bake, a->n_bake, &v, "", why, sizeof(why));
    free(nodes);
    free(addrs);
    switch (r) {
    case V_PASSING:
        return BAKE_WAIT;
    case V_HELD:
        pause_on(run, "", why);
        return BAKE_WAIT;
    case V_PASSED:
        run->baked = run->batch;
        return BAKE_DONE;
    case V_FAILED:
        break;
    }
    if (asprintf(ret_why, "analysis: the bake of batch %zu: %s", run->batch, why) < 0)
        *ret_why = NULL;
    return BAKE_FAILED;
}

void analysis_continue(struct run *run, const engine_ops_t *ops)
{
    run->analysis_paused = false;
    for (size_t k = 0; k < run->n; k++) {
        node_t *nd = &run->nodes[k];
        if (!nd->an.running || !nd->an.held)
            continue;
        if (nd->call != CALL_NONE) /* held during its verify: it goes on once that ended */
            decided(run, nd, true, NULL, ops);
        else
            passed(run, nd, ops, "analysis counted as passed by baton resume");
    }
    if (run->bake.running && run->bake.held) {
        run->bake.running = run->bake.held = false;
        run->baked = run->batch; /* counted as passed */
    }
}

json_t *analysis_try(CURL *h, const analysis_t *a, bool bake, const prom_vars_t *vars,
                     size_t *ret_refused)
{
    json_t *out = json_array();
    const analysis_check_t *checks = bake ? a->bake : a->checks;
    size_t n = bake ? a->n_bake : a->n_checks;
    *ret_refused = 0;
    for (size_t i = 0; out && i < n; i++) {
        const analysis_check_t *c = &checks[i];
        char why[512], value[48] = "", cond[64], msg[640];
        char *q = NULL;
        double x = 0;
        int r = prom_expand(c->query, vars, &q, why, sizeof(why));
        if (r == 0 && !h)
            r = -1, snprintf(why, sizeof(why), "out of memory");
        if (r == 0)
            r = prom_query(h, a->prometheus, q, a->timeout_ms, interrupted, NULL, &x, why,
                           sizeof(why));
        prom_condition_str(&c->success, cond, sizeof(cond));
        if (r == 0) {
            snprintf(value, sizeof(value), "%g", x);
            snprintf(msg, sizeof(msg), "%s now (%s %s)", value,
                     prom_condition_met(&c->success, x) ? "passes" : "would fail", cond);
        } else if (r == PROM_NO_NUMBER) {
            snprintf(msg, sizeof(msg), "no number now (%s): inconclusive if it stays so", why);
        } else {
            snprintf(msg, sizeof(msg), "%s", why);
        }
        *ret_refused += r != 0 && r != PROM_NO_NUMBER;
        json_array_append_new(out, json_pack("{s:s, s:s, s:b, s:s, s:s}", "check", c->name, "query",
                                             q ? q : c->query, "ok", r == 0 || r == PROM_NO_NUMBER,
                                             "value", value, "message", msg));
        free(q);
    }
    if (!out)
        *ret_refused = n ? n : 1;
    return out;
}
