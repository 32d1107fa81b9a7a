/* metrics: what the agent did, for the fleet's monitoring. With `metrics_dir` set (node_exporter's
 * textfile collector folder, Debian's /var/lib/prometheus/node-exporter), the agent replaces
 * METRICS_DIR/baton-SERVICE.prom after every step of that service, in Prometheus' text format:
 * the version baton left the service on, its last rollout and step, each step's last duration and
 * outcome, the dumps kept and their size, the bytes staged; when a step begins and when it ends.
 * Written whole (a temporary file renamed into place: the collector never reads half a file),
 * only into a folder only root may write (metrics.c says how), not fsynced: the next step writes
 * it again. A failure to write is logged, never a step's failure. */
#ifndef BATON_AGENT_METRICS_H
#define BATON_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "state.h"
#include "steps.h"

/* The last run of each step of one service, since the agent started. */
typedef struct metrics_steps {
    uint64_t ms[STEP__MAX];  /* how long it took */
    int8_t ok[STEP__MAX];    /* 1 done, 0 failed, -1 not run since the agent started */
    uint64_t end[STEP__MAX]; /* when it ended (CLOCK_REALTIME s) */
} metrics_steps_t;

void metrics_steps_init(metrics_steps_t *m);
void metrics_steps_record(metrics_steps_t *m, step_id_t id, uint64_t ms, bool ok);

/* The file's text for one service (the caller frees it); NULL when out of memory. */
char *metrics_text(const agent_config_t *cfg, const svc_config_t *svc, const svc_state_t *st,
                   const metrics_steps_t *m);
/* Writes it to cfg->metrics_dir (nothing when unset). */
int metrics_write(const agent_config_t *cfg, const svc_config_t *svc, const svc_state_t *st,
                  const metrics_steps_t *m, baton_err_t *err);

#endif
