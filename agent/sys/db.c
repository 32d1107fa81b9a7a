/* db: the agent's few queries, through libpq with parameters, never SQL built from input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db.h"
#include "db_lock.h"
#include "state.h"

/* A peer that vanished without a word (a power cut: the link goes dark before anything closes
 * the connection) is noticed in seconds on both ends, not after the kernel's two hours: the
 * agent's side by libpq's keepalives and TCP user timeout, the server's side by the same
 * settings asked for the session (so that a dead agent's migration lock is let go of). The
 * session also waits at most DB_LOCK_TIMEOUT for a lock, instead of hanging behind a
 * migration; none of this applies to a Unix socket, where no peer can vanish so. */
#define DB_KEEPALIVE_IDLE "10"
#define DB_KEEPALIVE_INTERVAL "5"
#define DB_KEEPALIVE_COUNT "3"
#define DB_USER_TIMEOUT_MS "30000"
#define DB_LOCK_TIMEOUT "10s"
/* (Not tcp_user_timeout on the server's side: PostgreSQL before 12 refuses the setting, and an
 * idle session, which is what a dead agent leaves, has no unacknowledged data for it to time.) */
static const char server_options[] =
    "-c tcp_keepalives_idle=" DB_KEEPALIVE_IDLE " -c tcp_keepalives_interval=" DB_KEEPALIVE_INTERVAL
    " -c tcp_keepalives_count=" DB_KEEPALIVE_COUNT " -c lock_timeout=" DB_LOCK_TIMEOUT;

/* The conninfo's own `options`, if it has any, so that ours are added, not put in its place. */
static char *conninfo_options(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    char *own = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "options") && o->val && *o->val)
            own = strdup(o->val);
    PQconninfoFree(opts);
    return own;
}

int db_connect_as(const svc_config_t *svc, const char *application_name, PGconn **ret_conn,
                  baton_err_t *err)
{
    /* expand_dbname: "dbname" holds the whole conninfo; the passfile keeps the password off
     * the config and off every command line. Later keywords override the conninfo's. */
    /* Ours after what the operator gave (PGOPTIONS, then the conninfo's): an explicit
     * `options` would otherwise replace both. */
    char *own = conninfo_options(svc->database), *options = NULL;
    const char *env = getenv("PGOPTIONS");
    if (asprintf(&options, "%s%s%s%s%s", env ? env : "", env ? " " : "", own ? own : "",
                 own ? " " : "", server_options) < 0)
        options = NULL;
    free(own);
    if (!options)
        return baton_err_set(err, -ENOMEM, "database of %s: out of memory", svc->name);
    const char *keys[12], *vals[12];
    size_t k = 0;
    keys[k] = "dbname", vals[k++] = svc->database;
    keys[k] = "connect_timeout", vals[k++] = "10";
    keys[k] = "keepalives", vals[k++] = "1";
    keys[k] = "keepalives_idle", vals[k++] = DB_KEEPALIVE_IDLE;
    keys[k] = "keepalives_interval", vals[k++] = DB_KEEPALIVE_INTERVAL;
    keys[k] = "keepalives_count", vals[k++] = DB_KEEPALIVE_COUNT;
    keys[k] = "tcp_user_timeout", vals[k++] = DB_USER_TIMEOUT_MS;
    keys[k] = "options", vals[k++] = options;
    if (svc->passfile)
        keys[k] = "passfile", vals[k++] = svc->passfile;
    if (application_name)
        keys[k] = "application_name", vals[k++] = application_name;
    keys[k] = NULL, vals[k] = NULL;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    free(options);
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

int db_connect(const svc_config_t *svc, PGconn **ret_conn, baton_err_t *err)
{
    return db_connect_as(svc, NULL, ret_conn, err);
}

const char *db_message(const PGresult *res, char *buf, size_t len)
{
    snprintf(buf, len, "%s", PQresultErrorMessage(res));
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static int identity_on(PGconn *c, const svc_config_t *svc, char **ret_id, baton_err_t *err)
{
    int r = 0;
    /* The server's system_identifier names one PostgreSQL cluster whatever address or alias
     * reaches it (two conninfo strings that differ may well be one database). It needs
     * superuser or pg_monitor; a role without either is told what to grant, since guessing
     * from the conninfo text would call one database two. */
    PGresult *res = PQexec(c, "SELECT system_identifier::text || '/' || current_database() "
                              "FROM pg_control_system()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        char msg[256];
        r = baton_err_set(err, -EIO, "identity of the database of %s: %s%s", svc->name,
                          db_message(res, msg, sizeof(msg)),
                          state && !strcmp(state, "42501")
                              ? " (grant the role pg_monitor: baton tells shared databases "
                                "apart by the server's system_identifier)"
                              : "");
    } else if (!(*ret_id = strdup(PQgetvalue(res, 0, 0)))) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
    }
    PQclear(res);
    return r;
}

int db_migration_ids_on(PGconn *c, const svc_config_t *svc, char ***ret_ids, size_t *ret_n,
                        baton_err_t *err)
{
    int r = 0;
    char *ident = PQescapeIdentifier(c, svc->migration_table, strlen(svc->migration_table));
    char *sql = NULL;
    if (!ident || asprintf(&sql, "SELECT id FROM %s ORDER BY id", ident) < 0) {
        PQfreemem(ident);
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
            char line[256];
            r = baton_err_set(err, -EIO, "read %s: %s", svc->migration_table,
                              db_message(res, line, sizeof(line)));
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
    return r;
}

int db_migration_ids(const svc_config_t *svc, char ***ret_ids, size_t *ret_n, baton_err_t *err)
{
    PGconn *c = NULL;
    int r = db_connect(svc, &c, err);
    if (r < 0)
        return r;
    r = db_migration_ids_on(c, svc, ret_ids, ret_n, err);
    PQfinish(c);
    return r;
}

static int size_on(PGconn *c, uint64_t *ret_bytes, baton_err_t *err)
{
    int r = 0;
    PGresult *res = PQexec(c, "SELECT pg_database_size(current_database())");
    char line[256];
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        r = baton_err_set(err, -EIO, "size of database: %s", db_message(res, line, sizeof(line)));
    else
        *ret_bytes = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return r;
}

int db_survey(const svc_config_t *svc, db_survey_t *ret, baton_err_t *err)
{
    PGconn *c = NULL;
    *ret = (db_survey_t){0};
    int r = db_connect(svc, &c, err);
    if (r < 0)
        return r;
    ret->server_major = PQserverVersion(c) / 10000; /* 150018 -> 15; 90624 -> 9 */
    if ((r = size_on(c, &ret->bytes, err)) < 0 ||
        (r = db_migration_ids_on(c, svc, &ret->ids, &ret->n_ids, err)) < 0 ||
        (r = identity_on(c, svc, &ret->identity, err)) < 0 ||
        (r = db_lock_holder_on(c, &ret->lock_holder, err)) < 0)
        db_survey_clear(ret);
    PQfinish(c);
    return r;
}

void db_survey_clear(db_survey_t *s)
{
    svc_state_clear_list(&s->ids, &s->n_ids);
    free(s->identity);
    free(s->lock_holder);
    *s = (db_survey_t){0};
}

int db_refuse_other_clients(const svc_config_t *svc, baton_err_t *err)
{
    PGconn *c = NULL;
    int r = db_connect(svc, &c, err);
    if (r < 0)
        return r;
    /* Client sessions on this very database but ours and the agents' (the lock sessions, named
     * "baton-agent NODE ROLLOUT", write nothing a restore would lose). A service stopped a
     * moment ago may still have its session ending: asked again for up to 5 s. */
    for (int tries = 0;; tries++) {
        PGresult *res = PQexec(
            c, "SELECT count(*), coalesce(string_agg(DISTINCT coalesce(nullif(application_name, "
               "''), 'unnamed') || ' from ' || coalesce(host(client_addr), 'a local socket'), "
               "', '), '') FROM pg_stat_activity WHERE datname = current_database() "
               "AND pid <> pg_backend_pid() "
               /* Another role's sessions show no backend_type to a role without
                * pg_read_all_stats: counted as clients (a background worker has no user). */
               "AND coalesce(backend_type, 'client backend') = 'client backend' "
               "AND usename IS NOT NULL "
               "AND coalesce(application_name, '') NOT LIKE 'baton-agent %'");
        char line[256];
        int n = -1;
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
            r = baton_err_set(err, -EIO, "read pg_stat_activity: %s",
                              db_message(res, line, sizeof(line)));
        else if ((n = atoi(PQgetvalue(res, 0, 0))) > 0 && tries >= 25)
            r = baton_err_set(err, -EBUSY,
                              "not restoring the dump: %d other client session(s) use the "
                              "database (%.400s); a restore would lose what they write. Stop "
                              "them first",
                              n, PQgetvalue(res, 0, 1));
        PQclear(res);
        if (r < 0 || n == 0)
            break;
        usleep(200 * 1000);
    }
    PQfinish(c);
    return r;
}
