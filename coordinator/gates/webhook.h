/* webhook: gates a rollout waits on, named in its file:
 *
 *   webhooks:
 *     - url: https://ci.example/gate
 *       at: [before_rollout, before_batch]   # default: before_rollout; or before_commit
 *       timeout: 10s                          # each try (default 10s, 1s to 60s)
 *       retries: 2                            # tries after the first (default 2, at most 5)
 *
 * A gate POSTs the rollout's state (gate, rollout, service, version, batch, of, and each node's
 * state) and goes on only on a 2xx answer. before_rollout asks once every pre-flight passed,
 * before anything stops (a no refuses the rollout: exit 2, nothing stopped, nothing left
 * reserved); before_batch asks before each batch after the first (a no halts: the nodes done
 * stay done, no further node starts); before_commit, only with on_failure: rollback-all (where
 * no node commits before every batch passed), asks once every node verified and before the
 * first commit (a no rolls every node back, newest first, as a failed node would: exit 3; asked
 * once per rollout, not again by a resume after a node committed). Retried after 1 s, 2 s, …;
 * Ctrl-C stops a gate at once. A gate blocks the coordinator's loop, at a point where no node
 * has a call in flight. */
#ifndef BATON_WEBHOOK_H
#define BATON_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define WEBHOOKS_MAX 8

enum {
    WEBHOOK_BEFORE_ROLLOUT = 1 << 0,
    WEBHOOK_BEFORE_BATCH = 1 << 1,
    WEBHOOK_BEFORE_COMMIT = 1 << 2,
};

typedef struct webhook {
    char *url;
    unsigned at; /* WEBHOOK_* */
    uint64_t timeout_ms;
    unsigned retries;
} webhook_t;

/* The WEBHOOK_* bit of a name in `at:`, 0 when there is no such name. */
unsigned webhook_at_by_name(const char *name);
/* The name of one WEBHOOK_* bit ("before_commit"), as `at:` and a gate's body say it. */
const char *webhook_at_name(unsigned at);
/* Every name `at:` takes, for a message: "before_rollout, before_batch, before_commit". */
const char *webhook_at_names(void);

/* Asks every webhook that takes `at`, in file order, with `state` as the body (not stolen): 0
 * when each answered 2xx; else -1 with *ret_why (the caller's to free) naming the URL, the gate
 * and the last answer ("webhook https://ci/gate before batch 2: HTTP 500 after 3 tries";
 * "... before the commit: ..." for before_commit). */
int webhook_gate(const webhook_t *hooks, size_t n, unsigned at, json_t *state, char **ret_why);

#endif
