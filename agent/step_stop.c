/* step_stop: stop the service's unit through systemd and wait for the job to finish. */
#include "agent.h"
#include "unit.h"

int step_stop(agent_t *a, const svc_config_t *svc, svc_state_t *st, baton_err_t *err)
{
    sd_bus *bus = NULL;
    int r = agent_bus(a, &bus, err);
    if (r < 0)
        return r;
    agent_progress(a, "stopping %s", svc->unit);
    if ((r = unit_stop(bus, svc->unit, svc->timeout_stop_ms, agent_tick, a, err)) < 0)
        return r;
    st->stopped = true;
    return 0;
}
