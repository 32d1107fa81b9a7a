/* recap: see recap.h. */
#include "recap.h"

#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "node.h"
#include "steps.h"
#include "term.h"

struct recap_row {
    char before[64]; /* the version its Hello reported */
    char after[64];  /* after its commit, or its rollback; "" when unchanged */
    long long down_ms;
    long long stop_failed_ms; /* a failed stop's time: not down if a release follows */
    bool began;               /* an upgrade or an undo began on it */
};

struct recap {
    size_t n;
    struct recap_row *rows;
};

recap_t *recap_new(const struct run *run)
{
    recap_t *r = calloc(1, sizeof(*r));
    if (!r || !(r->rows = calloc(run->n ? run->n : 1, sizeof(*r->rows)))) {
        free(r);
        return NULL;
    }
    r->n = run->n;
    return r;
}

void recap_destroy(recap_t **r_p)
{
    if (!*r_p)
        return;
    free((*r_p)->rows);
    free(*r_p);
    *r_p = NULL;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* The steps during which the service does not serve: from stop to the end of start, in the
 * step table's order (common/steps.h), not a list of names of its own. */
static bool down_step(const char *step)
{
    const step_def_t *d = step_by_name(step);
    return d && d->id >= STEP_STOP && d->id <= STEP_START;
}

void recap_event(recap_t *r, const struct run *run, json_t *e)
{
    const char *ev = str(e, "event"), *node = str(e, "node");
    struct recap_row *row = NULL;
    for (size_t i = 0; i < r->n && i < run->n; i++)
        if (!strcmp(run->nodes[i].def->name, node))
            row = &r->rows[i];
    if (!row)
        return;
    long long ms = json_integer_value(json_object_get(e, "ms"));
    bool ok = json_is_true(json_object_get(e, "ok"));
    if (!strcmp(ev, "check") && !strcmp(str(e, "phase"), "hello") && *str(e, "version")) {
        snprintf(row->before, sizeof(row->before), "%s", str(e, "version"));
    } else if (!strcmp(ev, "node")) {
        /* Only an upgrade or an undo begins; a note ("already on the target version", a
         * staging retry) does not. */
        const char *msg = str(e, "message");
        row->began |= strstr(msg, "upgrading") || strstr(msg, "undoing");
    } else if (!strcmp(ev, "step")) {
        /* A stop that failed before systemd was asked (the lock refused, the drain failed)
         * stopped nothing and the node is only released; one that failed after it is rolled
         * back (steps.c). Its time is downtime only in the second case, known at the rollback. */
        if (!ok && !strcmp(str(e, "step"), "stop"))
            row->stop_failed_ms += ms;
        else if (down_step(str(e, "step")))
            row->down_ms += ms;
        if (ok && !strcmp(str(e, "step"), "commit"))
            snprintf(row->after, sizeof(row->after), "%s", run->rf->version);
    } else if (!strcmp(ev, "rollback")) {
        /* The agent answers a rollback of a node that changed nothing live as a release, with
         * no version (decide_rollback, common/steps.c): the service never stopped. */
        bool release = ok && !*str(e, "version");
        row->began = true;
        if (!release)
            row->down_ms += ms + row->stop_failed_ms;
        row->stop_failed_ms = 0;
        snprintf(row->after, sizeof(row->after), "%s", ok ? str(e, "version") : "?");
    }
}

/* How a node ended, in the words of the table. */
static const char *outcome(node_state_t s)
{
    switch (s) {
    case NODE_DONE:
        return "upgraded";
    case NODE_VERIFIED:
        return "verified, not committed";
    case NODE_SKIP:
        return "already there";
    case NODE_ROLLED_BACK:
        return "rolled back";
    case NODE_ROLLBACK_FAILED:
        return "ROLLBACK FAILED";
    case NODE_LOST:
        return "LOST";
    case NODE_LEFT:
        return "LEFT IN FLIGHT";
    case NODE_BAD:
        return "refused";
    default:
        return "not started";
    }
}

json_t *recap_json(const recap_t *r, const struct run *run)
{
    bool any = false;
    for (size_t i = 0; r && i < r->n; i++)
        any |= r->rows[i].began;
    if (!any)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < r->n && i < run->n; i++) {
        const struct recap_row *row = &r->rows[i];
        node_state_t s = run->nodes[i].state;
        /* Verified (rollback-all stopped before the commit) runs the new version; a node LOST
         * or left in flight runs what its agent will say, not what the table could guess. */
        const char *after = s == NODE_VERIFIED                 ? run->rf->version
                            : s == NODE_LOST || s == NODE_LEFT ? "?"
                            : *row->after                      ? row->after
                                                               : row->before;
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "node",
                                           run->nodes[i].def->name, "before", row->before, "after",
                                           after, "down_ms",
                                           (json_int_t)(row->down_ms + row->stop_failed_ms),
                                           "state", node_state_name(s), "outcome", outcome(s)));
    }
    return a;
}

void recap_print(FILE *f, json_t *recap)
{
    if (!json_array_size(recap))
        return;
    fprintf(f, "%s%-12s %-10s %-10s %8s  %s%s\n", term_paint(PAINT_BOLD), "RECAP", "BEFORE",
            "AFTER", "DOWN", "OUTCOME", term_paint(PAINT_OFF));
    for (size_t i = 0; i < json_array_size(recap); i++) {
        json_t *row = json_array_get(recap, i);
        const char *state = str(row, "state");
        long long down = json_integer_value(json_object_get(row, "down_ms"));
        char d[24] = "-";
        if (down > 0)
            snprintf(d, sizeof(d), "%.1f s", (double)down / 1000.0);
        term_paint_t p = !strcmp(state, "done")          ? PAINT_OK
                         : !strcmp(state, "rolled_back") ? PAINT_WARN
                         : !strcmp(state, "rollback_failed") || !strcmp(state, "lost") ||
                                 !strcmp(state, "left_in_flight")
                             ? PAINT_FAIL
                             : PAINT_DIM;
        fprintf(f, "%-12s %-10s %-10s %8s  %s%s%s\n", str(row, "node"),
                *str(row, "before") ? str(row, "before") : "?",
                *str(row, "after") ? str(row, "after") : "?", d, term_paint(p), str(row, "outcome"),
                term_paint(PAINT_OFF));
    }
}
