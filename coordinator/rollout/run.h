/* run: what one invocation of the coordinator knows while it drives the fleet: the rollout, one
 * record per node, and the output. Internal to the coordinator; shared by the driver
 * (rollout.c), one node's state machine (node.c), the event loop (engine.c), the events
 * (events.c), status.c and rollback.c. */
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

/* events.c: every event is one JSON object; emit() journals it, then prints it as JSON or as
 * text. Takes ownership of `e`. */
void emit(struct run *run, json_t *e);
/* A step's (or rollback's) event as one text line, and the service's log lines under it. */
void event_print_step(FILE *f, json_t *e);
/* The header line of `baton status`'s table (its rows are its events). */
void status_print_header(void);
void emit_check(struct run *run, const char *phase, const node_t *nd, bool ok, const char *msg);
void emit_node(struct run *run, const node_t *nd, const char *msg);
void emit_error(struct run *run, const char *msg);
void on_progress(const char *node, const Baton__Progress *p, void *userdata);
/* The summary; returns code. */
int emit_summary(struct run *run, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int emit_summary_v(struct run *run, int code, const char *fmt, va_list ap);
/* "a, b, c" of the nodes in `state` (any of the two), or "none"; the caller's. */
char *node_names(const struct run *run, node_state_t a, node_state_t b);

/* engine.c: the event loop. `schedule` starts calls (through node_send) and returns true
 * while it waits for something other than an answer (a pause); `on_result` gets each call's
 * end: r < 0 (err says why) or the Result envelope (then owned by on_result). Returns 0 when
 * nothing is in flight and schedule has nothing more to start, -EINTR at a second Ctrl-C. */
typedef struct engine_ops {
    bool (*schedule)(struct run *run);
    void (*on_result)(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err);
} engine_ops_t;
int engine_run(struct run *run, const engine_ops_t *ops);
/* Calls in flight. */
size_t engine_busy(const struct run *run);
/* Starts `req` on a node's client; a failure to send is handed to on_result at once. */
int node_send(struct run *run, node_t *nd, node_call_t call, Baton__Envelope *req,
              uint64_t timeout_ms, const engine_ops_t *ops);
uint64_t now_ms(void);
/* One client per node (run->nodes must be set); and their end, with the journal's. */
int run_connect(struct run *run, baton_err_t *err);
void run_disconnect(struct run *run);

/* node.c: one node's upgrade, step by step, and its rollback. */
void node_init_step(Baton__Step *s, const struct run *run, const char *sha256);
/* The pre-flight's request, and plan's: the same facts, so that the agent reaches the same
 * verdict for both (the version move, the dump to restore, the rehearsal). */
void node_init_preflight(Baton__Step *s, const struct run *run, const node_t *nd);
/* A Hello that got no answer (`what`: the timeout's message), said with its likely cause: the
 * name does not resolve, nothing listens, the node does not answer TCP, or (TCP got through)
 * the CURVE keys. *ret is the caller's; asprintf's result. */
int node_hello_silence(const struct run *run, const node_t *nd, const char *what, char **ret);
/* Sends the node's next step (nd->step). */
void node_next_step(struct run *run, node_t *nd, const engine_ops_t *ops);
/* A step's Result or failure: emits it, then the next step, the rollback, or the end. */
void node_step_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err,
                      const engine_ops_t *ops);
/* Starts sending the artifact (node.c's staging comment); its Results go to node_stage_result,
 * which keeps the window full or ends: nd->staged, or NODE_BAD and a failed stage check. */
void node_stage_send(struct run *run, node_t *nd, const engine_ops_t *ops);
void node_stage_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err,
                       const engine_ops_t *ops);
/* Goes on with the transfers that wait for the fleet's budget of chunks in flight (schedulers
 * call it every turn); true while some still wait. */
bool node_stage_pump(struct run *run, const engine_ops_t *ops);
/* Sends a rollback of the run's rollout (undo = true) or a release (a reservation only). */
void node_rollback(struct run *run, node_t *nd, bool release, const engine_ops_t *ops);
void node_rollback_result(struct run *run, node_t *nd, int r, Baton__Envelope *env,
                          baton_err_t *err);
/* True between stop and verified, and while rolling back: the node does not serve. */
bool node_unavailable(const node_t *nd);
void node_set_why(node_t *nd, const char *why);
/* Its verify passed and, with an analysis, so did that: settled, then its commit (with
 * rollback-all: verified, its commit waits for every batch; with a bake, for its batch's). */
void node_verified(struct run *run, node_t *nd, const engine_ops_t *ops);
/* It failed after its step ended (its analysis): `why` for the summary, on_failure applied,
 * rolled back. */
void node_failed(struct run *run, node_t *nd, const char *why, const engine_ops_t *ops);
const char *node_state_name(node_state_t s);
/* The entry of the rollout's service in a Hello Result, or NULL with err saying why. */
/* Asks every node's agent for its Hello at once, at most max_in_flight at a time: nd->asked
 * holds the answer (freed by run_disconnect), or nd->why says why there is none. The caller
 * prints in file order from node_asked_service(); a slow or unreachable node costs the connect
 * timeout once, not once per node behind it. */
int node_ask_all(struct run *run);
/* Sends a Hello to every node not asked yet (NODE_NEW, idle) while fewer than max_in_flight
 * calls are out, marking each NODE_NEEDS; the answers go to ops->on_result. */
void node_hello_all(struct run *run, const engine_ops_t *ops);
const Baton__ServiceInfo *node_asked_service(struct run *run, node_t *nd, baton_err_t *err);
const Baton__ServiceInfo *node_hello_service(const struct run *run, const Baton__Envelope *res,
                                             baton_err_t *err);
/* What the rollout's version means for this service (versions.h): up, down, refused (why). */
version_move_t node_version_move(const struct run *run, const Baton__ServiceInfo *svc, char *why,
                                 size_t len);
/* True when the service runs the rollout's version, active, with nothing on record to finish. */
bool node_on_target(const struct run *run, const Baton__ServiceInfo *svc);
/* True when the service's record holds something to undo or release: an unfinished rollout,
 * or a reservation by a pre-flight (even one a crash cut short). */
bool node_record_unfinished(const Baton__ServiceInfo *svc);
/* Blocking Hello to one node (status, rollback): *ret_res is the caller's. */
const Baton__ServiceInfo *node_ask_service(struct run *run, node_t *nd, Baton__Envelope **ret_res,
                                           baton_err_t *err);

/* rollout.c: the rollout file's artifact for `run` (plan or rollout): a file is read whole
 * (*ret_data, the caller's to free; run->data, run->size) and its digest computed (hex; the
 * caller compares it with a declared one); a URL is the agents' to pull (run->url; hex is the
 * declared digest, which a URL requires). */
int run_open_artifact(struct run *run, uint8_t **ret_data, char hex[65], baton_err_t *err);
/* rehearse: true: this node's pre-flight (or plan) rehearses the migration on a copy of its
 * database; once per database, by the first node of those whose agents reported it. */
bool node_rehearses(const struct run *run, const node_t *nd);

/* rollout.c: puts every NODE_RESERVED node into a batch (the journal's plan when resuming)
 * and emits the plan event. */
int run_plan_batches(struct run *run);

/* Test hook: BATON_FAILPOINT=kill-after:NODE:STEP SIGKILLs the coordinator right after. */
void failpoint(const char *node, const char *step);

#endif
