/* state: what the agent knows about one service across restarts, in STATE_DIR/SERVICE.json.
 *
 * Written with write-temp + fsync + rename before and after every step, so that after a crash
 * at any instant the file holds either the state before a step or after it, and `in_progress`
 * says which step may have been cut short. Everything in it is checked on load: a damaged file
 * is an error naming the file and the field, never a guess. */
#ifndef BATON_AGENT_STATE_H
#define BATON_AGENT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "envelope.h"
#include "err.h"
#include "steps.h"

/* One set of limits, checked when a value is recorded and again when the file is saved and
 * loaded: what can be recorded can be saved, and what was saved can be loaded. */
#define STATE_IDS_MAX ENVELOPE_REPEATED_MAX /* ids in one list: the wire's own limit */
#define STATE_STR_MAX 1024                  /* bytes in one id, version or path */
#define STATE_FILE_MAX (16 * 1024 * 1024)   /* the whole state file of one service */
#define STATE_RESULT_MAX (512 * 1024) /* one recorded Result, base64 */
#define STATE_HISTORY_MAX 32          /* versions kept in a service's history */

/* One version the service ran here (the history a downgrade is checked against). */
typedef struct version_record {
    char *version; /* what it reported */
    char **ids;    /* the bookkeeping ids the database had with it */
    size_t n_ids;
    char *dump;    /* a verified dump taken while it ran, "" when none */
} version_record_t;

typedef struct svc_state {
    char *service;          /* the service this state is about */
    char *rollout_id;       /* rollout that last touched the service, "" if none */
    char *step;             /* last completed step ("" none, "preflight", ... "committed") */
    char *in_progress;      /* step started and not finished, "" if none */
    char *target_version;   /* version being installed */
    char *target_sha256;    /* digest of the staged binary */
    char *previous_version; /* version before the rollout */
    char *previous_sha256;  /* digest of the binary before the rollout */
    char *target_release;   /* with releases (release.h): the release installed, "" without */
    char *previous_release; /* the release `current` named before ("" with target_release: an
                             * install from before releases, adopted at the swap) */
    bool was_active;        /* unit was active when the rollout began */
    bool stopped;           /* this rollout stopped the unit */
    bool stop_asked;        /* the stop step asked systemd to stop the unit (saved before it
                             * asks; true when a state file from an older agent cannot say) */
    bool swapped;           /* this rollout replaced the binary */
    bool have_ids_before;   /* ids_before was recorded */
    char **ids_before;      /* bookkeeping ids before this rollout migrated */
    size_t n_ids_before;
    char **applied; /* ids this rollout's migrations added */
    size_t n_applied;
    char *dump_path; /* verified dump of this rollout, "" if none */
    uint64_t dump_size;
    uint64_t unit_started_usec; /* when this rollout last started the unit (CLOCK_REALTIME µs):
                                 * from there its journal says why it failed; 0 not yet */
    char *dump_sha256;
    char *database_id;  /* "SYSTEM_IDENTIFIER/DBNAME" of the database, as the pre-flight found it */
    char *shared_from;  /* the node that dumped and migrated this (shared) database for this
                         * rollout: the schema is its to undo, not ours; "" when it is ours */
    char **expect_ids;  /* shared: the bookkeeping ids that node's migration left */
    size_t n_expect_ids;
    char **ids_after;   /* the bookkeeping ids this rollout's own migration left */
    size_t n_ids_after;
    char **ids_preflight; /* the bookkeeping ids when the pre-flight passed: the schema the old
                           * binary ran on, which its rollback may start it on again */
    size_t n_ids_preflight;
    bool downgrade;      /* this rollout goes down to target_version (Step.downgrade) */
    uint64_t down_limit; /* and its migrate takes this many migrations down */
    char *restore_dump;  /* or restores this dump, taken at target_version, "" when not */
    version_record_t *history; /* versions deployed here, oldest first (kept across rollouts) */
    size_t n_history;
    char *highest_version; /* the highest version ever deployed here (kept across rollouts) */
    char *prior_rollout_id;   /* the finished record a pre-flight replaced, put back on release */
    char *prior_step;         /* its last step ("committed", "rolled_back" or "") */
    char *results[STEP__MAX]; /* per step of this rollout: its packed Result (base64), or NULL */
    uint64_t result_requests[STEP__MAX]; /* the request id each Result answered */
    uint64_t in_progress_request;        /* the request that started in_progress */
} svc_state_t;

/* A fresh, empty state for `service`. */
svc_state_t *svc_state_new(const char *service);
void svc_state_destroy(svc_state_t **st_p);

/* Loads STATE_DIR/SERVICE.json; a missing file gives a fresh state. */
int svc_state_load(const char *state_dir, const char *service, svc_state_t **ret_st,
                   baton_err_t *err);
int svc_state_save(const char *state_dir, const svc_state_t *st, baton_err_t *err);

/* Replaces a string field (NULL becomes ""). */
int svc_state_set(char **field, const char *value);
/* Starts a new rollout: clears everything but the service name. A record of another rollout
 * (finished, or nothing) is kept as the prior record, for svc_state_release(). */
int svc_state_begin(svc_state_t *st, const char *rollout_id);
/* Undoes a rollout that changed nothing live (only a pre-flight): the prior record is back. */
int svc_state_release(svc_state_t *st);
/* Records a step's packed Result (copied, stored as base64) and the request it answered;
 * replaces an earlier one. */
int svc_state_set_result(svc_state_t *st, step_id_t step, uint64_t request_id, const void *packed,
                         size_t len);
/* The recorded Result of a step, decoded (*ret_buf is the caller's); -ENOENT when none. */
int svc_state_get_result(const svc_state_t *st, step_id_t step, uint8_t **ret_buf, size_t *ret_len);
/* Bit (1u << step) for every step with a recorded Result; with request_id non-zero, only those
 * that answered that very request (a coordinator asking again after a lost answer). */
unsigned svc_state_recorded(const svc_state_t *st, uint64_t request_id);
/* Appends (version, ids, dump) to the history, or updates its last entry when that is the same
 * version; the oldest go beyond STATE_HISTORY_MAX. */
int svc_state_history_add(svc_state_t *st, const char *version, char **ids, size_t n_ids,
                          const char *dump);
/* The newest history entry of `version`, or NULL. */
const version_record_t *svc_state_history_find(const svc_state_t *st, const char *version);
/* Appends an id (copied) to a list. */
int svc_state_push(char ***list, size_t *n, const char *id);
/* True when `id` is in the list. */
bool svc_state_has(char *const *list, size_t n, const char *id);
void svc_state_clear_list(char ***list, size_t *n);

#endif
