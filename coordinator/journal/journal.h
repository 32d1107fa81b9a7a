/* journal: every event of a rollout, in order, kept where a coordinator killed at any moment can
 * be followed by `baton resume ROLLOUT_ID`: a folder of files (STATE_DIR/rollouts/ID.jsonl,
 * one fsynced line per event; the default) or a PostgreSQL database that several controllers
 * share (`--journal postgresql://…`). The first event is the start event: it names the rollout
 * file and the artifact's digest. The coordinator driving a rollout holds a lock on its journal
 * (flock, or an advisory lock): one coordinator per rollout. */
#ifndef BATON_JOURNAL_H
#define BATON_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

typedef struct journal_store journal_store_t;
typedef struct journal journal_t;

/* The default state folder: $BATON_STATE_DIR, else /var/lib/baton for root, else
 * $XDG_STATE_HOME/baton (or ~/.local/state/baton). The caller's. */
char *journal_default_dir(void);

/* Where journals are kept: the PostgreSQL database `conninfo` names (a libpq URI or key=value
 * string) when given, else the folder `state_dir`. Nothing is connected or created yet. */
int journal_store_new(const char *state_dir, const char *conninfo, journal_store_t **ret,
                      baton_err_t *err);
void journal_store_destroy(journal_store_t **s_p);
/* "folder /var/lib/baton" or "database host=… dbname=…", for messages. */
const char *journal_store_where(const journal_store_t *s);

/* Opens (creating) the journal of `rollout_id` for appending and locks it; -EBUSY when another
 * coordinator holds it. */
int journal_open(journal_store_t *s, const char *rollout_id, journal_t **ret, baton_err_t *err);
/* Appends one line (no newline in it) and makes it durable. */
int journal_append(journal_t *j, const char *line, baton_err_t *err);
/* Waits until every line appended is stored: with PostgreSQL, lines held while its database was
 * away are written once it is back, within JOURNAL_GRACE_MS of it going; -EIO after that. For
 * the end of a rollout, whose summary must be on record before the exit code says done. */
int journal_sync(journal_t *j, baton_err_t *err);
/* Called twice a second by a running rollout: a journal database that went away is noticed
 * while nothing is written, and the rollout's lock taken back once it returns; -EIO after the
 * grace. */
int journal_tick(journal_t *j, baton_err_t *err);
/* How long a journal database may be away before the rollout counts its journal as failed. */
#define JOURNAL_GRACE_MS 30000
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
    json_t *groups; /* per database id: {"migrator": NODE, "ids": [...]}, the node that dumped
                     * (and migrated) that database in this rollout and the ids it left; a
                     * rollback of that node removes the entry; NULL when none */
    int exit;       /* the last summary's exit code; -1 when none (running, or died) */
    char *outcome;  /* the last summary's message, or NULL */
    size_t lines;   /* events read */
} journal_record_t;

/* Replays one journal line into *rec: 0, or -EBADMSG for a line that is no JSON object (a
 * torn last line after a crash is reported, not fatal: the caller decides). */
int journal_replay_line(journal_record_t *rec, const char *line);
/* Reads a whole journal; -ENOENT when there is no such rollout, -EBADMSG when its first line is
 * no start event or a line before the last is damaged. */
int journal_read(journal_store_t *s, const char *rollout_id, journal_record_t *ret,
                 baton_err_t *err);
void journal_record_clear(journal_record_t *rec);

/* Requests to the coordinator that drives a rollout: "continue" (`baton resume` of a paused
 * rollout) and "abort" (`baton abort`). journal_take() removes one and says whether it was
 * there. */
int journal_request(journal_store_t *s, const char *rollout_id, const char *what, baton_err_t *err);
bool journal_take(journal_store_t *s, const char *rollout_id, const char *what);

/* Freezes (`baton freeze`): one record per service, kept with the journals so that every
 * controller sharing them sees it; the record is freeze.c's JSON text, opaque here. put stores
 * one only when there is none (-EEXIST, the one there in *ret_there); get and del give the one
 * there (del removes it); -ENOENT when there is none. *ret_* are the caller's to free. */
int journal_freeze_put(journal_store_t *s, const char *service, const char *record,
                       char **ret_there, baton_err_t *err);
int journal_freeze_get(journal_store_t *s, const char *service, char **ret_record,
                       baton_err_t *err);
int journal_freeze_del(journal_store_t *s, const char *service, char **ret_there, baton_err_t *err);

/* The ids of the journals kept there, newest first; the caller frees each and the array. */
int journal_list(journal_store_t *s, char ***ret_ids, size_t *ret_n, baton_err_t *err);
/* -EBUSY when a coordinator holds the rollout's journal now, 0 when none does. */
int journal_probe_lock(journal_store_t *s, const char *rollout_id, baton_err_t *err);

#endif
