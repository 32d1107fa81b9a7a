/* notify: a rollout's events sent as they happen to the URLs its file names (`notify:`), for
 * chat rooms, incident tools and dashboards:
 *
 *   notify:
 *     - url: https://hooks.example/baton
 *       format: json        # the event as --json prints it (doc/events.md), or slack:
 *                           # {"text": "…"} for Slack-compatible incoming webhooks
 *       on: [started, node_failed, rolled_back, paused, halted, finished]   # default: all
 *
 * Never in the rollout's way: events are queued and POSTed by a thread per target (one that
 * never answers holds only its own), in the order they happened, each try bounded (2 s to
 * connect, 5 s in all), retried with backoff (0.5 s doubling to 8 s, 6 tries) on a connection
 * error or an answer other than 2xx. When the rollout ends, what is still queued gets
 * NOTIFY_GRACE_MS more (a try in flight ends with it, within a second: libcurl asks that often),
 * then is said on stderr as not delivered, naming the target by scheme://host:port only (its
 * URL may hold a token). */
#ifndef BATON_NOTIFY_H
#define BATON_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"

#define NOTIFY_TARGETS_MAX 8
#define NOTIFY_GRACE_MS 3000

/* What a target is sent; a mask of these. */
enum {
    NOTIFY_STARTED = 1 << 0,     /* start: a rollout began (or was resumed) */
    NOTIFY_PAUSED = 1 << 1,      /* paused: after a batch, waiting for baton resume */
    NOTIFY_NODE_FAILED = 1 << 2, /* step with ok false: a node's step failed */
    NOTIFY_ROLLED_BACK = 1 << 3, /* rollback: a node was rolled back (or its rollback failed) */
    NOTIFY_HALTED = 1 << 4,      /* halt: no further node starts */
    NOTIFY_FINISHED = 1 << 5,    /* summary: the rollout ended, how and with which exit code */
    NOTIFY_ALL = (1 << 6) - 1,
};

typedef enum notify_format {
    NOTIFY_JSON = 0,
    NOTIFY_SLACK,
} notify_format_t;

typedef struct notify_target {
    char *url;
    notify_format_t format;
    unsigned on; /* NOTIFY_* */
} notify_target_t;

/* The NOTIFY_* bit of a name in `on:`, 0 when there is no such name. */
unsigned notify_kind_by_name(const char *name);
/* Every name `on:` takes, for a message: "started, paused, …". */
const char *notify_kind_names(void);

/* Which NOTIFY_* an event is (0: none is sent). */
unsigned notify_kind_of(json_t *e);
/* The Slack form's sentence for an event (the caller frees it). */
char *notify_sentence(json_t *e, const char *service);
/* `text` with & < > escaped as Slack asks (else <!channel> in a service's message would ping a
 * whole channel); the caller frees it. */
char *notify_slack_escape(const char *text);

typedef struct notifier notifier_t;
/* Starts the sending thread for these targets (copied). */
int notifier_new(const notify_target_t *targets, size_t n, const char *service, notifier_t **ret,
                 baton_err_t *err);
/* Queues the event for every target that takes it; never blocks on the network. */
void notifier_event(notifier_t *nt, json_t *e);
/* Gives what is queued NOTIFY_GRACE_MS, says on stderr what was not delivered, stops. */
void notifier_destroy(notifier_t **nt_p);

#endif
