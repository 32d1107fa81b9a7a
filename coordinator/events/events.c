/* events: what the coordinator says. Every event is one JSON object (jansson); it is appended to
 * the rollout's journal, then --json prints it as it is, one per line, and the text mode renders
 * the same object for a terminal, so all three say exactly the same things. Which events there
 * are, their fields, and which the journal keeps: event_registry.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "event_registry.h"
#include "interrupt.h"
#include "live.h"
#include "recap.h"
#include "rollout_metrics.h"
#include "engine.h"
#include "run.h"
#include "events.h"
#include "node.h"
#include "term.h"

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Step lines carry no node name (they read as a list under the node's header); when nodes run
 * side by side, a header line says whose lines follow. */
static const char *known_node(const struct run *run, const char *node)
{
    for (size_t i = 0; i < run->n; i++)
        if (!strcmp(run->nodes[i].def->name, node))
            return run->nodes[i].def->name;
    return NULL;
}

static void node_header(struct run *run, const char *node)
{
    if (run->last_node && !strcmp(run->last_node, node))
        return;
    printf("[%s]\n", node);
    run->last_node = known_node(run, node);
}

void event_print_step(FILE *f, json_t *e)
{
    bool ok = json_is_true(json_object_get(e, "ok"));
    fprintf(f, "  %-10s %s%-4s%s %6lld ms  %s\n", str(e, "step"),
            term_paint(ok ? PAINT_OK : PAINT_FAIL), ok ? "ok" : "FAIL", term_paint(PAINT_OFF),
            json_integer_value(json_object_get(e, "ms")), str(e, "message"));
    /* The service's own words, under the line that says it failed. */
    json_t *log = json_object_get(e, "unit_log");
    for (size_t i = 0; i < json_array_size(log); i++)
        fprintf(f, "               | %s\n", json_string_value(json_array_get(log, i)) ?: "");
}

/* Status keeps under 100 columns: what changes from node to node on the first line, what
 * identifies it (agent, key, database) and its last versions on the next. */
#define STATUS_HISTORY 4 /* versions shown; --json has them all */

void status_print_header(void)
{
    printf("%s%-10s %-24s %-10s %-10s %-16s %s%s\n", term_paint(PAINT_BOLD), "NODE", "ENDPOINT",
           "VERSION", "UNIT", "LAST STEP", "ROLLOUT", term_paint(PAINT_OFF));
}

static void render_status(json_t *e)
{
    const char *unit = str(e, "unit_state");
    term_paint_t p = !strcmp(unit, "active") ? PAINT_OFF : PAINT_WARN;
    printf("%-10s %-24s %-10s %s%-10s%s %-16s %s\n", str(e, "node"), str(e, "endpoint"),
           str(e, "version"), term_paint(p), unit, term_paint(PAINT_OFF), str(e, "step"),
           str(e, "message"));
    if (json_object_get(e, "error")) {
        printf("%-10s %s! %s%s\n", "", term_paint(PAINT_FAIL), str(e, "error"),
               term_paint(PAINT_OFF));
        return;
    }
    printf("%-10s agent %s, key %s, database %s\n", "",
           *str(e, "agent_version") ? str(e, "agent_version") : "?", str(e, "key"),
           *str(e, "database") ? str(e, "database") : "-");
    json_t *h = json_object_get(e, "history");
    size_t n = json_array_size(h), from = n > STATUS_HISTORY ? n - STATUS_HISTORY : 0;
    if (!n)
        return;
    printf("%-10s history", "");
    if (from)
        printf(" (last %d of %zu)", STATUS_HISTORY, n);
    printf(":");
    for (size_t k = from; k < n; k++)
        printf(" %s%s%s", str(json_array_get(h, k), "version"),
               *str(json_array_get(h, k), "dump") ? " (dump kept)" : "", k + 1 < n ? "," : "");
    printf("; highest %s\n", str(e, "highest_version"));
}

static void render_text(struct run *run, const event_def_t *def, json_t *e)
{
    const char *node = str(e, "node"), *msg = str(e, "message");
    bool ok = json_is_true(json_object_get(e, "ok"));
    long long ms = json_integer_value(json_object_get(e, "ms"));
    switch (def->id) {
    case EVENT_START:
        printf("baton: %s %s: %s -> %s on %zu nodes\n",
               json_is_true(json_object_get(e, "resumed")) ? "resuming rollout" : "rollout",
               str(e, "rollout"), str(e, "service"), str(e, "version"),
               json_array_size(json_object_get(e, "nodes")));
        if (json_integer_value(json_object_get(e, "size")))
            printf("  artifact %s (%lld bytes, sha256 %.16s…)\n", str(e, "artifact"),
                   json_integer_value(json_object_get(e, "size")), str(e, "sha256"));
        else /* a URL: each agent pulls it */
            printf("  artifact %s (pulled by each agent, sha256 %.16s…)\n", str(e, "artifact"),
                   str(e, "sha256"));
        break;
    case EVENT_PLAN:
        printf("  plan: %s\n", msg);
        break;
    case EVENT_CHECK:
        printf("  %-10s %-8s %s%-4s%s %6lld ms  %s\n", str(e, "phase"), node,
               term_paint(ok ? PAINT_OFF : PAINT_FAIL), ok ? "ok" : "FAIL", term_paint(PAINT_OFF),
               ms, msg);
        break;
    case EVENT_PAUSED:
    case EVENT_CONTINUED:
    case EVENT_BAKE:
    case EVENT_HALT:
    case EVENT_GROUP:
        printf("%s\n", msg);
        run->last_node = NULL;
        break;
    case EVENT_NODE:
        printf("[%lld/%lld] %s (%s)\n", json_integer_value(json_object_get(e, "index")),
               json_integer_value(json_object_get(e, "of")), node, msg);
        run->last_node = known_node(run, node);
        break;
    case EVENT_PROGRESS:
        if (isatty(STDOUT_FILENO)) {
            node_header(run, node);
            printf("             %s\n", msg);
        }
        break;
    case EVENT_ANALYSIS: {
        const char *v = str(e, "verdict");
        term_paint_t p = !strcmp(v, "success")   ? PAINT_OFF
                         : !strcmp(v, "failure") ? PAINT_FAIL
                                                 : PAINT_WARN;
        if (!*node) /* a bake */
            printf("  batch %-4lld", json_integer_value(json_object_get(e, "batch")));
        else if (run->parallel)
            printf("  %-10s", node);
        else
            node_header(run, node);
        printf("  analysis %s%-12s%s %s\n", term_paint(p), v, term_paint(PAINT_OFF), msg);
        break;
    }
    case EVENT_STEP:
    case EVENT_ROLLBACK:
        /* Nodes side by side: each line names its node (headers would alternate line by
         * line); one at a time: the lines read as a list under the node's header. */
        if (run->parallel) {
            printf("  %-10s", node);
        } else {
            node_header(run, node);
        }
        event_print_step(stdout, e);
        break;
    case EVENT_SUMMARY: {
        recap_print(stdout, json_object_get(e, "recap"));
        term_paint_t p = ok                                                    ? PAINT_OK
                         : json_integer_value(json_object_get(e, "exit")) == 3 ? PAINT_WARN
                                                                               : PAINT_FAIL;
        printf("%s%s%s\n", term_paint(p), msg, term_paint(PAINT_OFF));
        json_t *details = json_object_get(e, "details");
        for (size_t i = 0; i < json_array_size(details); i++)
            printf("  %s\n", json_string_value(json_array_get(details, i)) ?: "");
        break;
    }
    case EVENT_ERROR:
        fprintf(stderr, "baton: %s\n", msg);
        break;
    case EVENT_STATUS:
        render_status(e);
        break;
    default: /* plan_node, rollout: their commands print their own rows; aborted, undone: the
              * summary after them says it */
        break;
    }
    fflush(stdout);
}

void emit(struct run *run, json_t *e)
{
    if (!e)
        return;
    event_stamp(e, run->id);
    if (run->recap)
        recap_event(run->recap, run, e);
    event_check_strict(e);
    const event_def_t *def = event_def(str(e, "event"));
    if (run->journal && !run->journal_failed && def && def->journaled) {
        char *line = json_dumps(e, JSON_COMPACT);
        baton_err_t jerr = {0};
        if (!line || journal_append(run->journal, line, &jerr) < 0) {
            /* Without a durable journal there is no resume: settle the nodes, then stop. */
            fprintf(stderr, "baton: journal: %s; stopping after the steps in flight\n",
                    line ? jerr.msg : "out of memory");
            run->journal_failed = true;
        }
        free(line);
    }
    notifier_event(run->notify, e); /* queued: the network is never waited for here */
    rollout_metrics_event(run->metrics, run, e);
    if (run->opts->json) {
        char *line = json_dumps(e, JSON_COMPACT);
        if (line)
            printf("%s\n", line);
        free(line);
        fflush(stdout);
    } else if (def && (!run->live || !live_event(run->live, run, e))) {
        render_text(run, def, e);
        if (run->live)
            live_redraw(run->live, run);
    }
    json_decref(e);
}

void emit_check(struct run *run, const char *phase, const node_t *nd, bool ok, const char *msg)
{
    emit(run, json_pack("{s:s, s:s, s:s, s:b, s:I, s:s}", "event", "check", "phase", phase, "node",
                        nd->def->name, "ok", ok, "ms", (json_int_t)(now_ms() - nd->call_t0),
                        "message", msg));
}

void emit_node(struct run *run, const node_t *nd, const char *msg)
{
    emit(run, json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "event", "node", "node", nd->def->name,
                        "index", (json_int_t)(nd->index + 1), "of", (json_int_t)run->n, "batch",
                        (json_int_t)nd->batch, "message", msg));
}

void emit_error(struct run *run, const char *msg)
{
    emit(run, json_pack("{s:s, s:s}", "event", "error", "message", msg));
}

void on_progress(const char *node, const Baton__Progress *p, void *userdata)
{
    emit(userdata, json_pack("{s:s, s:s, s:s, s:s}", "event", "progress", "node", node, "step",
                             p->step, "message", p->message));
}

int emit_summary(struct run *run, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = emit_summary_v(run, code, fmt, ap);
    va_end(ap);
    return code;
}

int emit_summary_v(struct run *run, int code, const char *fmt, va_list ap)
{
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    json_t *nodes = json_object();
    for (size_t i = 0; i < run->n; i++)
        json_object_set_new(nodes, run->nodes[i].def->name,
                            json_string(node_state_name(run->nodes[i].state)));
    /* A resume refused before it changed anything is no end of the rollout it was asked to
     * resume: its refusal is printed, not journaled there (`baton list` keeps the real end). */
    journal_t *journal = run->journal;
    if (run->record && code == EXIT_REFUSED)
        run->journal = NULL;
    /* One line says how it ended; the lines under it (which node, why, what next) are a list,
     * and the line that says what to do next is also "next", for a program to show. */
    json_t *details = json_array();
    const char *next = NULL;
    char *nl = msg ? strchr(msg, '\n') : NULL;
    if (nl)
        *nl = '\0';
    for (char *l = nl ? nl + 1 : NULL; l; l = nl ? nl + 1 : NULL) {
        if ((nl = strchr(l, '\n')))
            *nl = '\0';
        l += strspn(l, " ");
        if (!*l)
            continue;
        json_array_append_new(details, json_string(l));
        if (!next && (!strncmp(l, "next: ", 6) || !strncmp(l, "to continue: ", 13)) &&
            strstr(l, "baton "))
            next = strchr(l, ':') + 2;
    }
    json_t *s = json_pack("{s:s, s:b, s:i, s:I, s:s, s:o, s:b, s:o}", "event", "summary", "ok",
                          code == 0, "exit", code, "ms", (json_int_t)(now_ms() - run->start_ms),
                          "message", msg ? msg : "out of memory", "details", details, "interrupted",
                          interrupt_count() > 0, "nodes", nodes);
    if (s && next)
        json_object_set_new(s, "next", json_string(next));
    json_t *recap = s && run->recap ? recap_json(run->recap, run) : NULL;
    if (recap)
        json_object_set_new(s, "recap", recap);
    emit(run, s);
    run->journal = journal;
    free(msg);
    /* The end is on record only once every line is stored (a journal database that was away
     * gets what was held for it now, within its grace). */
    baton_err_t serr = {0};
    if (run->journal && !run->journal_failed && journal_sync(run->journal, &serr) < 0) {
        fprintf(stderr, "baton: journal: %s\n", serr.msg);
        run->journal_failed = true;
    }
    /* A rollout whose end is not on record is not done as far as anyone reading the journal
     * (`baton list`, `baton resume`, another controller) can tell: never exit 0 then. */
    if (code == EXIT_DONE && run->journal && run->journal_failed) {
        fprintf(stderr,
                "baton: the journal does not record how this rollout ended: exit %d; "
                "`baton status FILE` shows where every node stands\n",
                EXIT_NEEDS_CARE);
        code = EXIT_NEEDS_CARE;
    }
    return code;
}

char *node_names(const struct run *run, node_state_t a, node_state_t b)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    bool any = false;
    for (size_t i = 0; i < run->n; i++)
        if (run->nodes[i].state == a || run->nodes[i].state == b) {
            fprintf(f, "%s%s", any ? ", " : "", run->nodes[i].def->name);
            any = true;
        }
    if (!any)
        fputs("none", f);
    fclose(f);
    return buf;
}
