/* rollout_metrics: the coordinator's own metrics, for the monitoring of the host it runs on.
 * With BATON_METRICS_DIR set (that host's node_exporter textfile folder, Debian's
 * /var/lib/prometheus/node-exporter), a rollout, a resume or a rollback replaces
 * DIR/baton-rollout-SERVICE.prom after each event that moves it on: the rollout, its version and
 * phase (running, paused, halting, ended), the batch, how many nodes are in each state and
 * each node's state, when it started, and once it ended, when and with which exit code.
 *
 * Written once the run holds its nodes (the plan event, or a rollback's first node): a second
 * operator's rollout that is refused does not overwrite the metrics of the one running.
 * Written as the agent writes its own (textfile.h); a failure to write is said once on stderr
 * and never stops a rollout. Decided where the issue left the choice open: the textfile, not a
 * Pushgateway, as the agents do (one collector for both, nothing pushed over the network). */
#ifndef BATON_ROLLOUT_METRICS_H
#define BATON_ROLLOUT_METRICS_H

#include <jansson.h>

struct run;
typedef struct rollout_metrics rollout_metrics_t;

/* NULL (no metrics) when BATON_METRICS_DIR is not set. */
rollout_metrics_t *rollout_metrics_new(const char *service);
void rollout_metrics_destroy(rollout_metrics_t **m_p);
/* Takes note of an event (emit() calls it) and writes the file when it moved the run on. */
void rollout_metrics_event(rollout_metrics_t *m, const struct run *run, json_t *e);
/* The file's text as it stands (the caller frees it); NULL when out of memory. */
char *rollout_metrics_text(const rollout_metrics_t *m, const struct run *run);

#endif
