/* step_stop: stop the service's unit through systemd and wait for the job to finish. */
#include "step.h"
#include "unit.h"

int step_stop(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    sd_bus *bus = NULL;
    int r = step_bus(ctx, &bus, err);
    if (r < 0)
        return r;
    step_progress(ctx, "stopping %s", svc->unit);
    if ((r = unit_stop(bus, svc->unit, svc->timeout_stop_ms, step_tick, ctx, err)) < 0)
        return r;
    ctx->st->stopped = true;
    return 0;
}
