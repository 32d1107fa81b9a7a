/* recap: the closing table of a rollout, one row per node (as Ansible's PLAY RECAP): the
 * version before and after, how long the service was down on it, and how it ended. Built
 * only from the run's events as they are emitted, so that what the table says is what the
 * journal and --json said along the way; it goes into the summary event ("recap") and the
 * text and live views print it above the summary's message. On a resume, BEFORE is what a
 * node ran when the resume began and DOWN counts this run's steps only; DOWN is the steps'
 * own time (stop to the end of start, and a rollback), not a maintenance-style wait. */
#ifndef BATON_RECAP_H
#define BATON_RECAP_H

#include <stdio.h>

#include <jansson.h>

struct run;
typedef struct recap recap_t;

recap_t *recap_new(const struct run *run);
void recap_destroy(recap_t **r_p);
/* Takes note of one event (the caller keeps it). */
void recap_event(recap_t *r, const struct run *run, json_t *e);
/* The rows for the summary event, with each node's outcome as the run ends; NULL when no
 * node began an upgrade or a rollback (a refused rollout, a plan, a status). */
json_t *recap_json(const recap_t *r, const struct run *run);
/* The table, from a summary event's "recap" (the journal's, or this run's). */
void recap_print(FILE *f, json_t *recap);

#endif
