/* step_dump: back up the service's database before anything changes it, and restore it.
 *
 * Dump: pg_dump --format=custom streams through SHA-256 into BACKUP_DIR/SERVICE+ROLLOUT.dump
 * in one pass (written as .partial, fsynced, renamed), then `pg_restore --list` proves the
 * archive is readable. Size and digest go into the state: no migration runs without them.
 *
 * Shared database: when another node of the rollout already dumped and migrated this very
 * database (Step.shared_from), no second dump is taken; the bookkeeping table must hold exactly
 * the ids that node's migration left, and the schema stays that node's to undo.
 *
 * The migration lock (db_lock.h) is taken before the dump (or already at the stop, Step.lock)
 * and kept until the migration's Result is recorded: no one else dumps or migrates the
 * database in between.
 *
 * Restore (the fallback of a rollback): `pg_restore --clean` alone would leave behind objects
 * the failed upgrade created (they are not in the dump), so the restore script runs in ONE
 * transaction after dropping every schema the database has: all of it or nothing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "command.h"
#include "db.h"
#include "db_lock.h"
#include "step.h"
#include "fsutil.h"
#include "proc.h"
#include "pgtools.h"

struct dump_sink {
    step_ctx_t *ctx;        /* for progress */
    int fd;                 /* the .partial file */
    digest_t digest;        /* of everything written */
    uint64_t size;          /* bytes written */
    uint64_t next_progress; /* size at which to report next */
    int error;              /* errno of a failed write */
};

static int sink_write(const void *buf, size_t len, void *userdata)
{
    struct dump_sink *s = userdata;
    const char *p = buf;
    size_t left = len;
    while (left) {
        ssize_t n = write(s->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            s->error = errno;
            return -1;
        }
        p += n;
        left -= (size_t)n;
    }
    digest_update(&s->digest, buf, len);
    s->size += len;
    if (s->size >= s->next_progress) {
        step_progress(s->ctx, "%llu KiB dumped", (unsigned long long)(s->size >> 10));
        s->next_progress = s->size + 8 * 1024 * 1024;
    }
    return 0;
}

static void sink_tick(void *userdata)
{
    step_tick(((struct dump_sink *)userdata)->ctx);
}

bool ids_equal(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]))
            return false;
    return true;
}

/* "a, b, c" of a list, into buf (cut when long). */
static const char *list_text(char **ids, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < len; i++) {
        int k = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", ids[i]);
        if (k < 0)
            break;
        used += (size_t)k < len - used ? (size_t)k : len - used - 1;
    }
    return n ? buf : "none";
}

int shared_check(step_ctx_t *ctx, char **expect, size_t n_expect, baton_err_t *err)
{
    return shared_check_ids(ctx, expect, n_expect, NULL, err);
}

int shared_check_ids(step_ctx_t *ctx, char **expect, size_t n_expect, const char *version,
                     baton_err_t *err)
{
    char **now = NULL;
    size_t n_now = 0;
    int r = db_migration_ids(ctx->svc, &now, &n_now, err);
    if (r < 0)
        return r;
    if (!ids_equal(now, n_now, expect, n_expect)) {
        char a[256], b[256];
        if (version)
            r = baton_err_set(err, -ESTALE,
                              "the database holds migrations %s, but %s had %s here: the "
                              "downgrade did not bring the schema back to it",
                              list_text(now, n_now, a, sizeof(a)), version,
                              list_text(expect, n_expect, b, sizeof(b)));
        else
            r = baton_err_set(err, -ESTALE,
                              "the shared database holds migrations %s, but %s left %s: someone "
                              "else changed it",
                              list_text(now, n_now, a, sizeof(a)), ctx->st->shared_from,
                              list_text(expect, n_expect, b, sizeof(b)));
    }
    svc_state_clear_list(&ctx->out.ids, &ctx->out.n_ids); /* what is there now, once */
    for (size_t i = 0; r == 0 && i < n_now; i++)
        if (svc_state_push(&ctx->out.ids, &ctx->out.n_ids, now[i]) < 0)
            r = baton_err_set(err, -ENOMEM, "out of memory");
    svc_state_clear_list(&now, &n_now);
    return r;
}

static int dump_shared(step_ctx_t *ctx, const Baton__Step *req, baton_err_t *err)
{
    svc_state_t *st = ctx->st;
    if (req->n_expect_ids > STATE_IDS_MAX)
        return baton_err_set(err, -E2BIG, "expect_ids: more than %d ids", STATE_IDS_MAX);
    if (svc_state_set(&st->shared_from, req->shared_from) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    svc_state_clear_list(&st->expect_ids, &st->n_expect_ids);
    for (size_t i = 0; i < req->n_expect_ids; i++)
        if (svc_state_push(&st->expect_ids, &st->n_expect_ids, req->expect_ids[i]) < 0)
            return baton_err_set(err, -ENOMEM, "out of memory");
    step_progress(ctx, "shared database: %s dumped and migrated it; checking its migrations",
                  req->shared_from);
    /* Held by this very step already (taken by its stop): then no one else holds it. */
    int r = ctx->db_lock && *ctx->db_lock ? 0 : db_lock_check_free(ctx->svc, err);
    if (r == 0)
        r = shared_check(ctx, st->expect_ids, st->n_expect_ids, err);
    if (r < 0) {
        /* Not shared after all: nothing of this step stays on record. */
        svc_state_set(&st->shared_from, "");
        svc_state_clear_list(&st->expect_ids, &st->n_expect_ids);
        return r;
    }
    ctx->out.shared = true;
    return 0;
}

/* The pre-flight found room for the dump; since then another service on this node (its lanes
 * run side by side) may have taken it: asked again on the lock's open connection, which costs
 * no connection set-up inside the downtime. */
static int room_still_there(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    if (!ctx->db_lock || !*ctx->db_lock)
        return 0;
    PGresult *res = PQexec(*ctx->db_lock, "SELECT pg_database_size(current_database())");
    uint64_t db_bytes = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
                            ? strtoull(PQgetvalue(res, 0, 0), NULL, 10)
                            : 0;
    PQclear(res);
    struct statvfs vfs;
    if (db_bytes == 0 || statvfs(svc->backup_dir, &vfs) < 0)
        return 0; /* unknown: pg_dump's own failure on a full disk says it */
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (avail >= dump_room(db_bytes))
        return 0;
    return baton_err_set(err, -ENOSPC,
                         "backup folder %s has %llu MiB free now; a dump of the %llu MiB database "
                         "needs about %llu MiB (something took the room since the pre-flight)",
                         svc->backup_dir, (unsigned long long)(avail >> 20),
                         (unsigned long long)(db_bytes >> 20),
                         (unsigned long long)(dump_room(db_bytes) >> 20));
}

int step_dump(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    svc_state_t *st = ctx->st;
    char path[PATH_MAX], partial[PATH_MAX + 16];
    const Baton__Step *req = ctx->req->dump;
    if (req && *req->shared_from)
        return dump_shared(ctx, req, err);
    /* SERVICE+ROLLOUT.dump: '+' is in neither a service name nor a rollout id, so the pruning
     * of one service never takes another's dumps from a shared folder. */
    if (snprintf(path, sizeof(path), "%s/%s+%s.dump", svc->backup_dir, svc->name, st->rollout_id) >=
        (int)sizeof(path))
        return baton_err_set(err, -ENAMETOOLONG, "dump path too long");
    snprintf(partial, sizeof(partial), "%s.partial", path);
    int r = fs_mkdir_p(svc->backup_dir, 0700, err);
    if (r < 0 || (r = fs_dir_root_only(svc->backup_dir, err)) < 0 ||
        (r = step_lock(ctx, err)) < 0 || (r = room_still_there(ctx, err)) < 0)
        return r;

    struct dump_sink sink = {.ctx = ctx, .next_progress = 8 * 1024 * 1024};
    if ((sink.fd = fs_create_new(partial, O_WRONLY, 0600, err)) < 0)
        return sink.fd;
    digest_init(&sink.digest);

    step_progress(ctx, "pg_dump to %s", path);
    char tool[PATH_MAX];
    const char *argv[] = {pgtools_path(svc, PGTOOL_DUMP, tool, sizeof(tool)), "--format=custom",
                          "--dbname", svc->database, NULL};
    struct proc_opts o = {.argv = argv,
                          .env_add = svc->pg_env,
                          .pidfile = ctx->pidfile,
                          .timeout_ms = svc->timeout_dump_ms,
                          .on_stdout = sink_write,
                          .tick = sink_tick,
                          .userdata = &sink};
    struct proc_result res;
    r = proc_run(&o, &res, err);
    if (r < 0 && sink.error)
        r = baton_err_set(err, -sink.error, "write %s: %s", partial, strerror(sink.error));
    if (r == 0 && (res.exit_code != 0 || res.timed_out)) {
        char why[PROC_TAIL_MAX + 64];
        proc_describe(&res, o.timeout_ms, why, sizeof(why));
        r = baton_err_set(err, -EIO, "pg_dump: %s", why);
    }
    if (r == 0 && fsync(sink.fd) < 0)
        r = baton_err_set(err, -errno, "fsync %s: %s", partial, strerror(errno));
    close(sink.fd);
    if (r == 0 && rename(partial, path) < 0)
        r = baton_err_set(err, -errno, "rename %s -> %s: %s", partial, path, strerror(errno));
    if (r < 0) {
        unlink(partial);
        return r;
    }
    if ((r = fs_fsync_parent(path, err)) < 0)
        return r;

    /* A dump that pg_restore cannot read is no backup. */
    step_progress(ctx, "verifying dump with pg_restore --list");
    const char *list[] = {pgtools_path(svc, PGTOOL_RESTORE, tool, sizeof(tool)), "--list", path,
                          NULL};
    if ((r = command_run(ctx, svc, list, svc->timeout_dump_ms, "pg_restore --list", NULL, err)) <
        0) {
        unlink(path);
        return r;
    }
    char hex[DIGEST_HEX_LEN + 1];
    digest_final_hex(&sink.digest, hex);
    if (svc_state_set(&st->dump_path, path) < 0 || svc_state_set(&st->dump_sha256, hex) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    st->dump_size = sink.size;
    return 0;
}

/* True when the restore script creates schema public itself (it was dropped and recreated
 * once); pg_dump otherwise assumes it exists with PostgreSQL's defaults. */
static bool script_creates_public(const char *script)
{
    FILE *f = fopen(script, "re");
    char line[256];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f))
        found = !strncmp(line, "CREATE SCHEMA public;", 21);
    if (f)
        fclose(f);
    return found;
}

/* The SQL that empties the database before the restore script runs, in the same transaction:
 * every schema but the system ones, dropped with what they hold, and schema public made again
 * exactly as initdb makes it, since that is what a dump expects to find. */
static int drop_schemas_sql(const svc_config_t *svc, bool recreate_public, char **ret_sql,
                            baton_err_t *err)
{
    PGconn *c = NULL;
    int r = db_connect(svc, &c, err);
    if (r < 0)
        return r;
    PGresult *res = PQexec(c, "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                              "AND nspname <> 'information_schema' ORDER BY nspname");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char line[256];
        r = baton_err_set(err, -EIO, "list schemas: %s", db_message(res, line, sizeof(line)));
        goto out;
    }
    size_t cap = 64, len = 0;
    char *sql = malloc(cap);
    if (!sql) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    sql[0] = '\0';
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 0);
        char *ident = PQescapeIdentifier(c, name, strlen(name));
        size_t need = len + strlen(ident ? ident : "") + 40;
        if (ident && need > cap) {
            char *grown = realloc(sql, need * 2); /* on failure sql is still ours to free */
            if (grown)
                sql = grown, cap = need * 2;
            else
                PQfreemem(ident), ident = NULL;
        }
        if (!ident) {
            free(sql);
            r = baton_err_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        len += (size_t)snprintf(sql + len, cap - len, "DROP SCHEMA %s CASCADE;\n", ident);
        PQfreemem(ident);
    }
    if (recreate_public) {
        /* PostgreSQL 15 made pg_database_owner own public and took CREATE from PUBLIC. */
        const char *create = PQserverVersion(c) >= 150000
                                 ? "CREATE SCHEMA public AUTHORIZATION pg_database_owner;\n"
                                   "GRANT USAGE ON SCHEMA public TO PUBLIC;\n"
                                 : "CREATE SCHEMA public;\nGRANT ALL ON SCHEMA public TO PUBLIC;\n";
        size_t need = len + strlen(create) + 64;
        if (need > cap) {
            char *grown = realloc(sql, need);
            if (!grown) {
                free(sql);
                r = baton_err_set(err, -ENOMEM, "out of memory");
                goto out;
            }
            sql = grown, cap = need;
        }
        len += (size_t)snprintf(sql + len, cap - len,
                                "%sCOMMENT ON SCHEMA public IS "
                                "'standard public schema';\n",
                                create);
    }
    *ret_sql = sql;
    r = 0;
out:
    PQclear(res);
    PQfinish(c);
    return r;
}

int dump_restore(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_state_t *st = ctx->st;
    if (!*st->dump_path)
        return baton_err_set(err, -ENOENT, "no dump of this rollout to restore");
    return dump_restore_file(ctx, st->dump_path, st->dump_sha256, err);
}

int dump_restore_file(step_ctx_t *ctx, const char *path, const char *sha256, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    char hex[DIGEST_HEX_LEN + 1], script[PATH_MAX + 16];
    int r;
    /* Restore only what we verified: the file must be the very dump we wrote. */
    if (sha256 && *sha256) {
        if ((r = digest_file(path, hex, NULL, err)) < 0)
            return r;
        if (strcmp(hex, sha256))
            return baton_err_set(err, -EBADMSG, "dump %s has sha256 %s, recorded %s: not restoring",
                                 path, hex, sha256);
    }
    /* Never under clients that are still using the database (other nodes serving from it),
     * whatever the coordinator asked: the server says who is connected. */
    if ((r = db_refuse_other_clients(svc, err)) < 0)
        return r;
    snprintf(script, sizeof(script), "%s.restore.sql", path);
    step_progress(ctx, "restoring %s", path);
    char tool[PATH_MAX];
    const char *to_sql[] = {pgtools_path(svc, PGTOOL_RESTORE, tool, sizeof(tool)), "--file", script,
                            path, NULL};
    if ((r = command_run(ctx, svc, to_sql, svc->timeout_restore_ms, "pg_restore", NULL, err)) < 0)
        goto out;
    char *drop = NULL;
    if ((r = drop_schemas_sql(svc, !script_creates_public(script), &drop, err)) < 0)
        goto out;
    const char *psql[] = {pgtools_path(svc, PGTOOL_PSQL, tool, sizeof(tool)),
                          "--no-psqlrc",
                          "--quiet",
                          "--single-transaction",
                          "--set",
                          "ON_ERROR_STOP=1",
                          "--dbname",
                          svc->database,
                          "--command",
                          drop,
                          "--file",
                          script,
                          NULL};
    r = command_run(ctx, svc, psql, svc->timeout_restore_ms, "restore", NULL, err);
    free(drop);
out:
    unlink(script);
    return r;
}
