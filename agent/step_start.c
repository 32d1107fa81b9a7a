/* step_start: start the service's unit through systemd and wait for the job to finish. A
 * Type=notify unit is "started" once it said READY=1; a failure names systemd's reason. */
#include "agent.h"
#include "unit.h"

int step_start(agent_t *a, const svc_config_t *svc, svc_state_t *st, baton_err_t *err)
{
    (void)st;
    sd_bus *bus = NULL;
    int r = agent_bus(a, &bus, err);
    if (r < 0)
        return r;
    agent_progress(a, "starting %s", svc->unit);
    return unit_start(bus, svc->unit, svc->timeout_start_ms, agent_tick, a, err);
}
