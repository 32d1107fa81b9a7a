/* group: see group.h. */
#include "group.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine.h"
#include "run.h"
#include "events.h"
#include "node.h"
#include "steps.h"

static void clear_ids(group_t *g)
{
    for (size_t i = 0; i < g->n_ids; i++)
        free(g->ids[i]);
    free(g->ids);
    g->ids = NULL;
    g->n_ids = 0;
    g->have_ids = false;
}

static int set_ids(group_t *g, char **ids, size_t n)
{
    clear_ids(g);
    if (n && !(g->ids = calloc(n, sizeof(char *))))
        return -ENOMEM;
    for (; g->n_ids < n; g->n_ids++)
        if (!(g->ids[g->n_ids] = strdup(ids[g->n_ids])))
            return -ENOMEM;
    g->have_ids = true;
    return 0;
}

static node_t *node_named(struct run *run, const char *name)
{
    for (size_t i = 0; name && i < run->n; i++)
        if (!strcmp(run->nodes[i].def->name, name))
            return &run->nodes[i];
    return NULL;
}

/* Resuming: the journal names each group's migrator and the ids its migration left. */
static int group_from_journal(struct run *run, group_t *g)
{
    json_t *j = run->record && run->record->groups
                    ? json_object_get(run->record->groups, g->database_id)
                    : NULL;
    if (!j)
        return 0;
    node_t *m = node_named(run, json_string_value(json_object_get(j, "migrator")));
    if (m && m->grp == g)
        g->migrator = m;
    json_t *ids = json_object_get(j, "ids");
    if (!g->migrator || !json_is_array(ids))
        return 0;
    size_t n = json_array_size(ids);
    char **list = calloc(n ? n : 1, sizeof(char *));
    if (!list)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        list[i] = (char *)(json_string_value(json_array_get(ids, i)) ?: "");
    int r = set_ids(g, list, n);
    free(list);
    return r;
}

int group_build(struct run *run)
{
    group_free_all(run);
    if (!(run->groups = calloc(run->n ? run->n : 1, sizeof(group_t))))
        return -ENOMEM;
    for (size_t i = 0; i < run->n; i++) {
        node_t *nd = &run->nodes[i];
        const char *id = nd->database_id ? nd->database_id : "";
        group_t *g = NULL;
        for (size_t k = 0; k < run->n_groups && !g; k++)
            if (!strcmp(run->groups[k].database_id, id))
                g = &run->groups[k];
        if (!g) {
            g = &run->groups[run->n_groups++];
            if (!(g->database_id = strdup(id)))
                return -ENOMEM;
        }
        g->n_nodes++;
        nd->grp = g;
    }
    for (size_t k = 0; k < run->n_groups; k++)
        if (group_from_journal(run, &run->groups[k]) < 0)
            return -ENOMEM;
    /* The agents' own records win over the journal: a node that took this rollout's dump is
     * its database's migrator, and the ids its migration left are on its record. */
    for (size_t i = 0; i < run->n; i++) {
        node_t *nd = &run->nodes[i];
        if (!nd->was_migrator)
            continue;
        nd->grp->migrator = nd;
        if (nd->n_mig_ids && set_ids(nd->grp, nd->mig_ids, nd->n_mig_ids) < 0)
            return -ENOMEM;
    }
    return 0;
}

void group_free_all(struct run *run)
{
    for (size_t k = 0; k < run->n_groups; k++) {
        clear_ids(&run->groups[k]);
        free(run->groups[k].database_id);
    }
    free(run->groups);
    run->groups = NULL;
    run->n_groups = 0;
    for (size_t i = 0; i < run->n; i++)
        run->nodes[i].grp = NULL;
}

char *group_describe(const struct run *run)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    size_t shared = 0;
    for (size_t k = 0; k < run->n_groups; k++)
        shared += run->groups[k].n_nodes > 1;
    fprintf(f, "%zu database%s", run->n_groups, run->n_groups == 1 ? "" : "s");
    if (shared)
        fprintf(f, ", %zu shared (one dump and one migration each)", shared);
    for (size_t k = 0; k < run->n_groups; k++) {
        const group_t *g = &run->groups[k];
        /* The agents' identity of a database is SYSTEM_ID/NAME (the same name on two servers
         * is two databases): said as the name on its server. */
        const char *slash = strchr(g->database_id, '/');
        if (slash)
            fprintf(f, "%s %s (server %.*s): ", k ? ";" : ":", slash + 1,
                    (int)(slash - g->database_id), g->database_id);
        else
            fprintf(f, "%s %s: ", k ? ";" : ":",
                    *g->database_id ? g->database_id : "(not reported)");
        bool first = true;
        for (size_t i = 0; i < run->n; i++)
            if (run->nodes[i].grp == g) {
                fprintf(f, "%s%s", first ? "" : ", ", run->nodes[i].def->name);
                first = false;
            }
    }
    fclose(f);
    return buf;
}

void group_prepare_dump(struct run *run, node_t *nd, void *step)
{
    (void)run;
    Baton__Step *s = step;
    group_t *g = nd->grp;
    if (!g)
        return;
    if (g->migrator && g->migrator != nd && g->have_ids) {
        s->shared_from = (char *)g->migrator->def->name;
        s->n_expect_ids = g->n_ids;
        s->expect_ids = g->ids;
        nd->shared = true;
        return;
    }
    nd->shared = false;
    g->migrator = nd;
}

bool group_dumps_own(const struct run *run, const node_t *nd)
{
    const group_t *g = nd->grp;
    if (run->maintenance)
        return false;
    /* Only when nobody else of the database is its migrator (or this node is): while another
     * node is, whether this one's dump will be shared is not known yet (its migration may
     * still fail), and "no" is the safe answer: the dump takes the lock then, as it always did. */
    return !g || !g->migrator || g->migrator == nd;
}

int group_migrated(struct run *run, node_t *nd, char **ids, size_t n_ids)
{
    (void)run;
    if (!nd->grp || nd->grp->migrator != nd)
        return 0;
    return set_ids(nd->grp, ids, n_ids);
}

void group_rolled_back(struct run *run, node_t *nd)
{
    (void)run;
    if (nd->grp && nd->grp->migrator == nd) {
        nd->grp->migrator = NULL;
        clear_ids(nd->grp);
    }
}

/* Maintenance: every other node of the group is parked (stopped by this rollout, never started
 * on the new version) or was never part of it. */
static bool others_parked(const struct run *run, const node_t *nd)
{
    for (size_t i = 0; i < run->n; i++) {
        const node_t *o = &run->nodes[i];
        if (o != nd && o->grp == nd->grp && !o->parked && o->state != NODE_SKIP)
            return false;
    }
    return true;
}

bool group_no_restore(const struct run *run, const node_t *nd)
{
    if (!nd->grp || nd->grp->n_nodes < 2 || nd->grp->restore == RESTORE_RUNNING)
        return false;
    /* Maintenance style: nobody else serves from it while the first node rolls back. */
    return !(run->maintenance && others_parked(run, nd));
}

static bool in_rollout(const node_t *o)
{
    return o->state == NODE_RESERVED || o->state == NODE_UPGRADING || o->state == NODE_VERIFIED ||
           o->state == NODE_DONE;
}

/* The node that dumps and migrates in maintenance style: the one that did (resuming), else the
 * group's first in file order. */
static const node_t *maint_elect(const struct run *run, const group_t *g)
{
    if (g->migrator)
        return g->migrator;
    for (size_t i = 0; i < run->n; i++)
        if (run->nodes[i].grp == g && in_rollout(&run->nodes[i]))
            return &run->nodes[i];
    return NULL;
}

bool group_maint_may_go(const struct run *run, const node_t *nd)
{
    const group_t *g = nd->grp;
    if (!g)
        return true;
    for (size_t i = 0; i < run->n; i++) {
        const node_t *o = &run->nodes[i];
        if (o == nd || o->grp != g || !in_rollout(o) || o->state == NODE_DONE ||
            o->state == NODE_VERIFIED)
            continue;
        /* Still to stop: not started, or its stop in flight. */
        if (o->state == NODE_RESERVED || o->step == 0)
            return false;
    }
    const node_t *elect = maint_elect(run, g);
    if (!elect || elect == nd)
        return true;
    return elect->state == NODE_VERIFIED || elect->state == NODE_DONE;
}

void group_maint_schedule(struct run *run, const engine_ops_t *ops)
{
    for (size_t i = 0; i < run->n; i++) {
        node_t *nd = &run->nodes[i];
        if (!nd->parked || nd->call != CALL_NONE)
            continue;
        if (!run->halting) {
            if (group_maint_may_go(run, nd)) {
                nd->parked = false;
                node_next_step(run, nd, ops);
            }
            continue;
        }
        /* Halting: back to the old version, once its database's first node is settled. */
        bool busy = false;
        for (size_t k = 0; k < run->n && !busy; k++)
            busy = run->nodes[k].grp == nd->grp && run->nodes[k].call != CALL_NONE;
        if (!busy) {
            nd->parked = false;
            node_set_why(
                nd, "maintenance: the rollout stopped before its database's first node verified");
            nd->call_t0 = now_ms();
            node_rollback(run, nd, false, ops);
        }
    }
}

bool group_hold_release(const struct run *run, const node_t *nd)
{
    const group_t *g = nd->grp;
    if (!g || !run->rf->strategy.restore_stop_group || g->n_nodes < 2)
        return false;
    if (g->restore != RESTORE_NONE)
        return true;
    /* The migrator is rolling back: its answer may be that the group must stop. */
    return g->migrator && g->migrator != nd && g->migrator->call == CALL_ROLLBACK;
}

bool group_restore_needed(struct run *run, node_t *nd, const engine_ops_t *ops)
{
    group_t *g = nd->grp;
    if (!g || !run->rf->strategy.restore_stop_group || g->restore != RESTORE_NONE)
        return false;
    /* Every other node of the group must be one this rollout can stop: reserved (its
     * pre-flight passed, it was not started) or already stopped by it. Any other (upgraded,
     * rolled back, never in the rollout) serves, and the restore would take its writes. */
    for (size_t i = 0; i < run->n; i++) {
        node_t *o = &run->nodes[i];
        if (o != nd && o->grp == g && !(o->state == NODE_RESERVED && o->call == CALL_NONE))
            return false;
    }
    g->restore = RESTORE_STOPPING;
    g->restoring = nd;
    emit(run, json_pack("{s:s, s:s, s:s}", "event", "group", "node", nd->def->name, "message",
                        "restore_shared: stop-group: stopping every other node of this "
                        "database before the dump is restored"));
    for (size_t i = 0; i < run->n; i++) {
        node_t *o = &run->nodes[i];
        if (o == nd || o->grp != g)
            continue;
        o->group_stop = true;
        o->step = 0; /* stop: the first step of the sequence, right after the pre-flight */
        emit_node(run, o, "stopping for the restore of the shared database");
        node_next_step(run, o, ops);
    }
    return true;
}

void group_stop_result(struct run *run, node_t *nd, int r, const char *msg)
{
    (void)run;
    (void)msg;
    /* Stopped, or not: either way it is this rollout's to bring back (its rollback starts it
     * again on the old version); a node that could not be stopped keeps the restore off. */
    nd->state = NODE_UPGRADING;
    if (r < 0 && nd->grp)
        nd->grp_stop_failed = true;
}

bool group_schedule(struct run *run, const engine_ops_t *ops)
{
    bool busy = false;
    for (size_t k = 0; k < run->n_groups; k++) {
        group_t *g = &run->groups[k];
        if (g->restore == RESTORE_NONE && g->migrator && g->migrator->restore_needed &&
            g->migrator->call == CALL_NONE) {
            if (group_restore_needed(run, g->migrator, ops)) {
                g->migrator->restore_needed = false;
                busy = true;
            }
        }
        if (g->restore == RESTORE_NONE)
            continue;
        bool waiting = false, failed = false;
        for (size_t i = 0; i < run->n; i++) {
            node_t *o = &run->nodes[i];
            if (o->grp == g && o->group_stop) {
                waiting |= o->call != CALL_NONE;
                failed |= o->grp_stop_failed;
            }
        }
        if (g->restore == RESTORE_STOPPING && !waiting) {
            node_t *m = g->restoring;
            if (failed) {
                /* A node that would not stop may still serve: no restore. */
                node_set_why(m, "the restore of the shared database needs every node of it "
                                "stopped, and one would not stop");
                g->restore = RESTORE_RESTARTING;
            } else {
                g->restore = RESTORE_RUNNING;
                m->call_t0 = now_ms();
                node_rollback(run, m, false, ops);
                busy = true;
                continue;
            }
        }
        if (g->restore == RESTORE_RUNNING && g->restoring->call == CALL_NONE)
            g->restore = RESTORE_RESTARTING;
        if (g->restore == RESTORE_RESTARTING) {
            bool any = false;
            for (size_t i = 0; i < run->n; i++) {
                node_t *o = &run->nodes[i];
                if (o->grp == g && o->group_stop) {
                    if (o->call == CALL_NONE && o->state == NODE_UPGRADING) {
                        o->call_t0 = now_ms();
                        node_rollback(run, o, false, ops);
                    }
                    any |= o->call != CALL_NONE;
                }
            }
            if (!any)
                g->restore = RESTORE_NONE, g->restoring = NULL;
            busy |= any;
        }
        busy |= g->restore != RESTORE_NONE;
    }
    return busy;
}

bool group_turn_held(const node_t *nd)
{
    return nd->grp && nd->grp->turn_taken;
}

void group_turn_take(node_t *nd)
{
    if (!nd->grp)
        return;
    nd->grp->turn_taken = true;
    nd->holds_turn = true;
}

void group_turn_give(node_t *nd)
{
    if (nd->holds_turn && nd->grp)
        nd->grp->turn_taken = false;
    nd->holds_turn = false;
}
