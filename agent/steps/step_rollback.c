/* step_rollback: undo what this rollout did on this node, in reverse order, until the node is
 * exactly as it was: stop; take the schema back to the ids it had (down-migrating what this
 * rollout applied, with the NEWER binary: the old one does not know those migrations; restoring
 * the dump when that fails or leaves anything different); put the old binary back; start it if
 * it ran; verify it is healthy on the old version. Each part checks the real state first, so a
 * rollback that was itself interrupted can simply run again. A unit this rollout never asked to
 * stop is left running. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "db.h"
#include "db_lock.h"
#include "step.h"
#include "unit.h"

/* Ids now in the table that were not there before this rollout (both lists sorted). */
static size_t count_extra(char **now, size_t n_now, char **before, size_t n_before)
{
    size_t extra = 0;
    for (size_t i = 0; i < n_now; i++)
        extra += !svc_state_has(before, n_before, now[i]);
    return extra;
}

static int schema_back(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    svc_state_t *st = ctx->st;
    struct step_out *out = &ctx->out;
    char **now = NULL;
    size_t n_now = 0;
    int r = db_migration_ids(svc, &now, &n_now, err);
    if (r < 0)
        return r;
    if (ids_equal(now, n_now, st->ids_before, st->n_ids_before)) {
        svc_state_clear_list(&now, &n_now);
        snprintf(out->schema, sizeof(out->schema), "schema as it was: nothing to undo");
        return 0;
    }
    size_t extra = count_extra(now, n_now, st->ids_before, st->n_ids_before);
    /* Only added: every id of before is still there (no wrap when some were removed). */
    bool only_added = n_now >= st->n_ids_before && extra == n_now - st->n_ids_before;
    size_t n_had = n_now;
    svc_state_clear_list(&now, &n_now);

    baton_err_t down_err = {0};
    if (only_added && extra > 0 && *st->target_sha256) {
        char newbin[PATH_MAX];
        if ((r = swap_new_binary(ctx, newbin, sizeof(newbin), err)) < 0)
            return r;
        step_progress(ctx, "down-migrating the %zu migration%s this rollout applied", extra,
                      extra == 1 ? "" : "s");
        r = migrate_run(ctx, false, (unsigned)extra, newbin, &down_err);
        if (r == 0 && (r = db_migration_ids(svc, &now, &n_now, &down_err)) == 0) {
            bool back = ids_equal(now, n_now, st->ids_before, st->n_ids_before);
            svc_state_clear_list(&now, &n_now);
            if (back) {
                snprintf(out->schema, sizeof(out->schema),
                         "down-migrated the %zu migration%s this rollout applied", extra,
                         extra == 1 ? "" : "s");
                return 0;
            }
            baton_err_set(&down_err, -EIO, "down-migration left different ids");
        }
    } else if (st->downgrade && !*st->restore_dump && n_had < st->n_ids_before && extra == 0) {
        /* A downgrade took migrations down: the newer binary (kept aside by the swap, or still
         * in place) applies them again, which keeps every row written since. */
        char newer[PATH_MAX];
        if ((r = swap_old_binary(ctx, newer, sizeof(newer), err)) < 0)
            return r;
        step_progress(ctx, "migrating up again what the downgrade took down");
        r = migrate_run(ctx, true, 0, newer, &down_err);
        if (r == 0 && (r = db_migration_ids(svc, &now, &n_now, &down_err)) == 0) {
            bool back = ids_equal(now, n_now, st->ids_before, st->n_ids_before);
            svc_state_clear_list(&now, &n_now);
            if (back) {
                snprintf(out->schema, sizeof(out->schema),
                         "migrated up again the %zu migration%s the downgrade took down",
                         st->n_ids_before - n_had, st->n_ids_before - n_had == 1 ? "" : "s");
                return 0;
            }
            baton_err_set(&down_err, -EIO, "migrating up again left different ids");
        }
    } else {
        baton_err_set(&down_err, -EINVAL, "ids were removed, not only added");
    }
    /* The down-migration could not bring the schema back: the dump can, but a restore puts the
     * whole database back to the instant of the dump. Other nodes serving from it would lose
     * every write they made since: then the node stays stopped, the dump kept, and the
     * coordinator decides (stop the group first, or tell the operator). */
    const Baton__Step *req = ctx->req->rollback;
    if (req && req->no_restore) {
        ctx->out.restore_needed = true;
        return baton_err_set(err, -EAGAIN,
                             "down-migration failed (%s); only restoring the dump %s brings the "
                             "schema back, and other nodes serve from this database: not "
                             "restoring under them (the node stays stopped)",
                             down_err.msg, st->dump_path);
    }
    step_log(ctx, 4, "down-migration did not restore the schema (%s): restoring the dump",
             down_err.msg);
    step_progress(ctx, "down-migration failed (%s): restoring the dump", down_err.msg);
    baton_err_t restore_err = {0};
    if ((r = dump_restore(ctx, &restore_err)) < 0)
        return baton_err_set(err, r, "down-migration failed (%s) and so did the restore: %s",
                             down_err.msg, restore_err.msg);
    ctx->out.restored_dump = true;
    /* Cut where it must be (the field is for a person; the journal has the whole error), each
     * piece at a whole character: a Result that is not UTF-8 is refused whole. */
    char path[91], why[91];
    snprintf(path, sizeof(path), "%.90s", st->dump_path);
    snprintf(why, sizeof(why), "%.90s", down_err.msg);
    utf8_trim_partial(path);
    utf8_trim_partial(why);
    snprintf(out->schema, sizeof(out->schema),
             "database restored from the dump %s (the down-migration: %s)", path, why);
    if ((r = db_migration_ids(svc, &now, &n_now, err)) < 0)
        return r;
    bool back = ids_equal(now, n_now, st->ids_before, st->n_ids_before);
    svc_state_clear_list(&now, &n_now);
    if (!back)
        return baton_err_set(err, -EIO,
                             "after restoring the dump the migration ids still "
                             "differ from before the rollout");
    return 0;
}

int step_rollback(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    svc_state_t *st = ctx->st;
    sd_bus *bus = NULL;
    char *active = NULL;
    int r = step_bus(ctx, &bus, err);
    if (r < 0 || (r = unit_property(bus, svc->unit, "Unit", "ActiveState", &active, err)) < 0)
        return r;
    bool running = strcmp(active, "inactive") && strcmp(active, "failed");
    bool as_it_was = st->was_active ? !strcmp(active, "active") : !running;
    free(active);
    /* A lock its stop took for a dump that never came: nothing of the schema is to undo, and
     * no one else's rollout waits through this one's restart and healthy window. */
    if (!st->have_ids_before && ctx->db_lock && *ctx->db_lock) {
        db_lock_release(ctx->db_lock);
        step_log(ctx, 6, "migration lock released: no dump was taken");
    }
    /* The stop step was cut short before it asked systemd for anything (the agent restarted
     * while it drained): the node is as it was but for the load balancer. The old version is
     * not stopped and started again for nothing; it is checked and put back in service. */
    if (!st->stop_asked && !st->stopped && as_it_was) {
        step_progress(ctx, "%s was never stopped by this rollout", svc->unit);
        if (st->was_active && ((r = verify_running(ctx, st->previous_version, err)) < 0 ||
                               (r = balancer_in(ctx, err)) < 0))
            return r;
        snprintf(ctx->out.version, sizeof(ctx->out.version), "%s", st->previous_version);
        return 0;
    }
    if (running) {
        step_progress(ctx, "stopping %s", svc->unit);
        if ((r = unit_stop(bus, svc->unit, svc->timeout_stop_ms, step_tick, ctx, err)) < 0)
            return r;
    }
    /* The schema is undone under the migration lock, as it was changed; a shared node's schema
     * is the node's that migrated it (it recorded no ids before: nothing to do here). */
    if (st->have_ids_before && ((r = step_lock(ctx, err)) < 0 || (r = schema_back(ctx, err)) < 0))
        return r;
    if (*st->previous_sha256 && (r = swap_back(ctx, err)) < 0)
        return r;
    if (st->was_active) {
        if ((r = command_schema_known_before(ctx, svc->binary, err)) < 0)
            return r;
        step_progress(ctx, "starting %s", svc->unit);
        st->unit_started_usec = realtime_usec();
        if ((r = unit_start(bus, svc->unit, svc->timeout_start_ms, step_tick, ctx, err)) < 0)
            return r;
        if ((r = verify_running(ctx, st->previous_version, err)) < 0)
            return r;
        /* The old version serves again: back into the load balancer. */
        if ((r = balancer_in(ctx, err)) < 0)
            return r;
    }
    snprintf(ctx->out.version, sizeof(ctx->out.version), "%s", st->previous_version);
    return 0;
}
