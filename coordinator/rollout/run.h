/* run: what one invocation of the coordinator knows while it drives the fleet: the rollout, one
 * record per node (node_t), and the output. Only the types and a few helpers the phases share
 * (the artifact, the batches, the test hook) are here; the functions on them are in the headers of
 * their folders: engine/engine.h (the event loop, sending a call), rollout/node.h (one node's state
 * machine), events/events.h (emitting events). */
#ifndef BATON_RUN_H
#define BATON_RUN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "baton.pb-c.h"
#include "client.h"
#include "analysis.h"
#include "group.h"
#include "journal.h"
#include "notify.h"
#include "rollout.h"
#include "versions.h"

/* Where a node is, from this coordinator's point of view. */
typedef enum node_state {
    NODE_NEW = 0,         /* not asked yet */
    NODE_SKIP,            /* already on the target version (or committed by this rollout) */
    NODE_BAD,             /* a check failed: the rollout is refused */
    NODE_NEEDS,           /* answered Hello, needs the upgrade */
    NODE_RESERVED,        /* pre-flight passed (or resuming mid-way): waits for its batch */
    NODE_UPGRADING,       /* in its step sequence */
    NODE_VERIFIED,        /* verify passed; its commit waits for the whole rollout (rollback-all) */
    NODE_DONE,            /* committed by this run */
    NODE_ROLLED_BACK,     /* failed or stopped, and back where it was */
    NODE_ROLLBACK_FAILED, /* needs attention */
    NODE_LOST,            /* silent for `liveness` */
    NODE_RELEASED,        /* reserved, then released without a change */
    NODE_LEFT,            /* a second Ctrl-C left it in flight */
} node_state_t;

/* The call a node has in flight. */
typedef enum node_call {
    CALL_NONE = 0,
    CALL_HELLO,
    CALL_STAGE,
    CALL_PREFLIGHT,
    CALL_STEP,
    CALL_ROLLBACK,
    CALL_RELEASE,
} node_call_t;

typedef struct node {
    size_t index;              /* in the rollout file */
    const rollout_node_t *def; /* name and endpoint */
    client_t *client;
    node_state_t state;
    node_call_t call;     /* in flight */
    node_call_t ended;    /* the call whose end on_result is handling */
    bool staged;          /* the agent holds the artifact */
    uint64_t call_t0;     /* when it was sent */
    size_t batch;         /* 1-based; 0 when not in the plan */
    size_t step;          /* index in the upgrade sequence of the step in flight / next */
    size_t first_step;    /* resuming: where it starts */
    bool resuming;        /* its record says this rollout got it past pre-flight */
    bool holds_turn;      /* it holds its group's database turn (group.h) */
    char *database_id;    /* its database, as its agent reported it (NULL: not reported) */
    group_t *grp;         /* the nodes sharing that database */
    bool shared;          /* its dump and migration are skipped: its group's migrator did them */
    bool group_stop;      /* stopped for the restore of its group's database (stop-group) */
    bool grp_stop_failed; /* and that stop failed */
    bool restore_needed;  /* its rollback stopped short of restoring a shared database */
    char *restore_why;    /* and what it said, with how to restore, for the summary */
    bool was_migrator;    /* resuming: its record holds a dump of this rollout (it migrates) */
    char **mig_ids;       /* resuming: the ids its migration left, from its record */
    size_t n_mig_ids;
    bool parked;            /* maintenance: waits for the rest of its database's nodes */
    bool downgrade;         /* the target is below what it runs (versions.h allowed it) */
    uint32_t down_limit;    /* its pre-flight counted this many migrations to take down */
    bool applied;           /* its migrate applied something */
    bool undo;              /* roll it back once the step in flight ends */
    uint64_t stage_off;     /* staging: bytes sent (or held by the agent) so far */
    uint64_t stage_t0;      /* staging: when the transfer began */
    size_t stage_rewinds;   /* staging: times it asked the agent where the transfer stands */
    bool stage_asked;       /* staging: the answer awaited is to that question */
    bool stage_waiting;     /* staging: nothing in flight, waiting for the fleet's budget, or
                             * (a pull) for the time to ask again */
    bool pulls;             /* its agent pulls artifacts by URL (its Hello's features) */
    bool frames;            /* it takes a chunk's bytes in a frame of their own (the same) */
    uint64_t stage_ask_at;  /* a pull: when to ask where it stands again */
    uint64_t stage_pause;   /* a pull: the pause before that ask */
    uint64_t stage_grew_at; /* a pull: when the bytes it holds last grew */
    uint64_t settled_seq;   /* order in which it was verified, for newest-first undo */
    char *why;              /* why it failed, for the summary */
    Baton__Envelope *asked; /* node_ask_all(): its Hello answer */
    char *from_version;     /* what its Hello said it ran ({{from_version}} of a query) */
    analysis_tally_t an;    /* its analysis (analysis.h), between its verify and its commit */
    bool reanalyse;         /* resuming: verified by an earlier run, not committed */
} node_t;

struct run {
    const rollout_file_t *rf;        /* the rollout file */
    const struct rollout_opts *opts; /* output mode, state folder, resume */
    char id[64];                     /* rollout id */
    void *zctx;                      /* ZeroMQ context */
    node_t *nodes;                   /* one per node, in file order */
    size_t n;
    size_t busy;         /* nodes with a call in flight: kept by node_set_call() (engine.h) */
    uint64_t start_ms;   /* when the run began */
    journal_t *journal;  /* every event, for baton resume; NULL for status */
    bool journal_failed; /* an event could not be made durable: stop after the step */
    /* The artifact: pushed from data (size bytes), or pulled by each agent from url (size 0:
     * the agents learn it). */
    const uint8_t *data;
    uint64_t size;
    const char *sha256;
    const char *url;
    uint64_t stage_wake; /* the earliest pull's ask due (engine_run wakes for it); 0: none */
    /* The upgrade phase. */
    size_t n_batches;
    size_t batch; /* the batch running now (1-based) */
    size_t max_unavailable;
    size_t max_failures;
    size_t failures;          /* nodes that failed (rolled back or not) */
    bool halting;             /* start no further node */
    bool undo_in_flight;      /* and roll back each node in flight after its step */
    char *halt_reason;        /* for the summary */
    bool commit_decided;      /* before_commit said yes, now or before a resume: not asked again */
    bool paused;              /* waiting for baton resume */
    bool analysis_paused;     /* and the pause is an inconclusive analysis (analysis.h) */
    analysis_tally_t bake;    /* the bake of run->batch (analysis.h) */
    size_t baked;             /* the last batch whose bake passed */
    bool bake_undo;           /* roll back the nodes waiting for a bake (failed, Ctrl-C) */
    void *prom_curl;          /* analysis: the connection to Prometheus (CURL *), or NULL */
    journal_record_t *record; /* resume: the journal as it was; NULL for a new rollout */
    bool maintenance;         /* maintenance style (group.h) */
    group_t *groups;          /* the databases of the nodes (group.h) */
    size_t n_groups;
    uint64_t settled;     /* counter for settled_seq */
    uint64_t progress_at; /* last time a node finished (progress_deadline) */
    bool deadline_missed;
    const char *last_node;           /* text output: the node the last lines were about */
    bool parallel;                   /* text output: some batch runs nodes side by side */
    struct live *live;               /* the live view on a terminal, or NULL */
    struct recap *recap;             /* the closing table (recap.h), or NULL */
    notifier_t *notify;              /* `notify:` targets (notify.h), or NULL */
    struct rollout_metrics *metrics; /* the coordinator's metrics (rollout_metrics.h), or NULL */
};

/* rollout.c: the rollout file's artifact for `run` (plan or rollout): a file is read whole
 * (*ret_data, the caller's to free; run->data, run->size) and its digest computed (hex; the
 * caller compares it with a declared one); a URL is the agents' to pull (run->url; hex is the
 * declared digest, which a URL requires). */
int run_open_artifact(struct run *run, uint8_t **ret_data, char hex[65], baton_err_t *err);
/* rollout.c: puts every NODE_RESERVED node into a batch (the journal's plan when resuming)
 * and emits the plan event. */
int run_plan_batches(struct run *run);

/* Test hook: BATON_FAILPOINT=kill-after:NODE:STEP SIGKILLs the coordinator right after. */
void failpoint(const char *node, const char *step);

#endif
