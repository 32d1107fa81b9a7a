/* analysis: see analysis.h. */
#include "analysis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "interrupt.h"
#include "run.h"

void analysis_free(analysis_t **a)
{
    if (!*a)
        return;
    for (size_t i = 0; i < (*a)->n_checks; i++) {
        free((*a)->checks[i].name);
        free((*a)->checks[i].query);
        free((*a)->checks[i].success_text);
    }
    free((*a)->prometheus);
    free(*a);
    *a = NULL;
}

uint64_t analysis_min_ms(const analysis_t *a)
{
    uint64_t most = 0;
    for (size_t i = 0; a && i < a->n_checks; i++) {
        uint64_t t = a->checks[i].interval_ms * a->checks[i].count;
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

static void vars_of(const struct run *run, const node_t *nd, char *host, size_t host_size,
                    prom_vars_t *v)
{
    prom_endpoint_host(nd->def->endpoint, host, host_size);
    *v = (prom_vars_t){nd->def->name, host, run->rf->version, nd->from_version ?: ""};
}

void analysis_begin(struct run *run, node_t *nd)
{
    const analysis_t *a = run->rf->analysis;
    uint64_t now = now_ms();
    nd->state = NODE_UPGRADING;
    nd->analysing = true;
    nd->analysis_held = false;
    for (size_t i = 0; i < a->n_checks; i++) {
        nd->an_next[i] = now + a->checks[i].interval_ms;
        nd->an_taken[i] = nd->an_failed[i] = 0;
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "analysis: %zu check%s against Prometheus, about %llu s",
             a->n_checks, a->n_checks == 1 ? "" : "s",
             (unsigned long long)(analysis_min_ms(a) / 1000));
    emit_node(run, nd, msg);
}

static void emit_measurement(struct run *run, const node_t *nd, const analysis_check_t *c,
                             const char *verdict, const char *value, const char *msg)
{
    emit(run, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "event", "analysis", "node",
                        nd->def->name, "check", c->name, "verdict", verdict, "value", value,
                        "measurement", (json_int_t)nd->an_taken[c - run->rf->analysis->checks],
                        "of", (json_int_t)c->count, "message", msg));
}

/* The rollout pauses on a node's inconclusive measurement (once for all such nodes). */
static void hold(struct run *run, node_t *nd, const analysis_check_t *c, const char *why)
{
    nd->analysis_held = true;
    if (run->paused)
        return;
    char *msg = NULL;
    if (asprintf(&msg,
                 "PAUSED in batch %zu of %zu: %s's analysis is inconclusive (%s: %s); `baton "
                 "resume %s` counts it as passed and goes on, `baton abort %s` rolls it back",
                 run->batch, run->n_batches, nd->def->name, c->name, why, run->id, run->id) < 0)
        msg = NULL;
    emit(run, json_pack("{s:s, s:I, s:I, s:s, s:s}", "event", "paused", "batch",
                        (json_int_t)run->batch, "of", (json_int_t)run->n_batches, "node",
                        nd->def->name, "message", msg ? msg : "paused: analysis inconclusive"));
    free(msg);
    run->paused = true;
    run->analysis_paused = true;
}

static void passed(struct run *run, node_t *nd, const engine_ops_t *ops, const char *how)
{
    nd->analysing = nd->analysis_held = false;
    emit_node(run, nd, how);
    node_verified(run, nd, ops);
}

/* One measurement of check i; true when the node's analysis ended (failed: rolled back). */
static bool measure(struct run *run, node_t *nd, size_t i, const engine_ops_t *ops)
{
    const analysis_t *a = run->rf->analysis;
    const analysis_check_t *c = &a->checks[i];
    char host[256], why[512], value[48] = "", msg[640];
    prom_vars_t v;
    vars_of(run, nd, host, sizeof(host), &v);
    char *query = NULL;
    double x = 0;
    int r = prom_expand(c->query, &v, &query, why, sizeof(why));
    if (r == 0) {
        CURL *h = handle(run);
        r = h ? prom_query(h, a->prometheus, query, a->timeout_ms, &x, why, sizeof(why)) : -1;
        if (!h)
            snprintf(why, sizeof(why), "out of memory");
    }
    free(query);
    nd->an_taken[i]++;
    nd->an_next[i] = now_ms() + c->interval_ms;
    if (r < 0) {
        emit_measurement(run, nd, c, "inconclusive", "", why);
        hold(run, nd, c, why);
        return false;
    }
    char cond[64];
    prom_condition_str(&c->success, cond, sizeof(cond));
    snprintf(value, sizeof(value), "%g", x);
    bool ok = prom_condition_met(&c->success, x);
    nd->an_failed[i] += !ok;
    if (nd->an_failed[i])
        snprintf(msg, sizeof(msg), "%s: %s %s %s (%u of %u, %u failed)", c->name, value,
                 ok ? "is" : "is not", cond, nd->an_taken[i], c->count, nd->an_failed[i]);
    else
        snprintf(msg, sizeof(msg), "%s: %s %s %s (%u of %u)", c->name, value, ok ? "is" : "is not",
                 cond, nd->an_taken[i], c->count);
    emit_measurement(run, nd, c, ok ? "success" : "failure", value, msg);
    if (nd->an_failed[i] > c->failure_limit) {
        char *fail = NULL;
        if (asprintf(&fail,
                     "analysis: %s failed: %s is not %s (%u of %u measurements failed; "
                     "failure_limit %u)",
                     c->name, value, cond, nd->an_failed[i], nd->an_taken[i],
                     c->failure_limit) < 0)
            fail = NULL;
        nd->analysing = nd->analysis_held = false;
        node_failed(run, nd, fail ? fail : "analysis failed", ops);
        free(fail);
        return true;
    }
    return false;
}

bool analysis_schedule(struct run *run, const engine_ops_t *ops)
{
    const analysis_t *a = run->rf->analysis;
    bool any = false;
    if (!a)
        return false;
    for (size_t k = 0; k < run->n; k++) {
        node_t *nd = &run->nodes[k];
        if (!nd->analysing || nd->call != CALL_NONE)
            continue;
        /* Ctrl-C, `baton abort`, rollback-all undoing, a journal that failed: the node's
         * analysis did not pass; it is rolled back as after a step. */
        const char *stop = interrupt_count()      ? interrupt_name()
                           : run->undo_in_flight  ? "rollback-all"
                           : run->journal_failed  ? "the journal could not be written"
                           : run->deadline_missed ? "progress_deadline passed"
                                                  : NULL;
        if (stop) {
            char why[160];
            snprintf(why, sizeof(why), "%s during its analysis", stop);
            nd->analysing = nd->analysis_held = false;
            node_set_why(nd, why);
            node_rollback(run, nd, false, ops);
            continue;
        }
        any = true;
        if (nd->analysis_held)
            continue;
        bool ended = false, all_done = true;
        for (size_t i = 0; i < a->n_checks && !ended && !nd->analysis_held; i++) {
            if (nd->an_taken[i] < a->checks[i].count && now_ms() >= nd->an_next[i])
                ended = measure(run, nd, i, ops);
        }
        for (size_t i = 0; i < a->n_checks; i++)
            all_done &= nd->an_taken[i] >= a->checks[i].count;
        if (!ended && all_done && !nd->analysis_held)
            passed(run, nd, ops, "analysis passed");
    }
    return any;
}

void analysis_continue(struct run *run, const engine_ops_t *ops)
{
    run->analysis_paused = false;
    for (size_t k = 0; k < run->n; k++) {
        node_t *nd = &run->nodes[k];
        if (nd->analysing && nd->analysis_held)
            passed(run, nd, ops, "analysis counted as passed by baton resume");
    }
}

json_t *analysis_try(const analysis_t *a, const prom_vars_t *vars, size_t *ret_refused)
{
    json_t *out = json_array();
    CURL *h = curl_easy_init();
    *ret_refused = 0;
    for (size_t i = 0; out && i < a->n_checks; i++) {
        const analysis_check_t *c = &a->checks[i];
        char why[512], value[48] = "", cond[64], msg[640];
        char *q = NULL;
        double x = 0;
        int r = prom_expand(c->query, vars, &q, why, sizeof(why));
        if (r == 0 && !h)
            r = -1, snprintf(why, sizeof(why), "out of memory");
        if (r == 0)
            r = prom_query(h, a->prometheus, q, a->timeout_ms, &x, why, sizeof(why));
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
        json_array_append_new(out, json_pack("{s:s, s:s, s:b, s:s, s:s}", "check", c->name,
                                             "query", q ? q : c->query, "ok",
                                             r == 0 || r == PROM_NO_NUMBER, "value", value,
                                             "message", msg));
        free(q);
    }
    if (h)
        curl_easy_cleanup(h);
    return out;
}
