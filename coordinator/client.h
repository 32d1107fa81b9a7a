/* client: one coordinator-side connection to one agent (a ZeroMQ DEALER).
 *
 * client_call() sends one command and waits, with a deadline, for its Result, handing every
 * Progress for it to a callback on the way. While a step runs the agent sends a heartbeat each
 * second; after CLIENT_ASK_AGAIN_MS of silence the same request (same id) is sent again, which
 * the agent answers from its record or by attaching us to the running step, so an answer lost
 * with a connection (a frozen agent, a partition) is collected, never re-run. After `liveness`
 * of silence the node is lost (-EHOSTDOWN). Answers to earlier requests are recognised by their
 * request id and dropped. */
#ifndef BATON_CLIENT_H
#define BATON_CLIENT_H

#include <stdint.h>

#include "baton.pb-c.h"
#include "err.h"

typedef struct client client_t;

typedef void (*client_progress_fn)(const char *node, const Baton__Progress *p, void *userdata);

int client_new(void *zctx, const char *node, const char *endpoint, client_t **ret,
               baton_err_t *err);
void client_destroy(client_t **c_p);
const char *client_node(const client_t *c);
const char *client_endpoint(const client_t *c);
/* Silence after which the node counts as lost (default CLIENT_LIVENESS_MS). */
void client_set_liveness(client_t *c, uint64_t liveness_ms);

#define CLIENT_LIVENESS_MS 30000
#define CLIENT_ASK_AGAIN_MS 3000

/* Sends `req` (body set by the caller; version, request id and rollout id are filled in) and
 * returns the agent's Result envelope in *ret_env (the caller's: envelope_free()). -ETIMEDOUT
 * when no Result came within timeout_ms, -EHOSTDOWN when the agent was silent for `liveness`.
 * Stage chunks are never sent twice (a chunk is not idempotent); every other command is. */
int client_call(client_t *c, const char *rollout_id, Baton__Envelope *req, uint64_t timeout_ms,
                client_progress_fn progress, void *userdata, Baton__Envelope **ret_env,
                baton_err_t *err);

#endif
