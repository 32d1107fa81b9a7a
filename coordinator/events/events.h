/* events: emitting the rollout's events (events.c): the journal first, then `--json` or text.
 * The events themselves, their fields and text, are in event_registry.h. */
#ifndef BATON_EVENTS_H
#define BATON_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdarg.h>

#include <jansson.h>

#include "run.h"

/* events.c: every event is one JSON object; emit() journals it, then prints it as JSON or as
 * text. Takes ownership of `e`. */
void emit(struct run *run, json_t *e);
/* A step's (or rollback's) event as one text line, and the service's log lines under it. */
void event_print_step(FILE *f, json_t *e);
/* The header line of `baton status`'s table (its rows are its events). */
void status_print_header(void);
void emit_check(struct run *run, const char *phase, const node_t *nd, bool ok, const char *msg);
void emit_node(struct run *run, const node_t *nd, const char *msg);
void emit_error(struct run *run, const char *msg);
void on_progress(const char *node, const Baton__Progress *p, void *userdata);
/* The summary; returns code. */
int emit_summary(struct run *run, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int emit_summary_v(struct run *run, int code, const char *fmt, va_list ap);
/* "a, b, c" of the nodes in `state` (any of the two), or "none"; the caller's. */
char *node_names(const struct run *run, node_state_t a, node_state_t b);

#endif
