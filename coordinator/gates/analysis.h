/* analysis: what players see, asked of Prometheus before a node counts as done.
 *
 *   analysis:
 *     prometheus: http://10.0.0.5:9090     # its HTTP API (http:// or https://)
 *     timeout: 5s                          # each query (default 5s, 1s to 60s)
 *     checks:                              # 1 to 8
 *       - name: error-rate
 *         query: sum(rate(errors_total{node="{{node}}"}[30s])) /
 * sum(rate(requests_total{node="{{node}}"}[30s])) success: result < 0.01           # < <= > >= ==
 * != interval: 10s                    # between measurements (default 10s, 1s to 10m) count: 3 #
 * measurements (default 3, 1 to 100) failure_limit: 0                 # failed measurements allowed
 * (default 0, < count) bake:                                # optional: each batch's, before the
 * next one
 *       - name: fleet-errors
 *         query: sum(rate(errors_total{node=~"{{nodes}}"}[1m]))
 *         success: result < 1
 *
 * From the moment a node's verify is sent (its stability window, min_healthy_time, begins)
 * each check takes `count` measurements, one every `interval`, the first one interval in (so
 * that Prometheus has scraped the new version); what the window does not cover is measured after
 * it, the node waiting uncommitted. More than failure_limit failed measurements fail the node as
 * a failed verify would (rolled back; on_failure says what the rollout does next): at once, or
 * once its verify ended (the agent's step is not cut short). A measurement that is no number
 * (Prometheus down, an error, no data, NaN, several series: prom.h) is inconclusive: the node
 * waits, neither committed nor rolled back, and the rollout pauses (`baton resume ID` counts the
 * node's analysis as passed and goes on; `baton abort ID` or Ctrl-C rolls it back). Every check
 * passed: the node goes on (its commit; with rollback-all, verified). A node in its analysis counts
 * as unavailable (max_unavailable): it may still be rolled back. A resume runs the analysis again
 * for a node its agent says verified and not committed.
 *
 * A bake (`bake:`, the same fields; its query names {{nodes}}, {{addresses}} as regexes and
 * {{batch}}) runs once every node of a batch passed, before the next batch starts (with
 * rollback-all also after the last, before the commit). The batch's nodes wait for it verified
 * and uncommitted, so that a failed bake rolls them back (newest first) and halts, as a failed
 * verify would; inconclusive pauses as above. A halt for another reason commits the nodes
 * waiting (they passed their own checks), Ctrl-C and `baton abort` roll them back.
 *
 * Queries are asked from the coordinator's event loop, one at a time, each bounded by `timeout`:
 * Prometheus on the operator's network answers in milliseconds; a frozen one holds the loop at
 * most that long per measurement (the agents' answers wait in their sockets). */
#ifndef BATON_ANALYSIS_H
#define BATON_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "prom.h"

#define ANALYSIS_CHECKS_MAX 8
#define ANALYSIS_COUNT_MAX 100

typedef struct analysis_check {
    char *name;               /* for messages */
    char *query;              /* with its {{words}} (prom.h) */
    char *success_text;       /* as written */
    prom_condition_t success; /* parsed */
    uint64_t interval_ms;
    unsigned count;
    unsigned failure_limit;
} analysis_check_t;

typedef struct analysis {
    char *prometheus; /* base URL of its HTTP API */
    uint64_t timeout_ms;
    analysis_check_t checks[ANALYSIS_CHECKS_MAX]; /* each node's, after its verify */
    size_t n_checks;
    analysis_check_t bake[ANALYSIS_CHECKS_MAX]; /* each batch's, once its nodes passed */
    size_t n_bake;
} analysis_t;

/* Where one analysis stands (a node's checks, or a batch's bake). */
typedef struct analysis_tally {
    bool running;                        /* measuring, or held */
    bool held;                           /* an inconclusive measurement: the rollout paused */
    int outcome;                         /* decided while its verify ran: 1 passed, -1 failed */
    char *why;                           /* and why it failed */
    uint64_t next[ANALYSIS_CHECKS_MAX];  /* when each check measures next */
    uint8_t taken[ANALYSIS_CHECKS_MAX];  /* measurements taken */
    uint8_t failed[ANALYSIS_CHECKS_MAX]; /* and failed */
} analysis_tally_t;

void analysis_free(analysis_t **a);

/* How long one node's analysis takes at least: the longest check's count x interval. */
uint64_t analysis_min_ms(const analysis_check_t *checks, size_t n);

struct run;
struct node;
struct engine_ops;

/* The node's verify is sent: its checks begin, measured during its stability window. */
void analysis_watch(struct run *run, struct node *nd);
/* Its verify passed: the analysis' verdict if it came (passed: node_verified(); failed:
 * node_failed()), else its measurements go on; without checks, node_verified(). */
void analysis_verified(struct run *run, struct node *nd, const struct engine_ops *ops);
/* Its verify failed, it was lost or is being rolled back: its analysis ends unjudged; a pause
 * it alone held ends. */
void analysis_drop(struct run *run, struct node *nd);
/* A resume found it verified, not committed: its checks begin again, or without any,
 * node_verified(). */
void analysis_begin(struct run *run, struct node *nd, const struct engine_ops *ops);
/* From the scheduler, every tick: measurements due, verdicts, the pause on an inconclusive one,
 * the rollback of nodes in analysis on Ctrl-C, `baton abort` or rollback-all. */
void analysis_schedule(struct run *run, const struct engine_ops *ops);
/* A node is in its analysis: the loop must wake for it (it has no call in flight to wake for). */
bool analysis_running(const struct run *run);
/* `baton resume` on an analysis pause: every node (or bake) held on an inconclusive measurement
 * passes. */
void analysis_continue(struct run *run, const struct engine_ops *ops);

/* Whether a node of `batch` that passed waits, uncommitted, for its batch's bake. */
bool analysis_bakes(const struct run *run, size_t batch);

/* {{nodes}} and {{addresses}} of `batch`'s nodes in `state` (a node_state_t): regexes, "a|b",
 * the dots of a name or an address escaped for a double-quoted PromQL string (=~ is anchored;
 * "." would match any character). 0, or -1 (out of memory); both strings the caller's. */
int analysis_batch_words(const struct run *run, size_t batch, int state, char **ret_nodes,
                         char **ret_addrs);

typedef enum bake_state {
    BAKE_DONE,   /* passed, or nothing to bake: the batch may go on */
    BAKE_WAIT,   /* measuring, or held on an inconclusive measurement */
    BAKE_FAILED, /* *ret_why says which check; its nodes are to be rolled back */
} bake_state_t;

/* The bake of run->batch (settled), from the scheduler: its checks over the batch's nodes that
 * passed (NODE_VERIFIED). *ret_why (BAKE_FAILED) is the caller's. */
bake_state_t analysis_bake(struct run *run, char **ret_why);

/* baton plan: each check's query (a node's, or with `bake` the bake's) for `vars`, asked once
 * through `h` (the caller's, shared by every node: one resolve, one connection):
 * one object per check (check, query as sent, ok, value, message). Not ok (counted in
 * *ret_refused): Prometheus did not answer or refused the query; no number yet (no data before
 * the new version runs) is said, and ok. */
json_t *analysis_try(CURL *h, const analysis_t *a, bool bake, const prom_vars_t *vars,
                     size_t *ret_refused);

#endif
