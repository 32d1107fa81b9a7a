/* step_migrate: run the service's migrate command and report exactly which migration ids it
 * applied or removed, by reading the bookkeeping table before and after (not by parsing the
 * tool's output). Up needs this rollout's verified dump; down always gets an explicit limit. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "command.h"
#include "db.h"
#include "step.h"
#include "proc.h"

/* *ret = a - b */
static int difference(char **a, size_t na, char **b, size_t nb, char ***ret, size_t *ret_n)
{
    for (size_t i = 0; i < na; i++)
        if (!svc_state_has(b, nb, a[i]) && svc_state_push(ret, ret_n, a[i]) < 0)
            return -ENOMEM;
    return 0;
}

int migrate_run(step_ctx_t *ctx, bool up, unsigned limit, const char *binary, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    svc_state_t *st = ctx->st;
    struct step_out *out = &ctx->out;
    char **before = NULL, **after = NULL, **argv = NULL;
    size_t n_before = 0, n_after = 0;
    int r = step_migration_ids(ctx, &before, &n_before, err);
    if (r < 0)
        return r;
    if (!st->have_ids_before) {
        for (size_t i = 0; i < n_before; i++)
            if (svc_state_push(&st->ids_before, &st->n_ids_before, before[i]) < 0) {
                r = baton_err_set(err, -ENOMEM, "out of memory");
                goto out;
            }
        st->have_ids_before = true;
        /* Saved before the command runs: if the agent dies during the migration, a rollback
         * must still know which ids the database had. */
        if ((r = svc_state_save(ctx->cfg->state_dir, st, err)) < 0)
            goto out;
    }
    if ((r = command_argv_db(up ? svc->migrate_up : svc->migrate_down, binary, limit, svc->database,
                             &argv, err)) < 0)
        goto out;
    step_progress(ctx, "%s (%zu applied before)", up ? "migrate up" : "migrate down", n_before);
    struct proc_opts o = {.argv = (const char *const *)argv,
                          .env_add = svc->pg_env,
                          .pidfile = ctx->pidfile,
                          .timeout_ms = svc->timeout_migrate_ms,
                          .tick = step_tick,
                          .userdata = ctx};
    struct proc_result res;
    int run = proc_run(&o, &res, err);
    /* Whatever happened, read what the database holds now: a failed run may have applied
     * some migrations (one transaction each), and the rollback must know them. */
    baton_err_t rerr = {0};
    if ((r = step_migration_ids(ctx, &after, &n_after, &rerr)) < 0) {
        char first[BATON_ERR_MSG_MAX]; /* err->msg may not be an argument of a call writing err */
        if (run < 0) {
            snprintf(first, sizeof(first), "%s", err->msg);
        } else {
            /* The tool's own word: it may never have reached the database at all. */
            char how[400];
            proc_describe(&res, svc->timeout_migrate_ms, how, sizeof(how));
            snprintf(first, sizeof(first), "%s: %s", up ? "migrate up" : "migrate down", how);
        }
        r = baton_err_set(err, r, "%s; then %s", first, rerr.msg);
        goto out;
    }
    svc_state_clear_list(&st->ids_after, &st->n_ids_after);
    for (size_t i = 0; i < n_after; i++)
        if (svc_state_push(&out->ids, &out->n_ids, after[i]) < 0 ||
            svc_state_push(&st->ids_after, &st->n_ids_after, after[i]) < 0) {
            r = baton_err_set(err, -ENOMEM, "out of memory");
            goto out;
        }
    if (difference(after, n_after, before, n_before, &out->applied, &out->n_applied) < 0 ||
        difference(before, n_before, after, n_after, &out->removed, &out->n_removed) < 0) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < out->n_applied; i++)
        if (!svc_state_has(st->applied, st->n_applied, out->applied[i]) &&
            svc_state_push(&st->applied, &st->n_applied, out->applied[i]) < 0) {
            r = baton_err_set(err, -ENOMEM, "out of memory");
            goto out;
        }
    r = run;
    if (r == 0 && (res.exit_code != 0 || res.timed_out)) {
        char why[PROC_TAIL_MAX + 64];
        proc_describe(&res, o.timeout_ms, why, sizeof(why));
        r = baton_err_set(err, -EIO, "migrate %s failed (%zu applied, %zu removed): %s",
                          up ? "up" : "down", out->n_applied, out->n_removed, why);
    }
out:
    svc_state_clear_list(&before, &n_before);
    svc_state_clear_list(&after, &n_after);
    command_argv_free(&argv);
    return r;
}

/* No migration, either way, without a verified backup of this rollout; and under the
 * migration lock, held since the dump unless the agent restarted in between (then taken again,
 * and refused when another rollout got it meanwhile). */
static int dump_and_lock(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_state_t *st = ctx->st;
    struct stat sb;
    if (!*st->dump_path || stat(st->dump_path, &sb) < 0 || (uint64_t)sb.st_size != st->dump_size)
        return baton_err_set(err, -ENOENT, "no verified dump of rollout %s: refusing to migrate",
                             st->rollout_id);
    return step_lock(ctx, err);
}

static int migrate_downgrade(step_ctx_t *ctx, bool up, unsigned limit, baton_err_t *err)
{
    svc_state_t *st = ctx->st;
    const version_record_t *rec = svc_state_history_find(st, st->target_version);
    if (!rec)
        return baton_err_set(err, -ENOENT, "no history of %s here", st->target_version);
    bool restore = *st->restore_dump != '\0';
    if (!restore && (up ? st->down_limit != 0 : limit != st->down_limit))
        return baton_err_set(err, -EPERM,
                             "the downgrade to %s takes %llu migrations down (its pre-flight "
                             "counted them), not %s %u",
                             st->target_version, (unsigned long long)st->down_limit,
                             up ? "up" : "down", limit);
    int r = dump_and_lock(ctx, err);
    if (r < 0)
        return r;
    /* A downgrade's migrate down is the newer binary's: the one that ran before this rollout. */
    char newer[PATH_MAX];
    if ((r = swap_old_binary(ctx, newer, sizeof(newer), err)) < 0)
        return r;
    if (restore) {
        /* The ids before are what a rollback returns to, as for any migration. */
        char **now = NULL;
        size_t n_now = 0;
        if ((r = db_migration_ids(ctx->svc, &now, &n_now, err)) < 0)
            return r;
        for (size_t i = 0; !st->have_ids_before && i < n_now; i++)
            if (svc_state_push(&st->ids_before, &st->n_ids_before, now[i]) < 0)
                r = -ENOMEM;
        svc_state_clear_list(&now, &n_now);
        if (r < 0)
            return baton_err_set(err, r, "out of memory");
        st->have_ids_before = true;
        if ((r = svc_state_save(ctx->cfg->state_dir, st, err)) < 0 ||
            (r = dump_restore_file(ctx, st->restore_dump, NULL, err)) < 0)
            return r;
        ctx->out.restored_dump = true;
    } else if (st->down_limit > 0) {
        if ((r = migrate_run(ctx, false, (unsigned)st->down_limit, newer, err)) < 0)
            return r;
    } else if ((r = migrate_run(ctx, true, 0, ctx->svc->binary, err)) < 0) {
        /* Nothing to take down (a patch down with the same migrations): the older binary's own
         * migrate up, as any rollout runs it, which must find nothing to apply. */
        return r;
    }
    r = shared_check_ids(ctx, rec->ids, rec->n_ids, st->target_version, err);
    return r;
}

int step_migrate(step_ctx_t *ctx, baton_err_t *err)
{
    const Baton__Migrate *req = ctx->req->migrate;
    svc_state_t *st = ctx->st;
    bool up = req->direction == BATON__DIRECTION__DIRECTION_UP;
    if (!up && req->limit == 0)
        return baton_err_set(err, -EINVAL, "migrate down needs an explicit limit > 0");
    /* A shared database that another node of this rollout migrated: nothing runs here; it
     * must still hold exactly what that node's migration left. */
    if (*st->shared_from) {
        if (!up)
            return baton_err_set(err, -EPERM,
                                 "the shared database was migrated by %s: migrate it down there",
                                 st->shared_from);
        int r = shared_check(ctx, st->expect_ids, st->n_expect_ids, err);
        if (r == 0) {
            ctx->out.shared = true;
            step_progress(ctx, "shared database: migrated by %s, %zu ids as expected",
                          st->shared_from, st->n_expect_ids);
        }
        return r;
    }
    /* A downgrade: exactly the migrations its pre-flight counted go down, with the newer
     * binary (the one the swap kept aside; the older one does not know them), or the dump
     * taken at the target version is restored; either way the bookkeeping table must then
     * equal what that version had here. */
    if (st->downgrade && !*st->shared_from)
        return migrate_downgrade(ctx, up, req->limit, err);
    /* Down undoes what this rollout applied, no more: the same guard a rollback has. */
    if (!up && req->limit > st->n_applied)
        return baton_err_set(err, -EPERM,
                             "migrate down --limit %u: rollout %s applied %zu migrations here",
                             req->limit, st->rollout_id, st->n_applied);
    int r = dump_and_lock(ctx, err);
    if (r < 0)
        return r;
    return migrate_run(ctx, up, req->limit, ctx->svc->binary, err);
}
