/* journal: every event of a rollout, appended as one JSON line to
 * STATE_DIR/rollouts/ROLLOUT_ID.jsonl and fsynced, so that a coordinator killed at any moment
 * can be followed by `baton resume ROLLOUT_ID`. The first line is the start event: it names the
 * rollout file and the artifact's digest. A coordinator holds an exclusive lock (flock) on the
 * journal of the rollout it drives: one coordinator per rollout. */
#ifndef BATON_JOURNAL_H
#define BATON_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

typedef struct journal journal_t;

/* The default state folder: $BATON_STATE_DIR, else /var/lib/baton for root, else
 * $XDG_STATE_HOME/baton (or ~/.local/state/baton). The caller's. */
char *journal_default_dir(void);

/* Opens (creating) the journal of `rollout_id` for appending and locks it; -EBUSY when another
 * coordinator holds it. */
int journal_open(const char *state_dir, const char *rollout_id, journal_t **ret, baton_err_t *err);
/* Appends one line (no newline in it) and makes it durable. */
int journal_append(journal_t *j, const char *line, baton_err_t *err);
void journal_close(journal_t **j_p);

/* What a journal says, replayed line by line. */
typedef struct journal_record {
    char *file;              /* the rollout file (start event) */
    char *sha256;            /* the artifact's digest (start event) */
    char *service, *version; /* what it upgrades (start event) */
    char *started_at;        /* the start event's time, ISO 8601 UTC */
    char *last_event;        /* the last event's kind ("step", "paused", ...) */
    json_t *plan; /* the plan event's batches, [["node1"], ["node2", "node3"]], or NULL */
    size_t n_pauses_reached;
    uint32_t pauses_reached[64]; /* batches after which the rollout paused */
    bool waiting;                /* its last pause was not continued yet */
    bool aborted;                /* `baton abort` settled it after its coordinator was gone */
    bool undone;                 /* `baton rollback ROLLOUT_ID` undid it */
    json_t *committed;           /* names of the nodes it committed, in the order they did */
    int exit;                    /* the last summary's exit code; -1 when none (running, or died) */
    char *outcome;               /* the last summary's message, or NULL */
    size_t lines;                /* events read */
} journal_record_t;

/* Replays one journal line into *rec: 0, or -EBADMSG for a line that is no JSON object (a
 * torn last line after a crash is reported, not fatal: the caller decides). */
int journal_replay_line(journal_record_t *rec, const char *line);
/* Reads a whole journal; -ENOENT when there is no such rollout, -EBADMSG when its first line is
 * no start event. */
int journal_read(const char *state_dir, const char *rollout_id, journal_record_t *ret,
                 baton_err_t *err);
void journal_record_clear(journal_record_t *rec);

/* Requests to the coordinator that drives a rollout, as files beside its journal:
 * STATE_DIR/rollouts/ROLLOUT_ID.continue (`baton resume` of a paused rollout) and .abort
 * (`baton abort`). journal_take() removes one and says whether it was there. */
int journal_request(const char *state_dir, const char *rollout_id, const char *what,
                    baton_err_t *err);
bool journal_take(const char *state_dir, const char *rollout_id, const char *what);

/* The ids of the journals in STATE_DIR/rollouts, newest first (by modification time); the
 * caller frees each and the array. */
int journal_list(const char *state_dir, char ***ret_ids, size_t *ret_n, baton_err_t *err);
/* -EBUSY when a coordinator holds the rollout's journal now, 0 when none does. */
int journal_probe_lock(const char *state_dir, const char *rollout_id, baton_err_t *err);

#endif
