/* journal_pg: journals in a PostgreSQL database (`--journal postgresql://…`), the one operators
 * already run, so that several controllers share them: any of them can list a rollout, follow
 * it, abort it, or resume it after the one driving it died.
 *
 *   baton_journal (rollout_id, seq, at, line)   one row per event, in order (seq)
 *   baton_request (rollout_id, what)            continue / abort, for the driving coordinator
 *
 * Each event is its own INSERT, durable when it returns (synchronous_commit, the default). The
 * driving coordinator holds a session advisory lock keyed by the rollout id on its own
 * connection: a coordinator that dies loses it with its connection, so another one may resume.
 * The tables are created on first use, under a transaction advisory lock so that two
 * coordinators starting at once do not race on CREATE. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal_backend.h"
#include "names.h"

#define LOCK_KEY "hashtextextended('baton-rollout:' || $1, 0)"

static int pg_fail(PGconn *c, PGresult *res, int code, baton_err_t *err, const char *what)
{
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c);
    int r = baton_err_set(err, code, "journal database: %s: %.*s", what,
                          (int)strcspn(msg ? msg : "", "\n"), msg ? msg : "");
    PQclear(res);
    return r;
}

/* Runs one statement with text parameters; the result on success (PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK), NULL with err set otherwise. */
static PGresult *run(PGconn *c, const char *sql, int n, const char *const *params, baton_err_t *err)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pg_fail(c, res, -EIO, err, sql);
        return NULL;
    }
    return res;
}

static int connect_db(journal_store_t *s, PGconn **ret, baton_err_t *err)
{
    PGconn *c = PQconnectdb(s->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        int r = pg_fail(c, NULL, -EHOSTUNREACH, err, "connect");
        PQfinish(c);
        return r;
    }
    static const char schema[] =
        "BEGIN;"
        "SELECT pg_advisory_xact_lock(hashtextextended('baton-journal-schema', 0));"
        "CREATE TABLE IF NOT EXISTS baton_journal ("
        "  rollout_id text NOT NULL,"
        "  seq bigint GENERATED ALWAYS AS IDENTITY,"
        "  at timestamptz NOT NULL DEFAULT now(),"
        "  line text NOT NULL,"
        "  PRIMARY KEY (rollout_id, seq));"
        "CREATE TABLE IF NOT EXISTS baton_request ("
        "  rollout_id text NOT NULL,"
        "  what text NOT NULL,"
        "  PRIMARY KEY (rollout_id, what));"
        "COMMIT;";
    PGresult *res = PQexec(c, schema);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        int r = pg_fail(c, res, -EIO, err, "create tables");
        PQfinish(c);
        return r;
    }
    PQclear(res);
    *ret = c;
    return 0;
}

/* The store's own connection, for everything but the lock; reconnected when it broke. */
static PGconn *store_conn(journal_store_t *s, baton_err_t *err)
{
    if (s->conn && PQstatus(s->conn) != CONNECTION_OK) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    if (!s->conn && connect_db(s, &s->conn, err) < 0)
        return NULL;
    return s->conn;
}

static int pg_open(journal_store_t *s, const char *id, journal_t *j, baton_err_t *err)
{
    if (!rollout_id_valid(id))
        return baton_err_set(err, -EINVAL, "'%s' is not a rollout id", id);
    int r = connect_db(s, &j->conn, err);
    if (r < 0)
        return r;
    const char *p[] = {id};
    PGresult *res = run(j->conn, "SELECT pg_try_advisory_lock(" LOCK_KEY ")", 1, p, err);
    if (!res)
        return -EIO;
    bool got = !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    if (!got)
        return baton_err_set(err, -EBUSY,
                             "rollout %s is driven by another coordinator (its lock in the "
                             "journal database is held)",
                             id);
    return 0;
}

static int pg_append(journal_t *j, const char *line, baton_err_t *err)
{
    const char *p[] = {j->id, line};
    PGresult *res =
        run(j->conn, "INSERT INTO baton_journal (rollout_id, line) VALUES ($1, $2)", 2, p, err);
    if (!res)
        return -EIO;
    PQclear(res);
    return 0;
}

static void pg_close(journal_t *j)
{
    PQfinish(j->conn); /* releases the advisory lock */
}

static int pg_each_line(journal_store_t *s, const char *id, journal_line_fn fn, void *userdata,
                        baton_err_t *err)
{
    PGconn *c = store_conn(s, err);
    if (!c)
        return -EIO;
    const char *p[] = {id};
    PGresult *res =
        run(c, "SELECT line FROM baton_journal WHERE rollout_id = $1 ORDER BY seq", 1, p, err);
    if (!res)
        return -EIO;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        fn(PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0), userdata);
    PQclear(res);
    if (n == 0)
        return baton_err_set(err, -ENOENT, "no journal of rollout %s (in %s)", id, s->where);
    return 0;
}

static int pg_list(journal_store_t *s, char ***ret_ids, size_t *ret_n, baton_err_t *err)
{
    PGconn *c = store_conn(s, err);
    if (!c)
        return -EIO;
    PGresult *res = run(c,
                        "SELECT rollout_id FROM baton_journal GROUP BY rollout_id "
                        "ORDER BY max(at) DESC, rollout_id DESC LIMIT 10000",
                        0, NULL, err);
    if (!res)
        return -EIO;
    size_t n = (size_t)PQntuples(res);
    char **ids = n ? calloc(n, sizeof(char *)) : NULL;
    if (n && !ids) {
        PQclear(res);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = PQgetvalue(res, (int)i, 0);
        if (rollout_id_valid(id) && (ids[k] = strdup(id)))
            k++;
    }
    PQclear(res);
    *ret_ids = ids;
    *ret_n = k;
    return 0;
}

static int pg_probe_lock(journal_store_t *s, const char *id, baton_err_t *err)
{
    PGconn *c = store_conn(s, err);
    if (!c)
        return -EIO;
    const char *p[] = {id};
    PGresult *res = run(c, "SELECT pg_try_advisory_lock(" LOCK_KEY ")", 1, p, err);
    if (!res)
        return -EIO;
    bool got = !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    if (!got)
        return -EBUSY;
    res = run(c, "SELECT pg_advisory_unlock(" LOCK_KEY ")", 1, p, err);
    PQclear(res);
    return 0;
}

static int pg_request(journal_store_t *s, const char *id, const char *what, baton_err_t *err)
{
    PGconn *c = store_conn(s, err);
    if (!c)
        return -EIO;
    const char *p[] = {id, what};
    PGresult *res = run(c,
                        "INSERT INTO baton_request (rollout_id, what) VALUES ($1, $2) "
                        "ON CONFLICT DO NOTHING",
                        2, p, err);
    if (!res)
        return -EIO;
    PQclear(res);
    return 0;
}

static bool pg_take(journal_store_t *s, const char *id, const char *what)
{
    baton_err_t err = {0};
    PGconn *c = store_conn(s, &err);
    if (!c)
        return false;
    const char *p[] = {id, what};
    PGresult *res = run(c,
                        "DELETE FROM baton_request WHERE rollout_id = $1 AND what = $2 "
                        "RETURNING 1",
                        2, p, &err);
    bool there = res && PQntuples(res) > 0;
    PQclear(res);
    return there;
}

const struct journal_backend journal_pg_backend = {
    .open = pg_open,
    .append = pg_append,
    .close = pg_close,
    .each_line = pg_each_line,
    .list = pg_list,
    .probe_lock = pg_probe_lock,
    .request = pg_request,
    .take = pg_take,
};
