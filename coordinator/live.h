/* live: on a terminal, the upgrade shown as a table redrawn in place: one line per node (name,
 * step, for how long, result), then nodes done / total, elapsed time and an estimate of the
 * time left. Not on a terminal, or with --json, the plain lines stay (logs, CI, pipes). Lines
 * that are not about a node's progress (checks, the plan, errors, the summary) are printed
 * above the table. */
#ifndef BATON_LIVE_H
#define BATON_LIVE_H

#include <stdbool.h>

#include <jansson.h>

struct run;
typedef struct live live_t;

/* A live view for this run, or NULL when stdout is no terminal (or BATON_PLAIN is set). */
live_t *live_new(const struct run *run);
void live_destroy(live_t **l_p);
/* Takes one event: true when the view rendered it (the caller prints nothing). */
bool live_event(live_t *l, const struct run *run, json_t *e);
/* Draws the table again after the caller printed a line above it. */
void live_redraw(live_t *l, const struct run *run);

#endif
