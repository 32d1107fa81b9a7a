/* db_lock: see db_lock.h. */
#include "db_lock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The session holding baton's lock in this database, as one line; "" when none. */
/* clang-format off */
static const char holder_sql[] =
    "SELECT coalesce(nullif(a.application_name, ''), 'unnamed session') || ' (pid ' || l.pid "
    "|| coalesce(', from ' || host(a.client_addr), '') || coalesce(', since ' || "
    "to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC'), '') || ')' "
    "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.classid = " STR(DB_LOCK_CLASS) "::oid AND l.objid = " STR(DB_LOCK_OBJECT) "::oid "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "LIMIT 1";
/* clang-format on */

int db_lock_holder_on(PGconn *c, char **ret_holder, baton_err_t *err)
{
    PGresult *res = PQexec(c, holder_sql);
    char line[256];
    int r = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        r = baton_err_set(err, -EIO, "read pg_locks: %s", db_message(res, line, sizeof(line)));
    else if (!(*ret_holder = strdup(PQntuples(res) ? PQgetvalue(res, 0, 0) : "")))
        r = baton_err_set(err, -ENOMEM, "out of memory");
    PQclear(res);
    return r;
}

int db_lock_holder(const svc_config_t *svc, char **ret_holder, baton_err_t *err)
{
    PGconn *c = NULL;
    int r = db_connect(svc, &c, err);
    if (r < 0)
        return r;
    r = db_lock_holder_on(c, ret_holder, err);
    PQfinish(c);
    return r;
}

int db_lock_refuse_held(const char *holder, baton_err_t *err)
{
    return *holder ? baton_err_set(err, -EBUSY,
                                   "the database's migration lock is held by %s (a rollout holds "
                                   "it from its stop or dump to its migration): one migration at a "
                                   "time per database",
                                   holder)
                   : 0;
}

int db_lock_check_free(const svc_config_t *svc, baton_err_t *err)
{
    char *holder = NULL;
    int r = db_lock_holder(svc, &holder, err);
    if (r == 0)
        r = db_lock_refuse_held(holder, err);
    free(holder);
    return r;
}

/* The server pids of the lock sessions this process holds now: a holder named for this node
 * but not among them is an earlier agent's. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static int live_pids[64];
static size_t n_live;

static void live_add(int pid)
{
    pthread_mutex_lock(&live_lock);
    if (n_live < sizeof(live_pids) / sizeof(live_pids[0]))
        live_pids[n_live++] = pid;
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(int pid)
{
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; i < n_live; i++)
        if (live_pids[i] == pid) {
            live_pids[i] = live_pids[--n_live];
            break;
        }
    pthread_mutex_unlock(&live_lock);
}

static bool live_has(int pid)
{
    bool has = false;
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; i < n_live && !has; i++)
        has = live_pids[i] == pid;
    pthread_mutex_unlock(&live_lock);
    return has;
}

/* clang-format off */
static const char stale_sql[] =
    "SELECT l.pid, coalesce(a.application_name, '') FROM pg_locks l "
    "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.classid = " STR(DB_LOCK_CLASS) "::oid AND l.objid = " STR(DB_LOCK_OBJECT) "::oid "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";
/* clang-format on */

static int end_stale_on(PGconn *c, const char *node, bool *ret_ended, baton_err_t *err)
{
    *ret_ended = false;
    char prefix[128], line[256];
    snprintf(prefix, sizeof(prefix), "baton-agent %s ", node);
    PGresult *res = PQexec(c, stale_sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int r = baton_err_set(err, -EIO, "read pg_locks: %s", db_message(res, line, sizeof(line)));
        PQclear(res);
        return r;
    }
    int pid = 0;
    char name[128] = "";
    if (PQntuples(res) == 1) {
        pid = atoi(PQgetvalue(res, 0, 0));
        snprintf(name, sizeof(name), "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    if (pid <= 0 || strncmp(name, prefix, strlen(prefix)) || live_has(pid))
        return 0; /* free, another node's, or ours and alive */
    char pidtext[16];
    snprintf(pidtext, sizeof(pidtext), "%d", pid);
    const char *params[] = {pidtext};
    res = PQexecParams(c, "SELECT pg_terminate_backend($1::int)", 1, NULL, params, NULL, NULL, 0);
    bool ended = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                 !strcmp(PQgetvalue(res, 0, 0), "t");
    if (!ended) {
        db_message(res, line, sizeof(line));
        PQclear(res);
        return baton_err_set(err, -EPERM,
                             "the migration lock is held by this node's earlier agent (%s, server "
                             "pid %d), gone since; this database role may not end its session "
                             "(%s): as a superuser, run SELECT pg_terminate_backend(%d);",
                             name, pid, *line ? line : "refused", pid);
    }
    PQclear(res);
    *ret_ended = true;
    return 0;
}

int db_lock_end_stale(const svc_config_t *svc, const char *node, bool *ret_ended, baton_err_t *err)
{
    PGconn *c = NULL;
    int r = db_connect(svc, &c, err);
    if (r < 0)
        return r;
    r = end_stale_on(c, node, ret_ended, err);
    PQfinish(c);
    return r;
}

static int try_lock(PGconn *c, bool *ret_got, baton_err_t *err)
{
    PGresult *res =
        PQexec(c, "SELECT pg_try_advisory_lock(" STR(DB_LOCK_CLASS) ", " STR(DB_LOCK_OBJECT) ")");
    int r = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        char line[256];
        r = baton_err_set(err, -EIO, "take the migration lock: %s",
                          db_message(res, line, sizeof(line)));
    } else {
        *ret_got = !strcmp(PQgetvalue(res, 0, 0), "t");
    }
    PQclear(res);
    return r;
}

int db_lock_take(const svc_config_t *svc, const char *node, const char *rollout_id,
                 PGconn **ret_conn, baton_err_t *err)
{
    char who[64];
    snprintf(who, sizeof(who), "baton-agent %s %s", node, rollout_id);
    PGconn *c = NULL;
    int r = db_connect_as(svc, who, &c, err);
    if (r < 0)
        return r;
    /* Registered before the lock is tried: another lane of this agent looking at the holder
     * meanwhile must see it as live, never as an earlier life to end. */
    live_add(PQbackendPID(c));
    bool got = false, ended = false;
    if ((r = try_lock(c, &got, err)) == 0 && !got &&
        (r = end_stale_on(c, node, &ended, err)) == 0 && ended) {
        /* The ended session lets go of the lock as its backend exits: a moment. */
        for (int i = 0; i < 50 && r == 0 && !got; i++) {
            if (i)
                usleep(100 * 1000);
            r = try_lock(c, &got, err);
        }
    }
    if (r < 0 || !got)
        live_remove(PQbackendPID(c));
    if (r < 0) {
        PQfinish(c);
        return r;
    }
    if (!got) {
        char *holder = NULL;
        baton_err_t herr = {0};
        if (db_lock_holder_on(c, &holder, &herr) < 0)
            holder = NULL;
        r = baton_err_set(err, -EBUSY,
                          "the database of %s: its migration lock is held by %s (a rollout holds "
                          "it from its stop or dump to its migration): one migration at a time "
                          "per database",
                          svc->name, holder && *holder ? holder : "another session");
        free(holder);
        PQfinish(c);
        return r;
    }
    *ret_conn = c;
    return 0;
}

int db_lock_unlock_keep(PGconn **conn_p, PGconn **ret_session)
{
    PGconn *c = *conn_p;
    PGresult *res =
        PQexec(c, "SELECT pg_advisory_unlock(" STR(DB_LOCK_CLASS) ", " STR(DB_LOCK_OBJECT) ")");
    bool done = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    if (!done) {
        db_lock_release(conn_p);
        return -EIO;
    }
    live_remove(PQbackendPID(c));
    *ret_session = c;
    *conn_p = NULL;
    return 0;
}

void db_lock_release(PGconn **conn_p)
{
    if (conn_p && *conn_p) {
        live_remove(PQbackendPID(*conn_p));
        PQfinish(*conn_p);
        *conn_p = NULL;
    }
}
