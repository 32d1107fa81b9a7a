/* live: on a terminal, the rollout shown as a table redrawn in place, one line per node (name,
 * step, for how long, what it says), then nodes done / total, the time so far and a guess of
 * the time left. The table is redrawn at least twice a second (the time of a 30-minute dump
 * moves), never wraps (lines are cut to the terminal's width), and is only ever the last lines
 * on screen: a node's step lines are printed above it, as one block, when the node settles;
 * a failed check, the plan and errors as they come. At the end the table goes and the recap
 * and the summary stay. Not on a terminal, with TERM=dumb, BATON_PLAIN or --json, the plain
 * lines stay (logs, CI, pipes). Colour: term.h. */
#ifndef BATON_LIVE_H
#define BATON_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct run;
typedef struct live live_t;

/* The redraw's period: the engine wakes at least this often while a live view is on. */
#define LIVE_TICK_MS 250

/* A live view for this run, or NULL when there is none to draw (see above). */
live_t *live_new(const struct run *run);
void live_destroy(live_t **l_p);
/* Takes one event: true when the view rendered it (the caller prints nothing). */
bool live_event(live_t *l, const struct run *run, json_t *e);
/* Draws the table again after the caller printed a line above it. */
void live_redraw(live_t *l, const struct run *run);
/* Called on every turn of the event loop: redraws when LIVE_TICK_MS have passed. */
void live_tick(live_t *l, const struct run *run, uint64_t now);

#endif
