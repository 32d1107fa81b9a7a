/* textfile: Prometheus' text format written where node_exporter's textfile collector reads it,
 * for the agent's metrics (agent/metrics.c) and the coordinator's
 * (coordinator/events/rollout_metrics.c). A file is written whole under a temporary name and
 * renamed into place (the collector never reads half a file), not fsynced (the next write replaces
 * it), only into a folder that no one but its writer (or root) may write to, opened without
 * following a link. */
#ifndef BATON_TEXTFILE_H
#define BATON_TEXTFILE_H

#include <stdbool.h>
#include <stdio.h>

#include "err.h"

/* key="value" as the format wants it (\ " and newline escaped), after a comma unless first. */
void textfile_label(FILE *f, const char *key, const char *value, bool first);

/* Replaces DIR/NAME with `text`. `what` names the setting in errors ("metrics_dir"). */
int textfile_write(const char *dir, const char *name, const char *text, const char *what,
                   baton_err_t *err);

#endif
