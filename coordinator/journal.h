/* journal: every event of a rollout, appended as one JSON line to
 * STATE_DIR/rollouts/ROLLOUT_ID.jsonl and fsynced, so that a coordinator killed at any moment
 * can be followed by `baton resume ROLLOUT_ID`. The first line is the start event: it names the
 * rollout file and the artifact's digest. A coordinator holds an exclusive lock (flock) on the
 * journal of the rollout it drives: one coordinator per rollout. */
#ifndef BATON_JOURNAL_H
#define BATON_JOURNAL_H

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

/* Reads the start event of a journal: the rollout file's path and the artifact's sha256 (both
 * the caller's). -ENOENT when there is no such rollout. */
int journal_start(const char *state_dir, const char *rollout_id, char **ret_file, char **ret_sha256,
                  baton_err_t *err);

#endif
