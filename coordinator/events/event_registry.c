/* event_registry: the table of every event (event_registry.h says why it is one table). */
#include "event_registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F(name, types, always, doc)                                                                \
    {                                                                                              \
        name, types, always, doc                                                                   \
    }
#define END                                                                                        \
    {                                                                                              \
        NULL, 0, false, NULL                                                                       \
    }
#define S EV_STR
#define I EV_INT
#define B EV_BOOL
#define A EV_ARRAY
#define O EV_OBJECT

const event_field_t event_common_fields[] = {
    F("event", S, true, "the event's name"),
    F("schema", I, true, "the version of this schema (2)"),
    F("rollout", S, true, "the rollout's id"),
    F("at", S, true, "when, UTC to the millisecond (ISO 8601)"),
    END,
};

static const event_field_t f_start[] = {
    F("service", S, true, "the service upgraded"),
    F("version", S, true, "the version it goes to"),
    F("nodes", A, true, "the nodes' names, in file order"),
    F("artifact", S, true, "the artifact's path, or the URL each agent pulls it from"),
    F("size", I, true, "its size in bytes; 0 for a URL (the agents learn it)"),
    F("sha256", S, true, "its digest"),
    F("file", S, true, "the rollout file's absolute path"),
    F("resumed", B, true, "a `baton resume` of this rollout"),
    END,
};

static const event_field_t f_check[] = {
    F("phase", S, true, "`hello`, `stage`, `preflight` or `release`"),
    F("node", S, true, "the node"),
    F("ok", B, true, "passed"),
    F("ms", I, true, "how long it took"),
    F("message", S, true, "what it found"),
    F("version", S, false, "hello: the version installed"),
    END,
};

static const event_field_t f_plan[] = {
    F("batches", A, true, "lists of node names, in the order they go"),
    F("max_unavailable", I | EV_NULL, true,
      "nodes down at once; null: as many as a batch holds (or with maintenance every node of a "
      "database)"),
    F("maintenance", B, true, "every node of a database stops at once"),
    F("on_failure", S, true, "`halt`, `rollback_all` or `continue`"),
    F("max_failures", I, true, "failed nodes the rollout goes on after"),
    F("databases", A, true, "each `database` (its identity) and its `nodes`"),
    F("message", S, true, "the plan in words"),
    END,
};

static const event_field_t f_node[] = {
    F("node", S, true, "the node"),
    F("index", I, true, "its place, from 1"),
    F("of", I, true, "the number of nodes"),
    F("batch", I, true, "its batch"),
    F("message", S, true, "`upgrading`, `already on the target version`, …"),
    END,
};

static const event_field_t f_step[] = {
    F("node", S, true, "the node"),
    F("step", S, true, "`stop` … `commit`"),
    F("ok", B, true, "it succeeded"),
    F("ms", I, true, "how long it took"),
    F("message", S, true, "what it did, or why it failed"),
    F("applied", A, false, "the migration ids it applied"),
    F("dump", O, false, "the dump it took: `path`, `size`, `sha256`"),
    F("unit_log", A, false, "a failed start or verify: the unit's last journal lines"),
    F("database", S, false, "dump and migrate: the database's identity, `SYSTEM_ID/NAME`"),
    F("shared", B, false, "dump and migrate: another node of the rollout did it"),
    F("ids", A, false, "migrate: every id in the bookkeeping table afterwards"),
    END,
};

static const event_field_t f_progress[] = {
    F("node", S, true, "the node"),
    F("step", S, true, "the step running"),
    F("message", S, true, "what it is doing"),
    END,
};

static const event_field_t f_rollback[] = {
    F("node", S, true, "the node"),
    F("step", S, true, "`rollback`"),
    F("ok", B, true, "it is back where it was"),
    F("ms", I, true, "how long it took"),
    F("message", S, true, "what it did, or why it failed"),
    F("restored_dump", B, true, "the database was restored from the dump"),
    F("version", S, false, "the version running now"),
    F("schema_change", S, false,
      "what it did to the schema (\"down-migrated the 1 migration this rollout applied\", "
      "\"database restored from the dump …\", \"schema as it was: nothing to undo\")"),
    F("unit_log", A, false, "when it failed: the unit's last journal lines"),
    END,
};

static const event_field_t f_message[] = {
    F("message", S, true, "what happened"),
    END,
};

static const event_field_t f_group[] = {
    F("node", S, true, "the node whose database it is about"),
    F("message", S, true,
      "`restore_shared: stop-group`: the other nodes of a database stop before its dump is "
      "restored"),
    END,
};

static const event_field_t f_paused[] = {
    F("batch", I, true, "the batch it paused after (with `node`: in)"),
    F("of", I, true, "the number of batches"),
    F("node", S, false, "when an analysis was inconclusive: its node, \"\" for a batch's bake"),
    F("message", S, true, "how to go on"),
    END,
};

static const event_field_t f_analysis[] = {
    F("node", S, true, "the node; \"\" for a batch's bake"),
    F("batch", I, false, "a bake: its batch"),
    F("check", S, true, "the check's name in the rollout file"),
    F("verdict", S, true, "`success`, `failure` or `inconclusive`"),
    F("value", S, true, "the number Prometheus answered; \"\" when none"),
    F("measurement", I, true, "this check's measurements taken so far, this one included"),
    F("of", I, true, "the measurements it takes (`count`)"),
    F("message", S, true, "the value against the condition, or why there is no number"),
    END,
};

static const event_field_t f_bake[] = {
    F("batch", I, true, "the batch baked"),
    F("of", I, true, "the number of batches"),
    F("message", S, true, "its checks, and what waits for them"),
    END,
};

static const event_field_t f_continued[] = {
    F("batch", I, true, "the batch it paused after"),
    F("message", S, true, "who continued it"),
    END,
};

static const event_field_t f_status[] = {
    F("node", S, true, "the node"),
    F("endpoint", S, true, "its agent's address"),
    F("version", S, true, "the version installed (`?`: no answer)"),
    F("unit_state", S, true, "the unit's ActiveState"),
    F("step", S, true, "the last step of the service's record"),
    F("message", S, true, "the rollout id of that record, or `-`"),
    F("running", B, false, "a step runs now"),
    F("in_progress", B, false, "the last step was interrupted"),
    F("progress", S, false, "what the running step is doing"),
    F("key", S, false, "the agent's key fingerprint (`insecure`: none)"),
    F("agent_version", S, false, "the agent's own version"),
    F("database", S, false, "the database's identity (`-`: none)"),
    F("history", A, false, "the versions it ran: `version`, `migrations`, `dump`"),
    F("highest_version", S, false, "the highest version it ever ran"),
    F("error", S, false, "a node that did not answer: why (`baton status` then exits 2)"),
    END,
};

static const event_field_t f_plan_node[] = {
    F("node", S, true, "the node"),
    F("target", S, true, "the version the rollout file names"),
    F("ok", B, true, "nothing refuses the rollout here"),
    F("upgrade", B, true, "the node would be upgraded (not on the target already)"),
    F("problems", A, true, "what refuses it, one line each"),
    F("steps", A, true, "the steps it would go through"),
    F("version", S, false, "the version installed"),
    F("active_state", S, false, "the unit's ActiveState"),
    F("downgrade", B, false, "the target is older than what runs"),
    F("warning", S, false, "what a `--restore-dump` downgrade loses"),
    F("binary_sha256", S, false, "the installed binary's digest"),
    F("database_bytes", I, false, "the database's size"),
    F("dump_room_bytes", I, false, "the room its dump may need"),
    F("backup_free_bytes", I, false, "the room free in the backup folder"),
    F("analysis", A, false,
      "each analysis check's query as this node's would read, asked once: `check`, `query`, "
      "`ok` (Prometheus answered it), `value`, `message`"),
    F("backup_dir", S, false, "the backup folder"),
    F("migrations", A, false, "the migration ids applied"),
    F("staged", B, false, "the artifact is staged there already"),
    F("database", S, false, "the database's identity"),
    F("highest_version", S, false, "the highest version it ever ran"),
    F("history", A, false, "the versions it ran"),
    F("rehearse_ms", I, false, "how long the migration took on a copy of the database"),
    F("lock_holder", S, false, "who holds the database's migration lock, or empty"),
    END,
};

static const event_field_t f_rollout[] = {
    F("state", S, true, "`running`, `paused`, `done`, `failed`, `unreadable`, …"),
    F("started_at", S, true, "when it started"),
    F("service", S, true, "the service"),
    F("version", S, true, "the version it went to"),
    F("exit", I, true, "its exit code (-1: no summary)"),
    F("outcome", S, false, "`baton list`: its summary's line"),
    F("file", S, false, "`baton status ID`: the rollout file"),
    F("last_event", S, false, "`baton status ID`: the last event of its journal"),
    END,
};

static const event_field_t f_summary[] = {
    F("ok", B, true, "it ended with every node upgraded"),
    F("exit", I, true, "the exit code"),
    F("ms", I, true, "how long the whole command took"),
    F("message", S, true, "one line: how it ended"),
    F("details", A, true, "the lines under it: each failed node and why, who was upgraded, …"),
    F("interrupted", B, true, "Ctrl-C or SIGTERM ended it"),
    F("nodes", O, true,
      "each node's end state: `done`, `skipped`, `rolled_back`, `rollback_failed`, `lost`, "
      "`released`, …"),
    F("next", S, false, "what to do next, when there is something"),
    F("recap", A, false,
      "a rollout that began: per node `node`, `before`, `after`, `down_ms`, `state`, `outcome`"),
    END,
};

static const event_def_t defs[EVENT_COUNT] = {
    {EVENT_START, "start", true, "a rollout (or its resume) begins",
     "the service, version, artifact", f_start},
    {EVENT_CHECK, "check", true, "a check before anything stops, on one node",
     "a line per node during the checks", f_check},
    {EVENT_PLAN, "plan", true, "the batches, once every check passed", "`plan:` and its words",
     f_plan},
    {EVENT_NODE, "node", true, "a node's turn begins", "`[i/n] node (message)`", f_node},
    {EVENT_STEP, "step", true, "a step of a node ended", "one line, the service's log under it",
     f_step},
    {EVENT_PROGRESS, "progress", false, "what a running step is doing (never journaled)",
     "on a terminal only, under the node", f_progress},
    {EVENT_ROLLBACK, "rollback", true, "a node was rolled back (or released)",
     "one line, like a step", f_rollback},
    {EVENT_GROUP, "group", true, "a decision about a shared database's nodes", "its message",
     f_group},
    {EVENT_HALT, "halt", true, "why no further node starts", "its message", f_message},
    {EVENT_PAUSED, "paused", true, "paused after a batch until `baton resume`", "its message",
     f_paused},
    {EVENT_CONTINUED, "continued", true, "a pause ended by `baton resume`", "its message",
     f_continued},
    {EVENT_ANALYSIS, "analysis", true,
     "one measurement of a node's analysis or a batch's bake (a Prometheus query)",
     "one line under the node", f_analysis},
    {EVENT_BAKE, "bake", true, "a batch's bake begins (its nodes passed; the next batch waits)",
     "its message", f_bake},
    {EVENT_STATUS, "status", false, "`baton status FILE`: one node", "a row of the table",
     f_status},
    {EVENT_PLAN_NODE, "plan_node", false, "`baton plan`: what one node would see",
     "a row of the plan, its problems under it", f_plan_node},
    {EVENT_ABORTED, "aborted", true, "`baton abort` settled a rollout whose coordinator was gone",
     "its message", f_message},
    {EVENT_UNDONE, "undone", true, "`baton rollback ROLLOUT_ID` rolled back what it changed",
     "its message", f_message},
    {EVENT_ROLLOUT, "rollout", false, "`baton list` and `baton status ID`: one rollout",
     "a row of the list", f_rollout},
    {EVENT_ERROR, "error", true, "something went wrong outside any node", "`baton: message`",
     f_message},
    {EVENT_SUMMARY, "summary", true, "the end", "the recap, its line, its details", f_summary},
};

const event_def_t *event_defs(size_t *ret_n)
{
    *ret_n = EVENT_COUNT;
    return defs;
}

const event_def_t *event_def(const char *name)
{
    for (size_t i = 0; name && i < EVENT_COUNT; i++)
        if (!strcmp(defs[i].name, name))
            return &defs[i];
    return NULL;
}

static const event_field_t *find(const event_field_t *fields, const char *name)
{
    for (size_t i = 0; fields[i].name; i++)
        if (!strcmp(fields[i].name, name))
            return &fields[i];
    return NULL;
}

const event_field_t *event_field(const event_def_t *def, const char *name)
{
    const event_field_t *f = find(event_common_fields, name);
    return f ? f : find(def->fields, name);
}

static unsigned type_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return EV_STR;
    case JSON_INTEGER:
        return EV_INT;
    case JSON_TRUE:
    case JSON_FALSE:
        return EV_BOOL;
    case JSON_ARRAY:
        return EV_ARRAY;
    case JSON_OBJECT:
        return EV_OBJECT;
    case JSON_NULL:
        return EV_NULL;
    default:
        return 0; /* a real: no field is one */
    }
}

static int missing(const event_def_t *def, const event_field_t *fields, json_t *e, char *why,
                   size_t len)
{
    for (size_t i = 0; fields[i].name; i++)
        if (fields[i].always && !json_object_get(e, fields[i].name)) {
            snprintf(why, len, "event '%s' lacks its field '%s'", def->name, fields[i].name);
            return -EINVAL;
        }
    return 0;
}

int event_check(json_t *e, bool complete, char *why, size_t len)
{
    const char *name = json_string_value(json_object_get(e, "event"));
    const event_def_t *def = event_def(name);
    if (!json_is_object(e) || !def) {
        snprintf(why, len, "event '%s' is not in the registry", name ? name : "?");
        return -EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(e, key, v)
    {
        const event_field_t *f = event_field(def, key);
        if (!f) {
            snprintf(why, len, "event '%s' has a field the registry lacks: '%s'", name, key);
            return -EINVAL;
        }
        if (!(type_of(v) & f->types)) {
            snprintf(why, len, "event '%s': field '%s' has the wrong type", name, key);
            return -EINVAL;
        }
    }
    if (complete && missing(def, event_common_fields, e, why, len) < 0)
        return -EINVAL;
    return missing(def, def->fields, e, why, len);
}

static json_t *type_schema(unsigned types)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{EV_STR, "string"},  {EV_INT, "integer"},   {EV_BOOL, "boolean"},
                 {EV_ARRAY, "array"}, {EV_OBJECT, "object"}, {EV_NULL, "null"}};
    json_t *list = json_array();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (types & names[i].bit)
            json_array_append_new(list, json_string(names[i].name));
    if (json_array_size(list) == 1) {
        json_t *one = json_incref(json_array_get(list, 0));
        json_decref(list);
        return one;
    }
    return list;
}

static void add_fields(json_t *props, json_t *required, const event_field_t *fields)
{
    for (size_t i = 0; fields[i].name; i++) {
        json_object_set_new(props, fields[i].name,
                            json_pack("{s:o, s:s}", "type", type_schema(fields[i].types),
                                      "description", fields[i].doc));
        if (fields[i].always)
            json_array_append_new(required, json_string(fields[i].name));
    }
}

json_t *event_schema_json(void)
{
    json_t *one_of = json_array();
    for (size_t i = 0; i < EVENT_COUNT; i++) {
        json_t *props = json_object(), *required = json_array();
        add_fields(props, required, event_common_fields);
        add_fields(props, required, defs[i].fields);
        json_object_set_new(json_object_get(props, "event"), "const", json_string(defs[i].name));
        json_array_append_new(one_of,
                              json_pack("{s:s, s:s, s:s, s:o, s:o, s:b}", "title", defs[i].name,
                                        "description", defs[i].doc, "type", "object", "properties",
                                        props, "required", required, "additionalProperties", 0));
    }
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:i, s:o}", "$schema", "https://json-schema.org/draft/2020-12/schema",
        "$id", "https://baton.invalid/events.schema.json", "title", "baton events", "description",
        "One JSON object per line (baton --json, the journal). Stable within a "
        "schema version: a field added keeps the number, one renamed, removed or "
        "given another meaning changes it.",
        "x-baton-schema", EVENTS_SCHEMA, "oneOf", one_of);
}

void event_stamp(json_t *e, const char *rollout_id)
{
    /* The events' schema: a reader checks it before it reads the rest. */
    json_object_set_new(e, "schema", json_integer(EVENTS_SCHEMA));
    json_object_set_new(e, "rollout", json_string(rollout_id ? rollout_id : ""));
    /* When, to the millisecond (UTC): the journal is also the rollout's history. */
    struct timespec ts;
    struct tm tm;
    char at[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(at + len, sizeof(at) - len, ".%03ldZ", ts.tv_nsec / 1000000);
    json_object_set_new(e, "at", json_string(at));
}

/* An event the registry does not know is a bug of this program; under BATON_EVENTS_STRICT=1
 * (the test suite) it ends the program at once, so that the test that reached it fails. */
void event_check_strict(json_t *e)
{
    static int strict = -1;
    if (strict < 0)
        strict = getenv("BATON_EVENTS_STRICT") && !strcmp(getenv("BATON_EVENTS_STRICT"), "1");
    char why[256];
    if (!strict || event_check(e, true, why, sizeof(why)) == 0)
        return;
    fprintf(stderr, "baton: BUG: %s (coordinator/events/event_registry.c)\n", why);
    abort();
}
