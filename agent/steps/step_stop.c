/* step_stop: out of the load balancer (balancer.c: haproxy drained, the drain hook), then stop
 * the service's unit through systemd and wait for the job to finish. A failed drain stops the
 * upgrade here, with nothing stopped: the node is put back in whatever the drain did.
 *
 * When the coordinator says this node's dump follows (Step.lock), the migration lock is taken
 * first (db_lock.h) and kept for the dump: a database another rollout is dumping or migrating
 * is refused before anything was drained or stopped, and the lock's connection is set up while
 * the service still serves, not inside its downtime. */
#include "step.h"
#include "unit.h"

int step_stop(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    sd_bus *bus = NULL;
    int r = step_bus(ctx, &bus, err);
    if (r < 0)
        return r;
    const Baton__Step *req = ctx->req->stop;
    if (req && req->lock && (r = step_lock(ctx, err)) < 0)
        return r; /* the worker lets go of whatever this step held */
    r = balancer_out(ctx, err);
    /* On record before systemd is asked: a rollback after a crash from here on cannot know
     * whether the stop happened; before it, the unit was never touched. */
    if (r == 0) {
        ctx->st->stop_asked = true;
        r = svc_state_save(ctx->cfg->state_dir, ctx->st, err);
    }
    if (r == 0) {
        step_progress(ctx, "stopping %s", svc->unit);
        r = unit_stop(bus, svc->unit, svc->timeout_stop_ms, step_tick, ctx, err);
    }
    if (r < 0 && !ctx->st->stop_asked) {
        /* Nothing was changed but the load balancer (the rollback only releases): put back
         * what the drain did now. */
        baton_err_t undo = {0};
        if (balancer_in(ctx, &undo) < 0)
            step_log(ctx, 4, "after the failed stop step: %s", undo.msg);
    }
    /* A stop asked of systemd that then failed (its deadline: systemd may kill the unit
     * anyway) is rolled back, not released (steps.c): the rollback starts it again and puts it
     * back in service. */
    if (r < 0)
        return r;
    ctx->st->stopped = true;
    return 0;
}
