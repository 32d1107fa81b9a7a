/* live: see live.h. */
#include "live.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

struct row {
    char step[24];     /* the step in flight, or the last one */
    char result[96];   /* "ok", "FAIL: …", "rolled back", … */
    uint64_t since_ms; /* when the step started */
    uint64_t start_ms; /* when the node started; 0 = not yet */
    uint64_t end_ms;   /* when it settled; 0 = not yet */
    bool done;         /* committed */
};

struct live {
    bool table;   /* the upgrade began: draw the table */
    size_t drawn; /* lines of the table on screen */
    size_t n;
    struct row *rows;
};

live_t *live_new(const struct run *run)
{
    if (run->opts->json || !isatty(STDOUT_FILENO) || getenv("BATON_PLAIN"))
        return NULL;
    live_t *l = calloc(1, sizeof(*l));
    if (!l || !(l->rows = calloc(run->n ? run->n : 1, sizeof(*l->rows)))) {
        free(l);
        return NULL;
    }
    l->n = run->n;
    return l;
}

void live_destroy(live_t **l_p)
{
    if (!*l_p)
        return;
    free((*l_p)->rows);
    free(*l_p);
    *l_p = NULL;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void erase(live_t *l)
{
    for (size_t i = 0; i < l->drawn; i++)
        fputs("\033[1A\033[2K", stdout); /* up one line, clear it */
    l->drawn = 0;
}

static void draw(live_t *l, const struct run *run)
{
    uint64_t now = now_ms(), spent = 0;
    size_t done = 0, settled = 0, skipped = 0, active = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct row *r = &l->rows[i];
        const node_t *nd = &run->nodes[i];
        if (nd->state == NODE_SKIP) {
            printf("  %-12s %-10s %8s  already on the target version\n", nd->def->name, "-", "");
            done++;
            skipped++;
            l->drawn++;
            continue;
        }
        if (!r->start_ms) {
            printf("  %-12s %-10s %8s  waiting (batch %zu)\n", nd->def->name, "-", "", nd->batch);
        } else {
            uint64_t t = (r->end_ms ? r->end_ms : now) - (r->end_ms ? r->start_ms : r->since_ms);
            printf("  %-12s %-10s %6.1f s  %s\n", nd->def->name, r->step, (double)t / 1000.0,
                   r->result);
        }
        l->drawn++;
        if (r->end_ms) {
            settled++;
            spent += r->end_ms - r->start_ms;
        } else if (r->start_ms) {
            active++;
        }
        done += r->done;
    }
    /* Time left: the mean time of a settled node for each node not settled, spread over the
     * nodes that run side by side. A guess, said as one. */
    size_t left = l->n - settled - skipped;
    char eta[48] = "";
    if (settled && left)
        snprintf(eta, sizeof(eta), ", about %.0f s left",
                 (double)spent / (double)settled * (double)left / (double)(active ? active : 1) /
                     1000.0);
    printf("  %zu/%zu done, %.1f s%s\n", done, l->n, (double)(now - run->start_ms) / 1000.0, eta);
    l->drawn++;
    fflush(stdout);
}

static struct row *row_of(live_t *l, const struct run *run, const char *node)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(run->nodes[i].def->name, node))
            return &l->rows[i];
    return NULL;
}

bool live_event(live_t *l, const struct run *run, json_t *e)
{
    const char *ev = str(e, "event");
    struct row *r = row_of(l, run, str(e, "node"));
    uint64_t now = now_ms();
    if (!strcmp(ev, "plan"))
        l->table = true;
    if (!strcmp(ev, "summary")) { /* the last table stays on screen, the summary under it */
        l->table = false;
        l->drawn = 0;
        return false;
    }
    if (!l->table || !r ||
        (strcmp(ev, "node") && strcmp(ev, "step") && strcmp(ev, "progress") &&
         strcmp(ev, "rollback"))) {
        /* Not a node's progress: printed above the table by the caller, table redrawn after. */
        if (l->table)
            erase(l);
        return false;
    }
    bool ok = json_is_true(json_object_get(e, "ok"));
    if (!strcmp(ev, "node")) {
        if (strstr(str(e, "message"), "upgrading") || strstr(str(e, "message"), "undoing")) {
            r->start_ms = r->since_ms = now;
            snprintf(r->step, sizeof(r->step), "stop");
            snprintf(r->result, sizeof(r->result), "running");
        }
    } else if (!strcmp(ev, "progress")) {
        snprintf(r->step, sizeof(r->step), "%s", str(e, "step"));
        snprintf(r->result, sizeof(r->result), "%s", str(e, "message"));
    } else if (!strcmp(ev, "step")) {
        const char *step = str(e, "step");
        if (!ok || !strcmp(step, "commit")) {
            r->end_ms = now;
            r->done = ok;
            snprintf(r->step, sizeof(r->step), "%s", step);
            snprintf(r->result, sizeof(r->result), "%s%s",
                     ok ? "done" : "FAIL: ", ok ? "" : str(e, "message"));
        } else {
            snprintf(r->result, sizeof(r->result), "%s ok, next", step);
            r->since_ms = now;
        }
    } else { /* rollback */
        r->end_ms = now;
        r->done = false;
        snprintf(r->step, sizeof(r->step), "rollback");
        snprintf(r->result, sizeof(r->result), "%s: %s", ok ? "rolled back" : "ROLLBACK FAILED",
                 str(e, "message"));
    }
    erase(l);
    draw(l, run);
    return true;
}

void live_redraw(live_t *l, const struct run *run)
{
    if (l->table && !l->drawn)
        draw(l, run);
}
