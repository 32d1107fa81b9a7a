/* step_start: start the service's unit through systemd and wait for the job to finish. A
 * Type=notify unit is "started" once it said READY=1; a failure names systemd's reason. No
 * binary starts on a schema newer than it knows (list_migrations). */
#include "command.h"
#include "step.h"
#include "unit.h"

int step_start(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    sd_bus *bus = NULL;
    int r = step_bus(ctx, &bus, err);
    if (r < 0 || (r = command_schema_known(ctx, svc->binary, err)) < 0)
        return r;
    step_progress(ctx, "starting %s", svc->unit);
    ctx->st->unit_started_usec = realtime_usec();
    return unit_start(bus, svc->unit, svc->timeout_start_ms, step_tick, ctx, err);
}
