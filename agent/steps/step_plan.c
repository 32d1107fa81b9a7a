/* step_plan: `baton plan`'s question to one node: what would a pre-flight find? The same checks
 * as step_preflight, without changing what the service sees (nothing reserved, stopped or
 * recorded; a staged release archive is unpacked beside the others, as a pre-flight would,
 * and a rehearsal works on a scratch copy), and every problem listed instead of the first.
 * Runs on the worker like a step, so the main loop stays responsive, but outside the step
 * rules: it touches no state. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "semver.h"
#include "artifact.h"
#include "command.h"
#include "db.h"
#include "db_lock.h"
#include "digest.h"
#include "fsutil.h"
#include "pgtools.h"
#include "release.h"
#include "step.h"
#include "unit.h"

#define PLAN_PROBLEMS_MAX 32

static void problem(Baton__PlanInfo *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(Baton__PlanInfo *p, const char *fmt, ...)
{
    if (p->n_problems >= PLAN_PROBLEMS_MAX)
        return;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    utf8_trim_partial(msg);
    p->problems[p->n_problems++] = msg;
}

/* The folder a dump would go to, or its nearest existing parent (plan creates nothing). */
static int free_bytes(const char *dir, uint64_t *ret)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", dir);
    for (;;) {
        struct statvfs vfs;
        if (statvfs(path, &vfs) == 0) {
            *ret = (uint64_t)vfs.f_bavail * vfs.f_frsize;
            return 0;
        }
        char *slash = strrchr(path, '/');
        if (errno != ENOENT || !slash || slash == path)
            return -errno;
        *slash = '\0';
    }
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

void plan_info_free(Baton__PlanInfo **p_p)
{
    Baton__PlanInfo *p = *p_p;
    if (!p)
        return;
    free(p->active_state);
    free(p->version);
    free(p->binary_sha256);
    free(p->backup_dir);
    free(p->database_id);
    free(p->lock_holder);
    free(p->highest_version);
    for (size_t i = 0; i < p->n_history; i++)
        free(p->history[i]);
    free(p->history);
    for (size_t i = 0; i < p->n_migrations; i++)
        free(p->migrations[i]);
    free(p->migrations);
    for (size_t i = 0; i < p->n_problems; i++)
        free(p->problems[i]);
    free(p->problems);
    free(p);
    *p_p = NULL;
}

/* The artifact: staged already, and saying the right version? (Not staged is fine: a rollout
 * sends it before anything is stopped.) ret_newbin: the new binary to run, "" when none may. */
static void plan_artifact(step_ctx_t *ctx, const Baton__Step *req, Baton__PlanInfo *p,
                          char *ret_newbin, size_t len)
{
    char staged[PATH_MAX], hex[DIGEST_HEX_LEN + 1] = "", release[RELEASE_NAME_MAX + 1];
    baton_err_t e = {0};
    ret_newbin[0] = '\0';
    if (!digest_hex_valid(req->sha256) ||
        staged_path(ctx->cfg, ctx->svc->name, req->sha256, staged, sizeof(staged), &e) < 0 ||
        digest_file(staged, hex, NULL, &e) < 0 || strcmp(hex, req->sha256))
        return;
    p->staged = true;
    /* The pre-flight's own checks of it (a release is unpacked beside the others: the service
     * does not see it until a swap switches to it). Nothing more runs a binary that failed
     * them. */
    if (new_binary_check(ctx, req, staged, release, sizeof(release), ret_newbin, len, &e) < 0) {
        problem(p, "%s", e.msg);
        ret_newbin[0] = '\0';
    }
}

/* What is installed: the unit and its state, the balancer, the binary (its version and digest),
 * the folders the agent creates files in (the binary's, the backups', when there). */
static void plan_installed(step_ctx_t *ctx, Baton__PlanInfo *p)
{
    const svc_config_t *svc = ctx->svc;
    char *active = NULL, *version = NULL, hex[DIGEST_HEX_LEN + 1] = "";
    baton_err_t e = {0};
    step_progress(ctx, "checking unit %s", svc->unit);
    sd_bus *bus = NULL;
    if (step_bus(ctx, &bus, &e) < 0 || unit_check_loaded(bus, svc->unit, &active, &e) < 0)
        problem(p, "%s", e.msg);
    p->active_state = dup_or_empty(active);
    baton_err_clear(&e);
    if (balancer_check(ctx, &e) < 0)
        problem(p, "%s", e.msg);

    struct stat sb;
    baton_err_clear(&e);
    if (stat(svc->binary, &sb) < 0 || !S_ISREG(sb.st_mode))
        problem(p, "binary %s: %s", svc->binary, errno ? strerror(errno) : "not a regular file");
    else if (command_version(ctx, svc, svc->binary, &version, &e) < 0)
        problem(p, "binary %s does not run: %s", svc->binary, e.msg);
    else if (digest_file(svc->binary, hex, NULL, &e) < 0)
        problem(p, "%s", e.msg);
    p->version = dup_or_empty(version);
    p->binary_sha256 = dup_or_empty(hex);
    char bindir[PATH_MAX];
    snprintf(bindir, sizeof(bindir), "%s", svc->binary);
    baton_err_clear(&e);
    if (fs_dir_root_only(dirname(bindir), &e) < 0 && e.code != -ENOENT)
        problem(p, "%s", e.msg);
    baton_err_clear(&e);
    if (fs_dir_root_only(svc->backup_dir, &e) < 0 && e.code != -ENOENT)
        problem(p, "%s", e.msg);
    free(active);
    free(version);
}

/* The database: it answers, who holds its migration lock, which client programs fit its server,
 * and whether a dump of it fits in the backup folder. */
static void plan_database(step_ctx_t *ctx, Baton__PlanInfo *p)
{
    const svc_config_t *svc = ctx->svc;
    baton_err_t e = {0};
    step_progress(ctx, "checking database");
    db_survey_t db = {0};
    if (db_survey(svc, &db, &e) < 0) {
        problem(p, "%s", e.msg);
    } else {
        p->database_bytes = db.bytes;
        p->migrations = db.ids, p->n_migrations = db.n_ids;
        p->database_id = db.identity, p->lock_holder = db.lock_holder;
        int server_major = db.server_major;
        db = (db_survey_t){0}; /* p owns them now */
        /* In the pre-flight's own words (the same function says it there). */
        baton_err_clear(&e);
        if (db_lock_refuse_held(p->lock_holder, &e) < 0)
            problem(p, "%s", e.msg);
        baton_err_clear(&e);
        if (pgtools_check(ctx, svc, server_major, &e) < 0)
            problem(p, "%s", e.msg);
    }
    if (!p->database_id)
        p->database_id = dup_or_empty("");
    if (!p->lock_holder)
        p->lock_holder = dup_or_empty("");
    p->dump_room_bytes = dump_room(p->database_bytes);
    p->backup_dir = dup_or_empty(svc->backup_dir);
    int r = free_bytes(svc->backup_dir, &p->backup_free_bytes);
    baton_err_clear(&e);
    if (r < 0)
        problem(p, "backup folder %s: %s", svc->backup_dir, strerror(-r));
    else if (dump_room_check(svc->backup_dir, p->backup_free_bytes, p->database_bytes, &e) < 0)
        problem(p, "%s", e.msg);
}

/* What ran here: the history a downgrade is checked against, by the pre-flight's own check (on
 * a copy of the record, thrown away), and the history and highest version for the plan. */
static void plan_history(step_ctx_t *ctx, const Baton__Step *req, Baton__PlanInfo *p)
{
    baton_err_t e = {0};
    svc_state_t *st = NULL;
    if (svc_state_load(ctx->cfg->state_dir, ctx->svc->name, &st, NULL) < 0)
        st = svc_state_new(ctx->svc->name);
    if (st && (req->downgrade || *req->restore_dump) &&
        downgrade_check(ctx, st, req, p->version, p->migrations, p->n_migrations, &e) < 0)
        problem(p, "%s", e.msg);
    p->highest_version = NULL;
    if (st) {
        p->highest_version = strdup(st->highest_version);
        if (st->n_history && (p->history = calloc(st->n_history, sizeof(char *))))
            for (size_t i = 0; i < st->n_history; i++)
                if ((p->history[i] = strdup(st->history[i].version)))
                    p->n_history++;
        svc_state_destroy(&st);
    }
    if (!p->highest_version)
        p->highest_version = dup_or_empty("");
}

int step_plan(step_ctx_t *ctx, baton_err_t *err)
{
    const Baton__Step *req = ctx->req->plan;
    Baton__PlanInfo *p = calloc(1, sizeof(*p));
    if (!p)
        return baton_err_set(err, -ENOMEM, "out of memory");
    baton__plan_info__init(p);
    p->database_id = p->lock_holder = p->highest_version = NULL; /* init: protobuf-c's "" */
    p->problems = calloc(PLAN_PROBLEMS_MAX, sizeof(char *));
    if (!p->problems) {
        free(p);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    char newbin[PATH_MAX];
    plan_artifact(ctx, req, p, newbin, sizeof(newbin));
    plan_installed(ctx, p);
    plan_database(ctx, p);
    /* The new binary knows every migration the database has, as the pre-flight checks. */
    baton_err_t e = {0};
    if (*newbin && !req->downgrade && p->migrations &&
        command_schema_known_ids(ctx, newbin, p->migrations, p->n_migrations, &e) < 0)
        problem(p, "%s", e.msg);
    plan_history(ctx, req, p);
    /* The rehearsal, last: the new binary's migration on a copy, timed. */
    if (req->rehearse && !p->staged)
        problem(p, "rehearse: the artifact is not staged here");
    else if (req->rehearse && p->n_problems == 0) {
        baton_err_clear(&e);
        if (rehearse(ctx, newbin, &p->rehearse_ms, &e) < 0)
            problem(p, "%s", e.msg);
        else
            p->rehearsed = true;
    }
    ctx->out.plan = p;
    return 0;
}
