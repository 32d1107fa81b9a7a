/* event_registry: every event the coordinator says, in one table: its name, its fields and their
 * types, whether the journal keeps it, and what its text form shows. emit() (events.c) journals
 * by it and renders by it; doc/events.md and doc/events.schema.json are checked against it
 * (tests/unit/test_event_registry.c), so that what a program reading `--json` or the journal is
 * promised is what the code says. A new event, or a new field of one, is an entry here first. */
#ifndef BATON_EVENT_REGISTRY_H
#define BATON_EVENT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The version of the events' schema every event carries as "schema": a field added keeps the
 * number; one renamed, removed or given another meaning changes it. */
#define EVENTS_SCHEMA 2

typedef enum event_id {
    EVENT_START,
    EVENT_CHECK,
    EVENT_PLAN,
    EVENT_NODE,
    EVENT_STEP,
    EVENT_PROGRESS,
    EVENT_ROLLBACK,
    EVENT_GROUP,
    EVENT_HALT,
    EVENT_PAUSED,
    EVENT_CONTINUED,
    EVENT_ANALYSIS,
    EVENT_BAKE,
    EVENT_STATUS,
    EVENT_PLAN_NODE,
    EVENT_ABORTED,
    EVENT_UNDONE,
    EVENT_ROLLOUT,
    EVENT_ERROR,
    EVENT_SUMMARY,
    EVENT_COUNT
} event_id_t;

/* JSON types a field may have (a mask). */
enum {
    EV_STR = 1 << 0,
    EV_INT = 1 << 1,
    EV_BOOL = 1 << 2,
    EV_ARRAY = 1 << 3,
    EV_OBJECT = 1 << 4,
    EV_NULL = 1 << 5,
};

typedef struct event_field {
    const char *name;
    unsigned types;  /* EV_* mask */
    bool always;     /* present in every event of its kind */
    const char *doc; /* one line: what it says */
} event_field_t;

typedef struct event_def {
    event_id_t id;
    const char *name;
    bool journaled;              /* appended to the rollout's journal */
    const char *doc;             /* when it is said */
    const char *text;            /* what the text output shows of it */
    const event_field_t *fields; /* ends with a {NULL} entry */
} event_def_t;

/* Fields every event carries (emit() adds schema, rollout and at). */
extern const event_field_t event_common_fields[];

/* The entry of an event by name, or NULL when there is none. */
const event_def_t *event_def(const char *name);
/* All entries, in the order of event_id_t. */
const event_def_t *event_defs(size_t *ret_n);
/* A field of an event (its own or a common one), or NULL. */
const event_field_t *event_field(const event_def_t *def, const char *name);
/* 0 when `e` is an event the registry knows, with only fields it lists, of their types, and
 * every field it says is always there; otherwise -EINVAL and why in `why`. `complete`: also
 * the common fields (an event as emitted, not as built). */
int event_check(json_t *e, bool complete, char *why, size_t len);
/* Under BATON_EVENTS_STRICT=1 (the test suite), aborts with a message naming what is wrong when
 * event_check() refuses `e` (as emitted); otherwise nothing. */
void event_check_strict(json_t *e);
/* Sets what every event carries: schema, rollout (the id) and at (now, UTC, ms). */
void event_stamp(json_t *e, const char *rollout_id);
/* The registry as a JSON Schema (draft 2020-12): one object schema per event, under "oneOf". */
json_t *event_schema_json(void);

#endif
