/* hello: what this agent tells the coordinator about itself and every service it manages:
 * unit state, installed version, and where the last rollout got to, including a step that a
 * crash cut short. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <time.h>

#include "command.h"
#include "envelope.h"
#include "clock.h"
#include "front.h"
#include "state.h"
#include "unit.h"
#include "version.h"

void hello_free(Baton__Hello **hello_p)
{
    if (!hello_p || !*hello_p)
        return;
    Baton__Hello *h = *hello_p;
    for (size_t i = 0; i < h->n_services; i++) {
        Baton__ServiceInfo *s = h->services[i];
        free(s->active_state);
        free(s->version);
        free(s->rollout_id);
        free(s->step);
        free(s->previous_version);
        free(s->progress);
        free(s->database_id);
        free(s->shared_from);
        for (size_t k = 0; k < s->n_migrated_ids; k++)
            free(s->migrated_ids[k]);
        free(s->migrated_ids);
        for (size_t k = 0; k < s->n_history; k++) {
            Baton__VersionRecord *v = s->history[k];
            free(v->version);
            for (size_t j = 0; j < v->n_ids; j++)
                free(v->ids[j]);
            free(v->ids);
            free(v->dump);
            free(v);
        }
        free(s->history);
        free(s->highest_version);
        free(s);
    }
    free(h->services);
    free(h);
    *hello_p = NULL;
}

/* The service's history into its ServiceInfo; a dump no longer on disk is not offered. */
static int history_copy(const svc_state_t *st, Baton__ServiceInfo *s)
{
    if (!(s->highest_version = strdup(st->highest_version)))
        return -ENOMEM;
    if (!st->n_history)
        return 0;
    if (!(s->history = calloc(st->n_history, sizeof(*s->history))))
        return -ENOMEM;
    for (size_t i = 0; i < st->n_history; i++) {
        const version_record_t *h = &st->history[i];
        Baton__VersionRecord *v = calloc(1, sizeof(*v));
        if (!v)
            return -ENOMEM;
        baton__version_record__init(v);
        s->history[s->n_history++] = v;
        struct stat sb;
        v->version = strdup(h->version);
        v->dump = strdup(*h->dump && stat(h->dump, &sb) == 0 ? h->dump : "");
        if (!v->version || !v->dump || (h->n_ids && !(v->ids = calloc(h->n_ids, sizeof(char *)))))
            return -ENOMEM;
        for (size_t k = 0; k < h->n_ids; k++, v->n_ids++)
            if (!(v->ids[k] = strdup(h->ids[k])))
                return -ENOMEM;
    }
    return 0;
}

int hello_build(const agent_config_t *cfg, sd_bus **bus_p, const struct run_view *views,
                Baton__Hello **ret_hello, baton_err_t *err)
{
    Baton__Hello *h = calloc(1, sizeof(*h));
    if (!h)
        return baton_err_set(err, -ENOMEM, "out of memory");
    baton__hello__init(h);
    h->agent_version = BATON_VERSION;
    h->protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    h->node_name = cfg->node_name;
    /* What older coordinators do not know to ask for. */
    static char *features[] = {BATON_FEATURE_PULL, BATON_FEATURE_FRAME};
    h->n_features = sizeof(features) / sizeof(features[0]);
    h->features = features;
    h->services = calloc(cfg->n_services, sizeof(*h->services));
    if (!h->services) {
        free(h);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    /* The caller's own bus and a context without pidfile or tick: Hello runs beside a step,
     * and must not disturb the worker's records. */
    bool have_bus = *bus_p || unit_bus_open(bus_p, NULL) == 0;
    sd_bus *bus = *bus_p;
    step_ctx_t probe = {.cfg = cfg};
    for (size_t i = 0; i < cfg->n_services; i++) {
        const svc_config_t *svc = &cfg->services[i];
        const struct run_view *run = views ? &views[i] : NULL;
        Baton__ServiceInfo *s = calloc(1, sizeof(*s));
        if (!s) {
            hello_free(&h);
            return baton_err_set(err, -ENOMEM, "out of memory");
        }
        baton__service_info__init(s);
        /* Set below on every path; NULL until then, so that a failure frees no static "". */
        s->database_id = s->shared_from = s->highest_version = NULL;
        h->services[h->n_services++] = s;
        s->name = svc->name;
        s->unit = svc->unit;
        s->checks_release = svc->check != NULL;
        if (!have_bus ||
            unit_property(bus, svc->unit, "Unit", "ActiveState", &s->active_state, NULL) < 0)
            s->active_state = strdup("unknown");
        if (command_version(&probe, svc, svc->binary, &s->version, NULL) < 0)
            s->version = strdup("unknown");
        svc_state_t *st = NULL;
        baton_err_t serr = {0};
        bool oom = false;
        if (svc_state_load(cfg->state_dir, svc->name, &st, &serr) == 0) {
            s->rollout_id = strdup(st->rollout_id);
            s->step = strdup(st->step);
            s->previous_version = strdup(st->previous_version);
            s->database_id = strdup(st->database_id);
            s->shared_from = strdup(st->shared_from);
            s->down_limit = (uint32_t)st->down_limit;
            s->dumped = *st->dump_path != '\0';
            if (st->n_ids_after && !(s->migrated_ids = calloc(st->n_ids_after, sizeof(char *))))
                oom = true;
            for (size_t k = 0; !oom && k < st->n_ids_after; k++, s->n_migrated_ids++)
                oom = !(s->migrated_ids[k] = strdup(st->ids_after[k]));
            oom = oom || history_copy(st, s) < 0;
            /* The step in the worker is running; one on record without a worker behind it was
             * cut short by a crash. */
            s->running = run && run->on;
            s->in_progress = *st->in_progress != '\0' && !s->running;
            if (s->running || s->in_progress) {
                free(s->step);
                s->step = strdup(s->running ? run->step : st->in_progress);
            }
            if (s->running)
                s->running_ms = mono_ms() - run->started_ms;
            svc_state_destroy(&st);
        } else {
            s->rollout_id = strdup("");
            s->step = strdup(serr.msg); /* a damaged state file is said, not hidden */
            s->previous_version = strdup("");
            s->database_id = strdup("");
            s->shared_from = strdup("");
        }
        if (!s->highest_version)
            s->highest_version = strdup("");
        /* Every string is the Hello's own (init left them pointing at protobuf-c's ""). */
        s->progress = strdup(s->running ? run->progress : "");
        if (!s->active_state || !s->version || !s->rollout_id || !s->step || !s->previous_version ||
            !s->progress || !s->database_id || !s->shared_from || !s->highest_version || oom) {
            hello_free(&h);
            return baton_err_set(err, -ENOMEM, "out of memory");
        }
    }
    *ret_hello = h;
    return 0;
}
