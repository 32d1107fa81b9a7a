/* live: see live.h. */
#include "live.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "run.h"
#include "events.h"
#include "engine.h"
#include "term.h"

struct row {
    char step[24];    /* the step or check in flight, or the last one */
    char result[160]; /* what it says: "running", "FAIL: …", "rolled back: …" */
    term_paint_t paint;
    uint64_t since_ms; /* when that step started */
    uint64_t start_ms; /* when its upgrade began; 0 = not yet */
    uint64_t end_ms;   /* when it settled; 0 = not yet */
    bool done;         /* committed */
    char *log;         /* its step lines, printed above the table when it settles */
    size_t log_len;
    FILE *logf;
};

struct live {
    bool table;   /* the run began: draw the table */
    bool upgrade; /* the plan was made: the rows are the upgrade's */
    size_t drawn; /* lines of the table on screen */
    uint64_t drawn_at;
    size_t n;
    struct row *rows;
};

live_t *live_new(const struct run *run)
{
    if (run->opts->json || !term_live())
        return NULL;
    live_t *l = calloc(1, sizeof(*l));
    if (!l || !(l->rows = calloc(run->n ? run->n : 1, sizeof(*l->rows)))) {
        free(l);
        return NULL;
    }
    l->n = run->n;
    return l;
}

static void row_log_close(struct row *r)
{
    if (r->logf)
        fclose(r->logf);
    r->logf = NULL;
}

void live_destroy(live_t **l_p)
{
    live_t *l = *l_p;
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        row_log_close(&l->rows[i]);
        free(l->rows[i].log);
    }
    free(l->rows);
    free(l);
    *l_p = NULL;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Up one line and clear it, for each line of the table: never "clear to the end of the
 * screen", which tmux (scroll-on-clear) and some terminals turn into a copy of the whole
 * screen in the scrollback when the table starts at the top. Flushed, so that a line the
 * caller writes to stderr next is not wiped. */
static void erase(live_t *l)
{
    for (size_t i = 0; i < l->drawn; i++)
        fputs("\033[1A\033[2K", stdout);
    l->drawn = 0;
    fflush(stdout);
}

static void term_size(size_t *cols, size_t *rows)
{
    struct winsize ws;
    bool known = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0;
    *cols = known && ws.ws_col >= 2 ? ws.ws_col : 80;
    *rows = known && ws.ws_row >= 1 ? ws.ws_row : 24;
}

/* One line of the table: `head` as it is, `tail` painted; cut so that it never wraps (a
 * wrapped line would be one the next erase does not reach). */
static void line(live_t *l, size_t cols, const char *head, term_paint_t paint, const char *tail)
{
    size_t room = cols - 1, hl = strlen(head);
    if (hl > room)
        hl = room;
    size_t tl = strlen(tail);
    if (tl > room - hl) {
        tl = room - hl;
        while (tl > 0 && ((unsigned char)tail[tl] & 0xC0) == 0x80)
            tl--; /* not inside a UTF-8 character */
    }
    printf("%.*s%s%.*s%s\n", (int)hl, head, term_paint(paint), (int)tl, tail,
           term_paint(PAINT_OFF));
    l->drawn++;
}

/* True for a row shown when the table does not fit the screen: a node in flight, or one
 * that failed (what the operator watches). */
static bool row_urgent(const live_t *l, const struct row *r)
{
    return (r->start_ms && !r->end_ms) || (r->end_ms && !r->done) || (!l->upgrade && r->since_ms);
}

static void draw(live_t *l, const struct run *run)
{
    uint64_t now = now_ms(), spent = 0;
    size_t done = 0, settled = 0, skipped = 0, active = 0, cols, rows, hidden = 0;
    term_size(&cols, &rows);
    /* A table taller than the screen could not be erased (the cursor stops at the top): the
     * table keeps to rows - 1 lines (the cursor waits on the last). When the nodes do not fit
     * with the line under them, only the nodes in flight or failed get a line, and one line
     * counts the rest; on a screen of one or two rows, only the line under them is left. */
    size_t budget = rows - 1, shown = 0;
    bool all = l->n + 1 <= budget;
    size_t room = budget >= 2 ? budget - 1 : 0; /* lines for nodes and the count of the rest */
    char head[96];
    for (size_t i = 0; i < l->n; i++) {
        const struct row *r = &l->rows[i];
        const node_t *nd = &run->nodes[i];
        if (!all && (!row_urgent(l, r) || shown + 1 >= room)) {
            hidden++;
            if (l->upgrade && nd->state == NODE_SKIP) {
                done++;
                skipped++;
            } else if (r->end_ms) {
                settled++;
                spent += r->end_ms - r->start_ms;
                done += r->done;
            }
            continue;
        }
        shown++;
        if (l->upgrade && nd->state == NODE_SKIP) {
            snprintf(head, sizeof(head), "  %-12s %-10s %8s  ", nd->def->name, "-", "");
            line(l, cols, head, PAINT_DIM, "already on the target version");
            done++;
            skipped++;
            continue;
        }
        if (!r->since_ms) {
            snprintf(head, sizeof(head), "  %-12s %-10s %8s  ", nd->def->name, "-", "");
            char wait[48];
            snprintf(wait, sizeof(wait), l->upgrade ? "waiting (batch %zu)" : "waiting", nd->batch);
            line(l, cols, head, PAINT_DIM, wait);
            continue;
        }
        uint64_t t = r->end_ms ? r->end_ms - r->start_ms : now - r->since_ms;
        snprintf(head, sizeof(head), "  %-12s %-10s %6.1f s  ", nd->def->name, r->step,
                 (double)t / 1000.0);
        line(l, cols, head, r->paint, r->result);
        if (r->end_ms) {
            settled++;
            spent += r->end_ms - r->start_ms;
        } else if (r->start_ms) {
            active++;
        }
        done += r->done;
    }
    if (hidden && room) {
        char more[64];
        snprintf(more, sizeof(more), "… and %zu more", hidden);
        line(l, cols, "  ", PAINT_DIM, more);
    }
    /* Time left: the mean time of a settled node for each node not settled, spread over the
     * nodes that run side by side. A guess, said as one. */
    size_t left = l->n - settled - skipped;
    char foot[128], eta[48] = "";
    if (l->upgrade && settled && left)
        snprintf(eta, sizeof(eta), ", about %.0f s left",
                 (double)spent / (double)settled * (double)left / (double)(active ? active : 1) /
                     1000.0);
    if (l->upgrade)
        snprintf(foot, sizeof(foot), "  %zu/%zu done, %.1f s%s", done, l->n,
                 (double)(now - run->start_ms) / 1000.0, eta);
    else
        snprintf(foot, sizeof(foot), "  checking %zu nodes, %.1f s", l->n,
                 (double)(now - run->start_ms) / 1000.0);
    if (budget)
        line(l, cols, foot, PAINT_OFF, "");
    l->drawn_at = now;
    fflush(stdout);
}

static struct row *row_of(live_t *l, const struct run *run, const char *node)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(run->nodes[i].def->name, node))
            return &l->rows[i];
    return NULL;
}

/* A settled node's step lines, above the table, under its name. */
static void flush_log(live_t *l, const struct run *run, struct row *r)
{
    row_log_close(r);
    if (!r->log || !r->log_len)
        return;
    erase(l);
    printf("[%s]\n%s", run->nodes[r - l->rows].def->name, r->log);
    free(r->log);
    r->log = NULL;
    r->log_len = 0;
}

static void keep_line(struct row *r, json_t *e)
{
    if (!r->logf && !(r->logf = open_memstream(&r->log, &r->log_len)))
        return;
    event_print_step(r->logf, e);
}

static void set(struct row *r, const char *step, term_paint_t paint, const char *fmt, const char *a,
                const char *b)
{
    if (step)
        snprintf(r->step, sizeof(r->step), "%s", step);
    snprintf(r->result, sizeof(r->result), fmt, a, b);
    /* One line of known width: a tab, a carriage return or an escape from a command's output
     * would move the cursor where erase() does not look. */
    for (char *c = r->result; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
    r->paint = paint;
}

/* The checks before the upgrade: a row per node says where its checks are; a failed one is
 * printed above the table as well (it is why the rollout will be refused). */
static bool check_event(live_t *l, struct row *r, const char *ev, json_t *e)
{
    uint64_t now = now_ms();
    if (!strcmp(ev, "check")) {
        bool ok = json_is_true(json_object_get(e, "ok"));
        /* A warning in a passed check (a downgrade) stays on screen, above the table. */
        bool warn = ok && strstr(str(e, "message"), "DOWNGRADE");
        if (!r->since_ms)
            r->start_ms = now;
        r->since_ms = now;
        set(r, str(e, "phase"), ok ? PAINT_OFF : PAINT_FAIL, "%s%s",
            ok ? "ok: " : "FAIL: ", str(e, "message"));
        if (!ok || warn) {
            erase(l);
            return false; /* printed above, then the table again */
        }
    } else { /* progress */
        set(r, str(e, "step"), PAINT_OFF, "%s%s", str(e, "message"), "");
    }
    erase(l);
    return true;
}

bool live_event(live_t *l, const struct run *run, json_t *e)
{
    const char *ev = str(e, "event");
    struct row *r = row_of(l, run, str(e, "node"));
    uint64_t now = now_ms();
    bool ok = json_is_true(json_object_get(e, "ok"));
    if (!strcmp(ev, "start")) {
        l->table = true; /* the start's lines first, then the table under them */
        return false;
    }
    if (!strcmp(ev, "summary")) {
        /* The table goes; every node's lines, the recap and the summary stay. */
        erase(l);
        for (size_t i = 0; i < l->n; i++)
            flush_log(l, run, &l->rows[i]);
        l->table = false;
        return false;
    }
    if (!strcmp(ev, "plan")) {
        l->upgrade = true;
        for (size_t i = 0; i < l->n; i++) {
            struct row *x = &l->rows[i];
            x->since_ms = x->start_ms = x->end_ms = 0;
        }
    }
    bool progress = !strcmp(ev, "progress");
    if (l->table && r && !l->upgrade && (!strcmp(ev, "check") || progress)) {
        if (!check_event(l, r, ev, e))
            return false;
        draw(l, run);
        return true;
    }
    if (!l->table || !r ||
        (strcmp(ev, "node") && strcmp(ev, "step") && !progress && strcmp(ev, "rollback"))) {
        /* Not a node's progress: printed above the table by the caller, table redrawn after. */
        erase(l);
        return false;
    }
    if (!strcmp(ev, "node")) {
        const char *msg = str(e, "message");
        if (!strstr(msg, "upgrading") && !strstr(msg, "undoing")) {
            erase(l); /* a note about the node (a retry, a stop for a restore): above */
            return false;
        }
        r->start_ms = r->since_ms = now;
        r->end_ms = 0;
        set(r, strstr(msg, "undoing") ? "rollback" : "stop", PAINT_OFF, "%s%s", "running", "");
    } else if (progress) {
        set(r, str(e, "step"), PAINT_OFF, "%s%s", str(e, "message"), "");
    } else if (!strcmp(ev, "step")) {
        const char *step = str(e, "step");
        keep_line(r, e);
        if (!ok || !strcmp(step, "commit")) {
            r->end_ms = now;
            r->done = ok;
            set(r, step, ok ? PAINT_OK : PAINT_FAIL, "%s%s",
                ok ? "done" : "FAIL: ", ok ? "" : str(e, "message"));
            if (ok)
                flush_log(l, run, r);
        } else {
            set(r, NULL, PAINT_OFF, "%s ok, next", step, "");
            r->since_ms = now;
        }
    } else { /* rollback */
        keep_line(r, e);
        r->end_ms = now;
        r->done = false;
        set(r, "rollback", ok ? PAINT_WARN : PAINT_FAIL, "%s: %s",
            ok ? "rolled back" : "ROLLBACK FAILED", str(e, "message"));
        flush_log(l, run, r);
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

void live_tick(live_t *l, const struct run *run, uint64_t now)
{
    if (l && l->table && l->drawn && now - l->drawn_at >= LIVE_TICK_MS) {
        erase(l);
        draw(l, run);
    }
}
