/* db_lock: see db_lock.h. */
#include "db_lock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The session holding baton's lock in this database, as one line; "" when none. */
static const char holder_sql[] =
    "SELECT coalesce(nullif(a.application_name, ''), 'unnamed session') || ' (pid ' || l.pid "
    "|| coalesce(', from ' || host(a.client_addr), '') || coalesce(', since ' || "
    "to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC'), '') || ')' "
    "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.classid = " STR(DB_LOCK_CLASS) "::oid AND l.objid = " STR(
        DB_LOCK_OBJECT) "::oid "
                        "AND l.database = (SELECT oid FROM pg_database WHERE datname = "
                        "current_database()) "
                        "LIMIT 1";

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
                                   "the database is being dumped or migrated by %s: one migration "
                                   "at a time per database",
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

int db_lock_take(const svc_config_t *svc, const char *who, PGconn **ret_conn, baton_err_t *err)
{
    PGconn *c = NULL;
    int r = db_connect_as(svc, who, &c, err);
    if (r < 0)
        return r;
    PGresult *res =
        PQexec(c, "SELECT pg_try_advisory_lock(" STR(DB_LOCK_CLASS) ", " STR(DB_LOCK_OBJECT) ")");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        char line[256];
        r = baton_err_set(err, -EIO, "take the migration lock: %s",
                          db_message(res, line, sizeof(line)));
        PQclear(res);
        PQfinish(c);
        return r;
    }
    bool got = !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    if (!got) {
        char *holder = NULL;
        baton_err_t herr = {0};
        if (db_lock_holder_on(c, &holder, &herr) < 0)
            holder = NULL;
        r = baton_err_set(err, -EBUSY,
                          "the database of %s is being dumped or migrated by %s: one migration "
                          "at a time per database",
                          svc->name, holder && *holder ? holder : "another session");
        free(holder);
        PQfinish(c);
        return r;
    }
    *ret_conn = c;
    return 0;
}

void db_lock_release(PGconn **conn_p)
{
    if (conn_p && *conn_p) {
        PQfinish(*conn_p);
        *conn_p = NULL;
    }
}
