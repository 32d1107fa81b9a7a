/* rehearse: the upgrade guides' "try the upgrade on a second instance first", automated.
 *
 * Before anything is stopped: pg_dump of the live database (its snapshot is consistent while
 * the service runs), restored into a scratch database on the same server, the new binary's
 * migrate up run against that copy (rehearse_migrate, with {database} the copy's conninfo) and
 * timed, and the copy dropped whatever happened. A migration that fails on the copy fails the
 * pre-flight with the migration's own error: nothing was stopped. The scratch database is named
 * after the node and the service, so two nodes on one server never share one, and one left by a
 * crash is dropped by the next rehearsal. */
#include <errno.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "command.h"
#include "clock.h"
#include "conninfo.h"
#include "db.h"
#include "fsutil.h"
#include "proc.h"
#include "step.h"
#include "pgtools.h"

/* baton_rehearse_NODE_SERVICE, lower case, [a-z0-9_] only, at most 63 bytes. */
static void scratch_name(const char *node, const char *service, char *buf, size_t len)
{
    snprintf(buf, len, "baton_rehearse_%s_%s", node, service);
    for (char *p = buf; *p; p++)
        *p = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '_';
    if (strlen(buf) > 63)
        buf[63] = '\0';
}

static int exec_sql(PGconn *c, const char *sql, const char *what, baton_err_t *err)
{
    PGresult *res = PQexec(c, sql);
    int r = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char msg[256];
        r = baton_err_set(err, -EIO, "%s: %s", what, db_message(res, msg, sizeof(msg)));
    }
    PQclear(res);
    return r;
}

static int drop_scratch(PGconn *c, const char *ident, baton_err_t *err)
{
    char sql[160];
    /* FORCE (PostgreSQL 13) ends sessions a killed migration may have left on the copy. */
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s%s", ident,
             PQserverVersion(c) >= 130000 ? " WITH (FORCE)" : "");
    return exec_sql(c, sql, "drop the scratch database", err);
}

int rehearse(step_ctx_t *ctx, const char *binary, uint64_t *ret_ms, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    if (!svc->rehearse_migrate)
        return baton_err_set(err, -ENOTSUP,
                             "rehearse: the agent's config gives %s no rehearse_migrate command "
                             "(migrate up against {database} or {database_url})",
                             svc->name);
    /* The copy's dump goes where backups go, which a fresh node may not have yet (the
     * pre-flight creates it later; a plan never would). Root's only, as the pre-flight's. */
    int r0 = fs_mkdir_p(svc->backup_dir, 0700, err);
    if (r0 < 0 || (r0 = fs_dir_root_only(svc->backup_dir, err)) < 0)
        return r0;
    char name[64], file[PATH_MAX];
    scratch_name(ctx->cfg->node_name, svc->name, name, sizeof(name));
    if (snprintf(file, sizeof(file), "%s/.%s.rehearse.dump", svc->backup_dir, svc->name) >=
        (int)sizeof(file))
        return baton_err_set(err, -ENAMETOOLONG, "rehearsal dump path too long");
    PGconn *c = NULL;
    char *ident = NULL, *scratch = NULL, **argv = NULL;
    int r = db_connect(svc, &c, err);
    if (r < 0)
        return r;
    if (!(ident = PQescapeIdentifier(c, name, strlen(name))) ||
        !(scratch = conninfo_with_db(svc->database, name))) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    char sql[160];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0", ident);
    step_progress(ctx, "rehearsal: copying the database into %s", name);
    if ((r = drop_scratch(c, ident, err)) < 0 ||
        (r = exec_sql(c, sql, "create the scratch database", err)) < 0)
        goto out;
    char pg_dump[PATH_MAX], pg_restore[PATH_MAX];
    const char *dump[] = {pgtools_path(svc, PGTOOL_DUMP, pg_dump, sizeof(pg_dump)),
                          "--format=custom",
                          "--file",
                          file,
                          "--dbname",
                          svc->database,
                          NULL};
    const char *restore[] = {pgtools_path(svc, PGTOOL_RESTORE, pg_restore, sizeof(pg_restore)),
                             "--no-owner",
                             "--no-privileges",
                             "--exit-on-error",
                             "--dbname",
                             scratch,
                             file,
                             NULL};
    if ((r = command_run(ctx, svc, dump, svc->timeout_dump_ms, "rehearsal: pg_dump", NULL, err)) <
            0 ||
        (r = command_run(ctx, svc, restore, svc->timeout_restore_ms, "rehearsal: pg_restore", NULL,
                         err)) < 0)
        goto drop;
    unlink(file);
    if ((r = command_argv_db(svc->rehearse_migrate, binary, 0, scratch, &argv, err)) < 0)
        goto drop;
    step_progress(ctx, "rehearsal: migrate up on the copy");
    uint64_t t0 = mono_ms();
    r = command_run(ctx, svc, (const char *const *)argv, svc->timeout_migrate_ms,
                    "rehearsal: migrate up on a copy of the database failed", NULL, err);
    *ret_ms = mono_ms() - t0;
    if (r == 0)
        step_progress(ctx, "rehearsal: the migration took %llu ms on the copy",
                      (unsigned long long)*ret_ms);
drop:;
    /* The copy goes whatever happened; a failure to drop it is said, after the first error. */
    baton_err_t derr = {0};
    int d = drop_scratch(c, ident, &derr);
    if (d < 0 && r == 0)
        r = baton_err_set(err, d, "%s", derr.msg);
out:
    unlink(file);
    command_argv_free(&argv);
    free(scratch);
    PQfreemem(ident);
    PQfinish(c);
    return r;
}
