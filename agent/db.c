/* db: the agent's few queries, through libpq with parameters, never SQL built from input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"
#include "state.h"

int db_connect(const svc_config_t *svc, PGconn **ret_conn, baton_err_t *err)
{
    /* expand_dbname: "dbname" holds the whole conninfo; the passfile keeps the password off
     * the config and off every command line. */
    const char *keys[] = {"dbname", "passfile", "connect_timeout", NULL};
    const char *vals[] = {svc->database, svc->passfile, "10", NULL};
    if (!svc->passfile) {
        keys[1] = "connect_timeout", vals[1] = "10";
        keys[2] = NULL, vals[2] = NULL;
    }
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c)
        return baton_err_set(err, -ENOMEM, "database of %s: out of memory", svc->name);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = '\0';
        PQfinish(c);
        return baton_err_set(err, -ECONNREFUSED, "database of %s unreachable: %s", svc->name, msg);
    }
    *ret_conn = c;
    return 0;
}

int db_migration_ids(const svc_config_t *svc, char ***ret_ids, size_t *ret_n, baton_err_t *err)
{
    PGconn *c = NULL;
    int r = db_connect(svc, &c, err);
    if (r < 0)
        return r;
    char *ident = PQescapeIdentifier(c, svc->migration_table, strlen(svc->migration_table));
    char *sql = NULL;
    if (!ident || asprintf(&sql, "SELECT id FROM %s ORDER BY id", ident) < 0) {
        PQfreemem(ident);
        PQfinish(c);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    PQfreemem(ident);
    PGresult *res = PQexec(c, sql);
    free(sql);
    char **ids = NULL;
    size_t n = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (!state || strcmp(state, "42P01")) { /* 42P01: no table yet = nothing applied */
            r = baton_err_set(err, -EIO, "read %s: %s", svc->migration_table,
                              PQresultErrorMessage(res));
            goto out;
        }
    } else {
        for (int i = 0; i < PQntuples(res); i++)
            if ((r = svc_state_push(&ids, &n, PQgetvalue(res, i, 0))) < 0) {
                r = baton_err_set(err, r, "read %s: too many ids", svc->migration_table);
                goto out;
            }
    }
    *ret_ids = ids;
    *ret_n = n;
    ids = NULL;
    n = 0;
    r = 0;
out:
    svc_state_clear_list(&ids, &n);
    PQclear(res);
    PQfinish(c);
    return r;
}

int db_size(const svc_config_t *svc, uint64_t *ret_bytes, baton_err_t *err)
{
    PGconn *c = NULL;
    int r = db_connect(svc, &c, err);
    if (r < 0)
        return r;
    PGresult *res = PQexec(c, "SELECT pg_database_size(current_database())");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        r = baton_err_set(err, -EIO, "size of database: %s", PQresultErrorMessage(res));
    else
        *ret_bytes = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(c);
    return r;
}
