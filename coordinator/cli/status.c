/* status: `baton status FILE`: what every node of a rollout file runs, and where its last
 * rollout got to, from the agents' own records. Read-only. */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "envelope.h"
#include "engine.h"
#include "run.h"
#include "events.h"
#include "node.h"

int rollout_status(const rollout_file_t *rf, const struct rollout_opts *opts)
{
    struct run run = {.rf = rf, .opts = opts, .start_ms = now_ms(), .n = rf->n_nodes};
    baton_err_t err = {0};
    int unreachable = 0;
    if (!(run.nodes = calloc(rf->n_nodes, sizeof(*run.nodes)))) {
        emit_error(&run, "out of memory");
        return EXIT_REFUSED;
    }
    for (size_t i = 0; i < run.n; i++)
        run.nodes[i] = (node_t){.index = i, .def = &rf->nodes[i]};
    if (run_connect(&run, &err) < 0) {
        emit_error(&run, err.msg);
        run_disconnect(&run);
        free(run.nodes);
        return EXIT_REFUSED;
    }
    node_ask_all(&run);
    if (!opts->json)
        status_print_header();
    for (size_t i = 0; i < rf->n_nodes; i++) {
        baton_err_clear(&err);
        const Baton__ServiceInfo *svc = node_asked_service(&run, &run.nodes[i], &err);
        json_t *e = json_pack("{s:s, s:s, s:s}", "event", "status", "node", rf->nodes[i].name,
                              "endpoint", rf->nodes[i].endpoint);
        if (svc) {
            char *step = NULL;
            int n = svc->running ? asprintf(&step, "%s (running %.0f s)", svc->step,
                                            (double)svc->running_ms / 1000.0)
                                 : asprintf(&step, "%s%s", svc->step,
                                            svc->in_progress ? " (interrupted)" : "");
            json_object_set_new(e, "running", json_boolean(svc->running));
            json_object_set_new(e, "progress", json_string(svc->progress));
            json_object_set_new(e, "version", json_string(svc->version));
            json_object_set_new(e, "unit_state", json_string(svc->active_state));
            json_object_set_new(e, "step", json_string(n > 0 && *step ? step : "-"));
            json_object_set_new(e, "in_progress", json_boolean(svc->in_progress));
            json_object_set_new(e, "message",
                                json_string(*svc->rollout_id ? svc->rollout_id : "-"));
            /* The key the agent proved in the handshake (CURVE), or none. */
            char fp[17] = "insecure";
            if (!rf->insecure)
                transport_fingerprint(&rf->nodes[i].public_key, fp);
            json_object_set_new(e, "key", json_string(fp));
            json_object_set_new(e, "agent_version",
                                json_string(run.nodes[i].asked->result->hello->agent_version));
            json_t *history = json_array();
            for (size_t k = 0; k < svc->n_history; k++)
                json_array_append_new(history, json_pack("{s:s, s:i, s:s}", "version",
                                                         svc->history[k]->version, "migrations",
                                                         (int)svc->history[k]->n_ids, "dump",
                                                         svc->history[k]->dump));
            json_object_set_new(e, "history", history);
            json_object_set_new(e, "highest_version", json_string(svc->highest_version));
            /* Nodes showing one database share it: one dump and one migration per rollout. */
            json_object_set_new(e, "database",
                                json_string(*svc->database_id ? svc->database_id : "-"));
            free(n >= 0 ? step : NULL);
        } else {
            unreachable++;
            json_object_set_new(e, "version", json_string("?"));
            json_object_set_new(e, "unit_state", json_string("?"));
            json_object_set_new(e, "step", json_string("?"));
            /* Not in the rollout's column: on a line of its own. */
            json_object_set_new(e, "message", json_string("-"));
            json_object_set_new(e, "error", json_string(err.msg));
        }
        emit(&run, e);
    }
    run_disconnect(&run);
    free(run.nodes);
    return unreachable ? EXIT_REFUSED : EXIT_DONE;
}
