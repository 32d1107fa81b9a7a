/* journal_backend: what a place that keeps journals must do (journal.c dispatches to one).
 * Two backends: a folder of files (journal_file.c, the default) and a PostgreSQL database
 * (journal_pg.c), which several controllers can share. Internal to journal*.c. */
#ifndef BATON_JOURNAL_BACKEND_H
#define BATON_JOURNAL_BACKEND_H

#include <stdint.h>

#include <libpq-fe.h>

#include "journal.h"

typedef int (*journal_line_fn)(const char *line, size_t len, void *userdata);

struct journal_backend {
    int (*open)(journal_store_t *s, const char *id, journal_t *j, baton_err_t *err);
    int (*append)(journal_t *j, const char *line, baton_err_t *err);
    /* Every line appended so far is stored (NULL: append stores each line before it returns). */
    int (*sync)(journal_t *j, baton_err_t *err);
    /* Called twice a second while a rollout runs (NULL: nothing to watch). */
    int (*tick)(journal_t *j, baton_err_t *err);
    void (*close)(journal_t *j);
    /* Calls fn on every line in order; -ENOENT when there is no such journal. */
    int (*each_line)(journal_store_t *s, const char *id, journal_line_fn fn, void *userdata,
                     baton_err_t *err);
    int (*list)(journal_store_t *s, char ***ret_ids, size_t *ret_n, baton_err_t *err);
    int (*probe_lock)(journal_store_t *s, const char *id, baton_err_t *err);
    int (*request)(journal_store_t *s, const char *id, const char *what, baton_err_t *err);
    bool (*take)(journal_store_t *s, const char *id, const char *what);
    /* A service's freeze record (freeze.c's JSON text): put only when there is none (-EEXIST
     * and the one there in *ret_there), get, and delete (what was there in *ret_there);
     * -ENOENT when there is none. */
    int (*freeze_put)(journal_store_t *s, const char *service, const char *record, char **ret_there,
                      baton_err_t *err);
    int (*freeze_get)(journal_store_t *s, const char *service, char **ret_record, baton_err_t *err);
    int (*freeze_del)(journal_store_t *s, const char *service, char **ret_there, baton_err_t *err);
};

struct journal_store {
    const struct journal_backend *be;
    char *where;            /* for messages: the folder, or the database */
    char *dir;              /* files: the state folder */
    char *conninfo;         /* PostgreSQL: libpq conninfo */
    PGconn *conn;           /* PostgreSQL: for reads, lists and requests (not the locking one) */
    uint64_t conn_retry_ms; /* PostgreSQL: no new connection tried before (monotonic ms) */
    char *spool_dir;        /* PostgreSQL: where lines wait while the database is away */
};

struct journal {
    const struct journal_backend *be;
    char *id;
    int fd;       /* files: the journal, O_APPEND, locked */
    char *path;   /* files: for messages */
    PGconn *conn; /* PostgreSQL: the session holding the rollout's advisory lock */
    /* PostgreSQL, while its database is away: the lines not stored yet, in order, also in a
     * spool file (held), since when, and when to try again. */
    journal_store_t *store;
    char **held;
    size_t n_held;
    char *spool_path;
    uint64_t down_since_ms, next_try_ms, next_check_ms; /* away since (0: here) */
    unsigned tries;
};

extern const struct journal_backend journal_file_backend;
extern const struct journal_backend journal_pg_backend;

#endif
