/* node: one node's part in a rollout (node.c): its Hello, staging, pre-flight request, its
 * steps one after another, what its step's Result means (the policy on failure), its rollback. */
#ifndef BATON_NODE_H
#define BATON_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine.h"

#include "run.h"

/* node.c: one node's upgrade, step by step, and its rollback. */
void node_init_step(Baton__Step *s, const struct run *run, const char *sha256);
/* The pre-flight's request, and plan's: the same facts, so that the agent reaches the same
 * verdict for both (the version move, the dump to restore, the rehearsal). */
void node_init_preflight(Baton__Step *s, const struct run *run, const node_t *nd);
/* A Hello that got no answer (`what`: the timeout's message), said with its likely cause: the
 * name does not resolve, nothing listens, the node does not answer TCP, or (TCP got through)
 * the CURVE keys. *ret is the caller's; asprintf's result. */
int node_hello_silence(const struct run *run, const node_t *nd, const char *what, char **ret);
/* Sends the node's next step (nd->step). */
void node_next_step(struct run *run, node_t *nd, const engine_ops_t *ops);
/* A step's Result or failure: emits it, then the next step, the rollback, or the end. */
void node_step_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err,
                      const engine_ops_t *ops);
/* Starts sending the artifact (node.c's staging comment); its Results go to node_stage_result,
 * which keeps the window full or ends: nd->staged, or NODE_BAD and a failed stage check. */
void node_stage_send(struct run *run, node_t *nd, const engine_ops_t *ops);
void node_stage_result(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err,
                       const engine_ops_t *ops);
/* Goes on with the transfers that wait for the fleet's budget of chunks in flight (schedulers
 * call it every turn); true while some still wait. */
bool node_stage_pump(struct run *run, const engine_ops_t *ops);
/* Sends a rollback of the run's rollout (undo = true) or a release (a reservation only). */
void node_rollback(struct run *run, node_t *nd, bool release, const engine_ops_t *ops);
void node_rollback_result(struct run *run, node_t *nd, int r, Baton__Envelope *env,
                          baton_err_t *err);
/* True between stop and verified, and while rolling back: the node does not serve. */
bool node_unavailable(const node_t *nd);
void node_set_why(node_t *nd, const char *why);
/* Its verify passed and, with an analysis, so did that: settled, then its commit (with
 * rollback-all: verified, its commit waits for every batch; with a bake, for its batch's). */
void node_verified(struct run *run, node_t *nd, const engine_ops_t *ops);
/* It failed after its step ended (its analysis): `why` for the summary, on_failure applied,
 * rolled back. */
void node_failed(struct run *run, node_t *nd, const char *why, const engine_ops_t *ops);
const char *node_state_name(node_state_t s);
/* The entry of the rollout's service in a Hello Result, or NULL with err saying why. */
/* Asks every node's agent for its Hello at once, at most max_in_flight at a time: nd->asked
 * holds the answer (freed by run_disconnect), or nd->why says why there is none. The caller
 * prints in file order from node_asked_service(); a slow or unreachable node costs the connect
 * timeout once, not once per node behind it. */
int node_ask_all(struct run *run);
/* Sends a Hello to every node not asked yet (NODE_NEW, idle) while fewer than max_in_flight
 * calls are out, marking each NODE_NEEDS; the answers go to ops->on_result. */
void node_hello_all(struct run *run, const engine_ops_t *ops);
const Baton__ServiceInfo *node_asked_service(struct run *run, node_t *nd, baton_err_t *err);
const Baton__ServiceInfo *node_hello_service(const struct run *run, const Baton__Envelope *res,
                                             baton_err_t *err);
/* What the rollout's version means for this service (versions.h): up, down, refused (why). */
version_move_t node_version_move(const struct run *run, const Baton__ServiceInfo *svc, char *why,
                                 size_t len);
/* True when the service runs the rollout's version, active, with nothing on record to finish. */
bool node_on_target(const struct run *run, const Baton__ServiceInfo *svc);
/* True when the service's record holds something to undo or release: an unfinished rollout,
 * or a reservation by a pre-flight (even one a crash cut short). */
bool node_record_unfinished(const Baton__ServiceInfo *svc);
/* Blocking Hello to one node (status, rollback): *ret_res is the caller's. */
const Baton__ServiceInfo *node_ask_service(struct run *run, node_t *nd, Baton__Envelope **ret_res,
                                           baton_err_t *err);

/* rehearse: true: this node's pre-flight (or plan) rehearses the migration on a copy of its
 * database; once per database, by the first node of those whose agents reported it. */
bool node_rehearses(const struct run *run, const node_t *nd);

#endif
