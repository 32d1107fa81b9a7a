/* verdict: see verdict.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "run.h"
#include "node.h"
#include "steps.h"
#include "verdict.h"

/* A service's Hello as the agent's state would read it for step_decide(): `step` is then the
 * step running or cut short, its last settled one unknown (never read in those cases). */
static step_state_t hello_state(const Baton__ServiceInfo *svc)
{
    bool live = svc->running || svc->in_progress;
    return (step_state_t){.rollout_id = svc->rollout_id,
                          .step = live ? "" : svc->step,
                          .in_progress = svc->in_progress ? svc->step : "",
                          .running = svc->running ? svc->step : ""};
}

char *node_record_refusal(const struct run *run, const Baton__ServiceInfo *svc)
{
    /* No record (or one the agent could not read: it says why in `step`, and its pre-flight
     * fails with that, not with a rollout's name). */
    if (!*svc->rollout_id)
        return NULL;
    step_state_t st = hello_state(svc);
    char why[512];
    if (step_decide(&st, STEP_PREFLIGHT, run->id, NULL, why, sizeof(why)) != STEP_REFUSE)
        return NULL;
    return strdup(why);
}

static bool hello_has(const Baton__Hello *h, const char *feature)
{
    for (size_t i = 0; i < h->n_features; i++)
        if (!strcmp(h->features[i], feature))
            return true;
    return false;
}

verdict_t node_verdict(struct run *run, node_t *nd, int r, const Baton__Envelope *env,
                       baton_err_t *err, const Baton__ServiceInfo **ret_svc, char **ret_why,
                       char **ret_also)
{
    const Baton__ServiceInfo *svc = r == 0 ? node_hello_service(run, env, err) : NULL;
    const Baton__Hello *h = r == 0 ? env->result->hello : NULL;
    char *why = NULL;
    *ret_svc = NULL;
    *ret_why = NULL;
    if (ret_also)
        *ret_also = NULL;
    if (h && strcmp(h->node_name, nd->def->name)) {
        if (asprintf(&why, "the agent at %s is node '%s', not '%s'", nd->def->endpoint,
                     h->node_name, nd->def->name) < 0)
            why = NULL;
    } else if (!svc && r == -ETIMEDOUT) {
        if (node_hello_silence(run, nd, err->msg, &why) < 0)
            why = NULL;
    } else if (!svc) {
        why = strdup(err->msg);
    } else if (run->record && !svc->running && !strcmp(svc->rollout_id, run->id)) {
        *ret_svc = svc;
        return VERDICT_RESUME;
    } else {
        *ret_svc = svc;
        free(nd->from_version);
        nd->from_version = strdup(svc->version);
        free(nd->database_id);
        nd->database_id = *svc->database_id ? strdup(svc->database_id) : NULL;
        nd->state = node_on_target(run, svc) ? NODE_SKIP : NODE_NEEDS;
        char move_why[512];
        version_move_t move = nd->state == NODE_SKIP
                                  ? MOVE_SAME
                                  : node_version_move(run, svc, move_why, sizeof(move_why));
        nd->downgrade = move == MOVE_DOWN;
        char *refused = move == MOVE_REFUSED ? strdup(move_why) : NULL;
        /* An artifact by URL is pulled by the agent itself: one that cannot is told so before
         * anything is staged (an older agent would read the Stage as a chunk of size 0). */
        nd->pulls = hello_has(h, BATON_FEATURE_PULL);
        nd->frames = hello_has(h, BATON_FEATURE_FRAME);
        if (!refused && run->url && nd->state == NODE_NEEDS && !nd->pulls &&
            asprintf(&refused,
                     "its agent (%s) cannot pull artifacts by URL: upgrade it, or give the "
                     "artifact as a file",
                     *h->agent_version ? h->agent_version : "unknown version") < 0)
            refused = NULL;
        if (!svc->running && !refused)
            return VERDICT_GO;
        if (!svc->running) {
            why = refused;
        } else {
            /* Busy: as the agent's step_decide() says it, with how long and what it is doing;
             * a version refused too is the plan's second reason. */
            if (asprintf(&why, "busy: rollout %s is running %s (%.0f s)%s%s", svc->rollout_id,
                         svc->step, (double)svc->running_ms / 1000.0, *svc->progress ? ": " : "",
                         svc->progress) < 0)
                why = NULL;
            if (ret_also)
                *ret_also = refused;
            else
                free(refused);
        }
    }
    nd->state = NODE_BAD;
    *ret_why = why ? why : strdup("out of memory");
    return VERDICT_REFUSED;
}
