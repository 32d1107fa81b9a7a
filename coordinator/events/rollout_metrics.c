/* rollout_metrics: see rollout_metrics.h. */
#include "rollout_metrics.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event_registry.h"
#include "run.h"
#include "node.h"
#include "textfile.h"

struct rollout_metrics {
    char *dir;
    char *service;
    bool holding;      /* the run holds its nodes: its metrics are the service's */
    const char *phase; /* running, paused, halting, ended */
    long long start;   /* CLOCK_REALTIME s */
    long long end;     /* 0 until the summary */
    int exit_code;
    bool said; /* a failure to write was said */
};

rollout_metrics_t *rollout_metrics_new(const char *service)
{
    const char *dir = getenv("BATON_METRICS_DIR");
    if (!dir || !*dir)
        return NULL;
    rollout_metrics_t *m = calloc(1, sizeof(*m));
    if (!m || !(m->dir = strdup(dir)) || !(m->service = strdup(service))) {
        rollout_metrics_destroy(&m);
        fprintf(stderr, "baton: metrics: out of memory; none written\n");
        return NULL;
    }
    m->phase = "running";
    m->start = (long long)time(NULL);
    return m;
}

void rollout_metrics_destroy(rollout_metrics_t **m_p)
{
    if (!m_p || !*m_p)
        return;
    free((*m_p)->dir);
    free((*m_p)->service);
    free(*m_p);
    *m_p = NULL;
}

static void family(FILE *f, const char *name, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s{", name, help, name, name);
}

char *rollout_metrics_text(const rollout_metrics_t *m, const struct run *run)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    family(f, "baton_rollout_info",
           "The service's rollout this coordinator runs or last ran: its id, version and phase "
           "(running, paused, halting, ended).");
    textfile_label(f, "phase", m->phase, true);
    textfile_label(f, "rollout_id", run->id, false);
    textfile_label(f, "service", m->service, false);
    textfile_label(f, "version", run->rf->version, false);
    fputs("} 1\n", f);
    family(f, "baton_rollout_batch", "The batch running now (the last one once it ended).");
    textfile_label(f, "service", m->service, true);
    fprintf(f, "} %zu\n", run->batch > run->n_batches ? run->n_batches : run->batch);
    family(f, "baton_rollout_batches", "How many batches the rollout has.");
    textfile_label(f, "service", m->service, true);
    fprintf(f, "} %zu\n", run->n_batches);
    /* Every state, 0 included: a series that vanishes reads as "no data", not as none. */
    fputs("# HELP baton_rollout_nodes Nodes of the rollout in each state.\n"
          "# TYPE baton_rollout_nodes gauge\n",
          f);
    for (node_state_t s = NODE_NEW; s <= NODE_LEFT; s++) {
        size_t n = 0;
        for (size_t i = 0; i < run->n; i++)
            n += run->nodes[i].state == s;
        fputs("baton_rollout_nodes{", f);
        textfile_label(f, "service", m->service, true);
        textfile_label(f, "state", node_state_name(s), false);
        fprintf(f, "} %zu\n", n);
    }
    fputs("# HELP baton_rollout_node_state Each node's state in the rollout.\n"
          "# TYPE baton_rollout_node_state gauge\n",
          f);
    for (size_t i = 0; i < run->n; i++) {
        fputs("baton_rollout_node_state{", f);
        textfile_label(f, "node", run->nodes[i].def->name, true);
        textfile_label(f, "service", m->service, false);
        textfile_label(f, "state", node_state_name(run->nodes[i].state), false);
        fputs("} 1\n", f);
    }
    family(f, "baton_rollout_start_timestamp_seconds", "When this run of the rollout began.");
    textfile_label(f, "service", m->service, true);
    fprintf(f, "} %lld\n", m->start);
    if (m->end) {
        family(f, "baton_rollout_end_timestamp_seconds", "When it ended.");
        textfile_label(f, "service", m->service, true);
        fprintf(f, "} %lld\n", m->end);
        family(f, "baton_rollout_exit_code",
               "Its exit code: 0 done, 2 refused, 3 a node rolled back, 4 needs attention.");
        textfile_label(f, "service", m->service, true);
        fprintf(f, "} %d\n", m->exit_code);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

void rollout_metrics_event(rollout_metrics_t *m, const struct run *run, json_t *e)
{
    if (!m)
        return;
    const event_def_t *def = event_def(json_string_value(json_object_get(e, "event")));
    if (!def)
        return;
    switch (def->id) {
    case EVENT_PLAN:
    case EVENT_ROLLBACK:
        m->holding = true;
        break;
    case EVENT_NODE:
    case EVENT_STEP:
        break;
    case EVENT_PAUSED:
        m->phase = "paused";
        break;
    case EVENT_CONTINUED:
        m->phase = "running";
        break;
    case EVENT_HALT:
        m->phase = "halting";
        break;
    case EVENT_SUMMARY:
        m->phase = "ended";
        m->end = (long long)time(NULL);
        m->exit_code = (int)json_integer_value(json_object_get(e, "exit"));
        break;
    default:
        return; /* checks, progress, …: nothing moved on */
    }
    if (!m->holding)
        return;
    char name[NAME_MAX + 1], *text = NULL;
    baton_err_t err = {0};
    int r = 0;
    if (snprintf(name, sizeof(name), "baton-rollout-%s.prom", m->service) >= (int)sizeof(name))
        r = baton_err_set(&err, -ENAMETOOLONG, "metrics: service name too long");
    else if (!(text = rollout_metrics_text(m, run)))
        r = baton_err_set(&err, -ENOMEM, "metrics: out of memory");
    else
        r = textfile_write(m->dir, name, text, "BATON_METRICS_DIR", &err);
    free(text);
    if (r < 0 && !m->said) {
        fprintf(stderr, "baton: %s (the rollout goes on)\n", err.msg);
        m->said = true;
    }
}
