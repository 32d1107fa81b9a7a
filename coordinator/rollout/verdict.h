/* verdict: what a node's Hello says it is for this run: to roll, on the target already, this
 * very rollout's to resume, or refused and why. The one decision `baton plan` and `baton rollout`
 * both take from a Hello (tests/cluster/verdicts.sh holds them to it); what a record of another
 * rollout means is the agent's own rule, step_decide(), in its own words. */
#ifndef BATON_VERDICT_H
#define BATON_VERDICT_H

#include "baton.pb-c.h"
#include "err.h"

struct run;
struct node;

typedef enum {
    VERDICT_REFUSED, /* *ret_why says why; nd->state NODE_BAD */
    VERDICT_GO,      /* nd->state NODE_NEEDS (to roll) or NODE_SKIP (on the target already);
                      * its database, from_version and downgrade set */
    VERDICT_RESUME,  /* its record is this very rollout's (`baton resume`): the caller resumes */
} verdict_t;

/* Reads the Hello call's outcome (r, env, err as the engine hands them over) for node nd. Sets
 * *ret_svc to the service's Hello (inside env) when the agent is nd's and answered for the
 * service, else NULL; *ret_why (allocated) to the refusal, NULL otherwise. A busy service's
 * version is judged too (its database, from_version and downgrade set): a move refused as well
 * goes to *ret_also (allocated; NULL: none), for the plan that lists every reason. */
verdict_t node_verdict(struct run *run, struct node *nd, int r, const Baton__Envelope *env,
                       baton_err_t *err, const Baton__ServiceInfo **ret_svc, char **ret_why,
                       char **ret_also);

/* Why the agent's pre-flight will refuse this service's record for this run (the record of an
 * unfinished rollout, a reservation), in the words the agent will use; NULL when it will not
 * (or out of memory). `baton plan` says it before the pre-flight would. */
char *node_record_refusal(const struct run *run, const Baton__ServiceInfo *svc);

#endif
