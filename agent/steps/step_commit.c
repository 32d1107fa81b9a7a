/* step_commit: the node is done: mark it, keep the newest `keep_backups` dumps of the service
 * and drop older ones, and drop staged binaries other than the one now installed. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "semver.h"
#include "db.h"
#include "names.h"
#include "release.h"
#include "step.h"

struct backup {
    char path[PATH_MAX];
    time_t mtime;
};

static int newest_first(const void *x, const void *y)
{
    const struct backup *a = x, *b = y;
    return (a->mtime < b->mtime) - (a->mtime > b->mtime);
}

bool step_backup_name(const char *service, const char *name)
{
    size_t len = strlen(name), prefix = strlen(service);
    /* Exactly SERVICE+ROLLOUT.dump, with a well-formed rollout id between. */
    char id[ROLLOUT_ID_MAX_LEN + 1];
    if (strncmp(name, service, prefix) || name[prefix] != '+' || len < prefix + 7 ||
        strcmp(name + len - 5, ".dump") || len - prefix - 6 > ROLLOUT_ID_MAX_LEN)
        return false;
    snprintf(id, sizeof(id), "%.*s", (int)(len - prefix - 6), name + prefix + 1);
    return rollout_id_valid(id);
}

static void prune_backups(step_ctx_t *ctx, const svc_config_t *svc, const svc_state_t *st)
{
    DIR *d = opendir(svc->backup_dir);
    if (!d)
        return;
    struct backup *list = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 10000) {
        if (!step_backup_name(svc->name, e->d_name))
            continue;
        struct backup b;
        struct stat sb;
        snprintf(b.path, sizeof(b.path), "%s/%s", svc->backup_dir, e->d_name);
        if (stat(b.path, &sb) < 0)
            continue;
        b.mtime = sb.st_mtime;
        struct backup *grown = realloc(list, (n + 1) * sizeof(*list));
        if (!grown)
            break;
        list = grown;
        list[n++] = b;
    }
    closedir(d);
    /* A shared database's later nodes take no dump, so the list may be empty (and NULL):
     * qsort's pointer must not be NULL even for no elements. */
    if (n > 1)
        qsort(list, n, sizeof(*list), newest_first);
    for (size_t i = 0, kept = 0; i < n; i++) {
        if (!strcmp(list[i].path, st->dump_path) || kept < svc->keep_backups - 1) {
            kept += strcmp(list[i].path, st->dump_path) != 0;
            continue;
        }
        if (unlink(list[i].path) == 0)
            step_progress(ctx, "removed old backup %s", list[i].path);
    }
    free(list);
}

static void prune_staging(const step_ctx_t *ctx, const svc_config_t *svc, const svc_state_t *st)
{
    char dir[PATH_MAX], path[PATH_MAX * 2];
    snprintf(dir, sizeof(dir), "%s/staging/%s", ctx->cfg->state_dir, svc->name);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strcmp(e->d_name, st->target_sha256)) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
}

/* The history: the version it ran before got this rollout's dump (taken while it ran: what
 * `--restore-dump` of a later downgrade restores); the version now running, the ids now. */
static int record_history(step_ctx_t *ctx, baton_err_t *err)
{
    svc_state_t *st = ctx->st;
    char **ids = NULL;
    size_t n = 0;
    int r = db_migration_ids(ctx->svc, &ids, &n, err);
    if (r < 0)
        return r;
    if (st->n_history && *st->dump_path &&
        version_same(st->history[st->n_history - 1].version, st->previous_version))
        r = svc_state_set(&st->history[st->n_history - 1].dump, st->dump_path);
    if (r == 0)
        r = svc_state_history_add(st, st->target_version, ids, n, "");
    if (r == 0)
        r = raise_highest(st, st->target_version);
    svc_state_clear_list(&ids, &n);
    return r < 0 ? baton_err_set(err, r, "history: out of memory") : 0;
}

int step_commit(step_ctx_t *ctx, baton_err_t *err)
{
    int r = record_history(ctx, err);
    if (r < 0)
        return r;
    prune_backups(ctx, ctx->svc, ctx->st);
    prune_staging(ctx, ctx->svc, ctx->st);
    /* Old releases beyond keep_releases go; the one before stays for `baton rollback`. A
     * failure to remove one costs disk, not the commit. */
    baton_err_t perr = {0};
    if (*ctx->st->target_release &&
        release_prune(ctx->svc, ctx->svc->keep_releases, ctx->st->previous_release, &perr) < 0)
        step_progress(ctx, "old releases not all removed: %s", perr.msg);
    return 0;
}
