/* strategy: how a rollout moves through the fleet, as the rollout file says it, and the
 * arithmetic that turns it into batches and limits. Pure functions: unit-tested alone.
 *
 *   batches: 1 | "25%" | [1, 2, "25%"]   nodes per batch; the first batch is the canary and the
 *                                        last entry repeats (as Ansible's `serial`)
 *   max_unavailable: 2 | "20%"           never more nodes between stop and verified at once
 *   on_failure: halt | rollback-all | continue
 *   max_failures: 1 | "10%"              with continue: more failures than this halts
 *   pause_after: canary | 2 | [1, 3]     wait for `baton resume` after these batches
 *
 * Percentages are of the nodes being upgraded, rounded down, and at least 1 where 0 would
 * stall the rollout (batch sizes, max_unavailable). */
#ifndef BATON_STRATEGY_H
#define BATON_STRATEGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STRATEGY_BATCHES_MAX 64 /* entries in a batches list */
#define STRATEGY_PAUSES_MAX 64  /* entries in a pause_after list */

/* A count, or a percentage of the nodes. */
typedef struct amount {
    bool percent;
    uint32_t value; /* count, or 1..100 */
} amount_t;

typedef enum on_failure {
    ON_FAILURE_HALT = 0,     /* roll the failed node back, start no other node */
    ON_FAILURE_ROLLBACK_ALL, /* also roll back every node this rollout upgraded, newest first */
    ON_FAILURE_CONTINUE,     /* roll the failed node back, go on while failures <= max_failures */
} on_failure_t;

typedef struct strategy {
    size_t n_batches;
    amount_t batches[STRATEGY_BATCHES_MAX]; /* default: one entry, 1 (one node at a time) */
    bool max_unavailable_set;
    amount_t max_unavailable; /* default: the batch's size */
    on_failure_t on_failure;
    amount_t max_failures; /* default 0 */
    size_t n_pauses;
    uint32_t pause_after[STRATEGY_PAUSES_MAX]; /* 1-based batch numbers */
    uint32_t max_in_flight;                    /* requests in flight at once (default 64) */
    bool restore_stop_group; /* restore_shared: stop-group: a rollback that needs the dump of
                              * a database other nodes of the rollout serve from first stops
                              * them; default (refuse): stop there, exit 4, say how */
} strategy_t;

/* The defaults: one node at a time, halt on failure, no pause, 64 requests in flight. */
void strategy_init(strategy_t *s);

/* Parses "3" or "25%" (a count >= min_count, or 1..100 percent); 0 or -EINVAL. */
int amount_parse(const char *text, uint32_t min_count, amount_t *ret);
/* How many of `total` an amount names: a percentage rounds down; at least `at_least`; never
 * more than total. */
size_t amount_resolve(amount_t a, size_t total, size_t at_least);
/* "3" or "25%" into buf. */
const char *amount_str(amount_t a, char *buf, size_t len);

/* Parses "halt", "rollback-all" or "continue"; 0 or -EINVAL. */
int on_failure_parse(const char *text, on_failure_t *ret);
const char *on_failure_str(on_failure_t f);

/* Splits `total` nodes into batches: fills ret_sizes (room for `total` entries) and returns how
 * many batches; 0 when total is 0. */
size_t strategy_batches(const strategy_t *s, size_t total, size_t *ret_sizes);
/* True when the rollout pauses after batch `batch` (1-based). */
bool strategy_pauses_after(const strategy_t *s, size_t batch);

#endif
