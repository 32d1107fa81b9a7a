/* journal_pg: journals in a PostgreSQL database (`--journal postgresql://…`), the one operators
 * already run, so that several controllers share them: any of them can list a rollout, follow
 * it, abort it, or resume it after the one driving it died.
 *
 *   baton_journal (rollout_id, seq, at, line)   one row per event, in order (seq)
 *   baton_request (rollout_id, what)            continue / abort, for the driving coordinator
 *   baton_freeze (service, record)              `baton freeze`: rollouts of it are refused
 *
 * Each event is its own INSERT, durable when it returns (synchronous_commit, the default). The
 * driving coordinator holds a session advisory lock keyed by the rollout id on its own
 * connection: a coordinator that dies loses it with its connection, so another one may resume.
 * The tables are created on first use, under a transaction advisory lock so that two
 * coordinators starting at once do not race on CREATE (and quietly: no NOTICE that they exist).
 *
 * The database may go away for a while (a restart, a failover): a line that cannot be stored is
 * held, in memory and in a spool file under the state folder (fsynced), and the rollout goes on;
 * each later append, and journal_sync() at the end, tries the database again (backing off from
 * 250 ms to 5 s), takes the rollout's lock again and writes the held lines in order. Only when
 * it stays away JOURNAL_GRACE_MS does an append fail, and the rollout stop after its steps in
 * flight, as with any journal that cannot be written. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "clock.h"
#include "interrupt.h"

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

/* libpq's defaults would have an unreachable server hold the coordinator's loop for minutes:
 * a try gives up after 2 s (the grace, not one try, is what waits for the database). */
static PGconn *connect_quick(const char *conninfo)
{
    /* And a server that vanishes (a partition) is noticed in seconds, not TCP's minutes. */
    const char *keys[] = {"dbname",
                          "connect_timeout",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "tcp_user_timeout",
                          NULL};
    const char *vals[] = {conninfo, "2", "1", "10", "5", "3", "15000", NULL};
    return PQconnectdbParams(keys, vals, 1);
}

static int connect_db(journal_store_t *s, PGconn **ret, baton_err_t *err)
{
    PGconn *c = connect_quick(s->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        int r = pg_fail(c, NULL, -EHOSTUNREACH, err, "connect");
        PQfinish(c);
        return r;
    }
    static const char schema[] =
        "SET client_min_messages = warning;"
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
        "CREATE TABLE IF NOT EXISTS baton_freeze ("
        "  service text PRIMARY KEY,"
        "  record text NOT NULL);"
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

/* The store's own connection, for everything but the lock; reconnected when it broke, at most
 * every 2 s (the running rollout asks for requests twice a second). */
static PGconn *store_conn(journal_store_t *s, baton_err_t *err)
{
    if (s->conn && PQstatus(s->conn) != CONNECTION_OK) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    if (!s->conn && mono_ms() < s->conn_retry_ms) {
        baton_err_set(err, -EHOSTUNREACH, "journal database: unreachable a moment ago");
        return NULL;
    }
    if (!s->conn && connect_db(s, &s->conn, err) < 0) {
        s->conn_retry_ms = mono_ms() + 2000;
        return NULL;
    }
    return s->conn;
}

/* The rollout's lock on the journal's own session: a new connection, the lock taken on it;
 * -EBUSY with `taken` (naming the rollout) when another session holds it. */
static int connect_locked(journal_store_t *s, journal_t *j, const char *id, const char *taken,
                          baton_err_t *err)
{
    int r = connect_db(s, &j->conn, err);
    if (r < 0)
        return r;
    const char *p[] = {id};
    PGresult *res = run(j->conn, "SELECT pg_try_advisory_lock(" LOCK_KEY ")", 1, p, err);
    bool got = res && !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    if (got)
        return 0;
    /* No session without the lock: nothing may be written on one. */
    PQfinish(j->conn);
    j->conn = NULL;
    return res ? baton_err_set(err, -EBUSY, taken, id) : -EIO;
}

static int pg_open(journal_store_t *s, const char *id, journal_t *j, baton_err_t *err)
{
    if (!rollout_id_valid(id))
        return baton_err_set(err, -EINVAL, "'%s' is not a rollout id", id);
    return connect_locked(s, j, id,
                          "rollout %s is driven by another coordinator (its lock in the journal "
                          "database is held)",
                          err);
}

static int insert_line(journal_t *j, const char *line, baton_err_t *err)
{
    const char *p[] = {j->id, line};
    PGresult *res =
        run(j->conn, "INSERT INTO baton_journal (rollout_id, line) VALUES ($1, $2)", 2, p, err);
    if (!res)
        return -EIO;
    PQclear(res);
    return 0;
}

/* The database is away from now on: say so once, and try again from 250 ms on. */
static void went_away(journal_t *j)
{
    if (j->down_since_ms)
        return;
    fprintf(stderr,
            "baton: journal database away: holding events until it is back (at most "
            "%d s)\n",
            JOURNAL_GRACE_MS / 1000);
    j->down_since_ms = mono_ms();
    j->next_try_ms = j->down_since_ms + 250;
    j->tries = 0;
}

/* The held lines again in the spool file: a file of this outage's own (O_EXCL), rewritten whole
 * after a partial recovery, so that it always holds exactly what the database lacks. */
static void spool_write(journal_t *j)
{
    if (!j->store->spool_dir)
        return;
    if (!j->spool_path) {
        char *dir = NULL;
        if (asprintf(&dir, "%s/journal-spool", j->store->spool_dir) < 0)
            return;
        if (fs_mkdir_p(dir, 0700, NULL) < 0 ||
            asprintf(&j->spool_path, "%s/%s-%llu.jsonl", dir, j->id,
                     (unsigned long long)j->down_since_ms) < 0)
            j->spool_path = NULL;
        free(dir);
        if (!j->spool_path)
            return;
    }
    size_t len = 0;
    for (size_t i = 0; i < j->n_held; i++)
        len += strlen(j->held[i]) + 1;
    char *text = malloc(len + 1), *p = text;
    if (!text)
        return; /* still held in memory: the database coming back stores it all the same */
    for (size_t i = 0; i < j->n_held; i++)
        p += sprintf(p, "%s\n", j->held[i]);
    fs_write_atomic(j->spool_path, text, len, 0600, NULL);
    free(text);
}

/* Keeps a line that could not be stored: in memory, and in the spool file (durable). */
static int hold(journal_t *j, const char *line, baton_err_t *err)
{
    char **grown = realloc(j->held, (j->n_held + 1) * sizeof(char *));
    if (!grown || !(grown[j->n_held] = strdup(line))) {
        if (grown)
            j->held = grown;
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    j->held = grown;
    j->n_held++;
    went_away(j);
    spool_write(j);
    return 0;
}

/* The database again: a new session, the rollout's lock again (nobody may have taken it: its
 * holder was this coordinator), then every held line in order. Back when all are stored. */
static int recover(journal_t *j, baton_err_t *err)
{
    if (j->conn && PQstatus(j->conn) != CONNECTION_OK) {
        PQfinish(j->conn);
        j->conn = NULL;
    }
    if (!j->conn) {
        int r = connect_locked(j->store, j, j->id,
                               "journal database: another coordinator took rollout %s while the "
                               "database was away",
                               err);
        if (r < 0)
            return r == -EBUSY ? r : -EHOSTUNREACH;
    }
    size_t done = 0;
    int r = 0;
    while (done < j->n_held && (r = insert_line(j, j->held[done], err)) == 0)
        free(j->held[done++]);
    if (done) /* held is NULL while nothing was ever held */
        memmove(j->held, j->held + done, (j->n_held - done) * sizeof(char *));
    j->n_held -= done;
    if (j->n_held) {
        spool_write(j);
        return r;
    }
    fprintf(stderr, "baton: journal database back after %.1f s: %zu held events stored\n",
            (double)(mono_ms() - j->down_since_ms) / 1000.0, done);
    j->down_since_ms = 0;
    if (j->spool_path) {
        unlink(j->spool_path);
        free(j->spool_path);
        j->spool_path = NULL;
    }
    return 0;
}

/* One try when its time has come; -EIO once the grace is over and it is still away. */
static int try_recover(journal_t *j, baton_err_t *err)
{
    uint64_t now = mono_ms();
    if (j->down_since_ms && now >= j->next_try_ms) {
        baton_err_t rerr = {0};
        if (recover(j, &rerr) == -EBUSY)
            return baton_err_set(err, -EBUSY, "%s", rerr.msg);
        if (j->down_since_ms) {
            j->tries++;
            uint64_t wait = j->tries < 5 ? 250u << j->tries : 5000;
            j->next_try_ms = mono_ms() + (wait > 5000 ? 5000 : wait);
        }
    }
    if (j->down_since_ms && mono_ms() - j->down_since_ms >= JOURNAL_GRACE_MS)
        return baton_err_set(
            err, -EIO, "journal database away for %d s: %zu events not stored (kept in %s)",
            JOURNAL_GRACE_MS / 1000, j->n_held, j->spool_path ? j->spool_path : "memory");
    return 0;
}

static int pg_append(journal_t *j, const char *line, baton_err_t *err)
{
    if (!j->down_since_ms && j->conn && PQstatus(j->conn) == CONNECTION_OK) {
        baton_err_t ierr = {0};
        if (insert_line(j, line, &ierr) == 0)
            return 0;
        if (PQstatus(j->conn) == CONNECTION_OK) /* refused by a working database: an error */
            return baton_err_set(err, ierr.code, "%s", ierr.msg);
    }
    int r = hold(j, line, err);
    return r < 0 ? r : try_recover(j, err);
}

/* Twice a second from the rollout's loop: a database that went away while nothing was written
 * (a long step writes no line) is noticed within 2 s, and the rollout's lock taken back as soon
 * as it returns; until then another controller could believe the rollout's coordinator dead. */
static int pg_tick(journal_t *j, baton_err_t *err)
{
    uint64_t now = mono_ms();
    if (!j->down_since_ms && now >= j->next_check_ms) {
        j->next_check_ms = now + 2000;
        PGresult *res =
            j->conn && PQstatus(j->conn) == CONNECTION_OK ? PQexec(j->conn, "SELECT 1") : NULL;
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            went_away(j);
        PQclear(res);
    }
    return try_recover(j, err);
}

static int pg_sync(journal_t *j, baton_err_t *err)
{
    while (j->down_since_ms) {
        int r = try_recover(j, err);
        if (r < 0)
            return r;
        if (interrupt_count() >= 2)
            return baton_err_set(err, -EINTR,
                                 "interrupted twice while the journal database was "
                                 "away: %zu events not stored (kept in %s)",
                                 j->n_held, j->spool_path ? j->spool_path : "memory");
        uint64_t now = mono_ms();
        if (j->down_since_ms && j->next_try_ms > now)
            usleep((useconds_t)((j->next_try_ms - now) * 1000));
    }
    return 0;
}

static void pg_close(journal_t *j)
{
    PQfinish(j->conn); /* releases the advisory lock */
    for (size_t i = 0; i < j->n_held; i++)
        free(j->held[i]);
    free(j->held);
    free(j->spool_path); /* a spool left behind holds what the database never got */
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

/* One row's first column, copied; -ENOENT when there is no row. */
static int first_value(PGresult *res, char **ret, baton_err_t *err)
{
    if (PQntuples(res) < 1) {
        PQclear(res);
        return -ENOENT;
    }
    *ret = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return *ret ? 0 : baton_err_set(err, -ENOMEM, "out of memory");
}

static int pg_freeze_get(journal_store_t *s, const char *service, char **ret_record,
                         baton_err_t *err)
{
    PGconn *c = store_conn(s, err);
    if (!c)
        return -EIO;
    const char *p[] = {service};
    PGresult *res = run(c, "SELECT record FROM baton_freeze WHERE service = $1", 1, p, err);
    return res ? first_value(res, ret_record, err) : -EIO;
}

static int pg_freeze_put(journal_store_t *s, const char *service, const char *record,
                         char **ret_there, baton_err_t *err)
{
    PGconn *c = store_conn(s, err);
    if (!c)
        return -EIO;
    const char *p[] = {service, record};
    PGresult *res = run(c,
                        "INSERT INTO baton_freeze (service, record) VALUES ($1, $2) "
                        "ON CONFLICT DO NOTHING RETURNING 1",
                        2, p, err);
    if (!res)
        return -EIO;
    bool stored = PQntuples(res) > 0;
    PQclear(res);
    if (stored)
        return 0;
    if (pg_freeze_get(s, service, ret_there, err) < 0)
        *ret_there = NULL; /* gone again meanwhile: said as frozen by someone else */
    return -EEXIST;
}

static int pg_freeze_del(journal_store_t *s, const char *service, char **ret_there,
                         baton_err_t *err)
{
    PGconn *c = store_conn(s, err);
    if (!c)
        return -EIO;
    const char *p[] = {service};
    PGresult *res =
        run(c, "DELETE FROM baton_freeze WHERE service = $1 RETURNING record", 1, p, err);
    return res ? first_value(res, ret_there, err) : -EIO;
}

const struct journal_backend journal_pg_backend = {
    .open = pg_open,
    .append = pg_append,
    .sync = pg_sync,
    .tick = pg_tick,
    .close = pg_close,
    .each_line = pg_each_line,
    .list = pg_list,
    .probe_lock = pg_probe_lock,
    .request = pg_request,
    .take = pg_take,
    .freeze_put = pg_freeze_put,
    .freeze_get = pg_freeze_get,
    .freeze_del = pg_freeze_del,
};
