/* client: one coordinator-side connection to one agent (a ZeroMQ DEALER).
 *
 * client_call() sends one command and waits, with a deadline, for its Result, handing every
 * Progress for it to a callback on the way. Answers to earlier requests that timed out are
 * recognised by their request id and dropped. */
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

/* Sends `req` (body set by the caller; version, request id and rollout id are filled in) and
 * returns the agent's Result envelope in *ret_env (the caller's: envelope_free()). -ETIMEDOUT
 * when no Result came within timeout_ms. */
int client_call(client_t *c, const char *rollout_id, Baton__Envelope *req, uint64_t timeout_ms,
                client_progress_fn progress, void *userdata, Baton__Envelope **ret_env,
                baton_err_t *err);

#endif
