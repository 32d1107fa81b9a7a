/* rollout: `baton rollout` and `baton status`, driving every agent named in a rollout file. */
#ifndef BATON_ROLLOUT_H
#define BATON_ROLLOUT_H

#include <stdbool.h>

#include "journal.h"
#include "rollout_file.h"

/* Exit codes, documented in the README. */
enum {
    EXIT_DONE = 0,        /* every node is on the target version */
    EXIT_USAGE = 1,       /* bad command line or rollout file */
    EXIT_REFUSED = 2,     /* refused before any change: unreachable, stage or preflight failed */
    EXIT_ROLLED_BACK = 3, /* a node failed and was rolled back; later nodes untouched */
    EXIT_NEEDS_CARE = 4,  /* a node failed and its rollback failed or its state is unknown */
};

struct rollout_opts {
    bool json;                /* one JSON object per event on stdout instead of text */
    journal_store_t *store;   /* where journals live (--journal, else --state-dir) */
    const char *resume_id;    /* resume this rollout instead of starting a new one */
    const char *only_rollout; /* rollback: only nodes whose record is of this rollout */
    bool jump;                /* rollout: one jump across minors, in maintenance style */
    bool allow_downgrade;     /* rollout: one minor down (migrate down with the newer binary) */
    const char *restore_dump; /* rollout: a downgrade restores this dump, taken at the target */
    bool restore_shared;      /* rollback: a dump may be restored into a database other nodes
                               * of the file use (the operator stopped them: --restore-shared) */
};

/* Runs a rollout, or resumes opts->resume_id: nodes whose record says this rollout committed
 * are done, a node in the middle continues from its recorded step (completed steps are never
 * run again: the agent answers them from its record), the others go through pre-flight. */
int rollout_run(const rollout_file_t *rf, const struct rollout_opts *opts);
/* `baton rollout`: with a catalog, an upgrade across more than one minor version goes one minor
 * at a time (the newest patch of each minor between, each hop a whole verified rollout), unless
 * opts->jump asks for one jump, in maintenance style; otherwise rollout_run(). */
int rollout_path(const rollout_file_t *rf, const struct rollout_opts *opts);
int rollout_status(const rollout_file_t *rf, const struct rollout_opts *opts);
/* `baton plan`: a read-only pre-flight on every node at once, and the batches; changes nothing
 * anywhere. EXIT_DONE when the rollout could run, EXIT_REFUSED when it would be refused. */
int rollout_plan(const rollout_file_t *rf, const struct rollout_opts *opts);
/* Rolls back every node whose last rollout of the service is unfinished (interrupted by a crash
 * of the agent or of the coordinator, or failed): 0 when all are back, 4 when any is not. */
int rollout_rollback(const rollout_file_t *rf, const struct rollout_opts *opts);

/* `baton rollback ROLLOUT_ID`: undoes that rollout on every node it changed, committed ones
 * included (a deliberate downgrade), one node at a time, `newest_first` (the nodes it
 * committed, from its journal) before the rest. A node a later rollout changed is not touched:
 * exit 4 says so. */
int rollout_undo(const rollout_file_t *rf, const struct rollout_opts *opts, const char *rollout_id,
                 const char *const *newest_first, size_t n_newest);

/* history.c. `baton list`: the rollouts in the state folder, newest first, and how each ended. */
int history_list(const struct rollout_opts *opts);
/* `baton status ROLLOUT_ID [--follow]`: the journal's view (running, paused, ended, died) and
 * then the agents'; with follow, again every 2 s until the rollout ends. */
int history_status(const char *rollout_id, bool follow, const struct rollout_opts *opts);
/* `baton abort ROLLOUT_ID`: a running coordinator stops after the steps in flight and rolls
 * those nodes back (as a Ctrl-C); when none runs, the nodes that rollout left unfinished are
 * rolled back here. */
int history_abort(const char *rollout_id, const struct rollout_opts *opts);
/* `baton rollback ROLLOUT_ID`: rollout_undo() with the order from the journal. */
int history_undo(const char *rollout_id, const struct rollout_opts *opts);

#endif
