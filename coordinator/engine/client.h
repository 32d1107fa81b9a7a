/* client: one coordinator-side connection to one agent (a ZeroMQ DEALER), asynchronous.
 *
 * A client carries at most one call at a time (an agent runs one step at a time). The event
 * loop starts a call with client_send(), polls client_socket() with every other client's, hands
 * readable ones to client_recv() and calls client_tick() when client_wake() is due:
 *
 *   - while a step runs the agent sends a heartbeat each second (client_set_heartbeat); after
 *     CLIENT_ASK_AGAIN_MS (or three heartbeats) of silence the same request (same id) is sent
 * again, which the agent answers from its record or by attaching us to the running step, so an
 * answer lost with a connection (a frozen agent, a partition) is collected, never re-run;
 *   - after `liveness` of silence the call fails with -EHOSTDOWN (the node is LOST), after its
 *     timeout with -ETIMEDOUT;
 *   - answers to earlier requests are recognised by their request id and dropped.
 *
 * client_call() is the blocking form, for commands that talk to one node at a time. */
#ifndef BATON_CLIENT_H
#define BATON_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "baton.pb-c.h"
#include "err.h"
#include "transport.h"

typedef struct client client_t;

typedef void (*client_progress_fn)(const char *node, const Baton__Progress *p, void *userdata);

/* Longer than the agent unit's WatchdogSec (30 s) and RestartSec (2 s) and a start: a frozen
 * agent is restarted by systemd before the coordinator gives up on it, reports its step as
 * interrupted, and the node is rolled back (exit 3), every time. With the two equal, the
 * outcome was a race between exit 3 and LOST (exit 4). */
#define CLIENT_LIVENESS_MS 45000
#define CLIENT_ASK_AGAIN_MS 3000
#define CLIENT_WINDOW_MAX 8 /* stage chunks in flight per agent, at most */

/* server_public: the agent's CURVE key, with the coordinator's pair; all NULL for plain text. */
int client_new(void *zctx, const char *node, const char *endpoint,
               const transport_key_t *server_public, const transport_key_t *secret,
               const transport_key_t *public, client_t **ret, baton_err_t *err);
void client_destroy(client_t **c_p);
const char *client_node(const client_t *c);
const char *client_endpoint(const client_t *c);
/* Silence after which the node counts as lost (default CLIENT_LIVENESS_MS). */
void client_set_liveness(client_t *c, uint64_t liveness_ms);
/* How far apart the agent is asked to send heartbeats while it runs a call (default 1 s; the
 * agent keeps it within 1-10 s); a call is asked again after three of them missed, and never
 * sooner than CLIENT_ASK_AGAIN_MS. */
void client_set_heartbeat(client_t *c, uint64_t heartbeat_ms);

/* Starts a call: `req` (body set by the caller; version, request id and rollout id are filled
 * in) is packed and sent now. -EBUSY when a call is already in flight. Stage chunks are never
 * sent twice (a chunk is not idempotent); every other command is (a pull's Stage too). A Stage
 * with data_frame set (to data.len; only for agents with the "frame" feature) sends its bytes as
 * a frame of their own without copying them: they must stay valid until the ZeroMQ context is
 * terminated (a run's artifact is freed after run_disconnect()). */
int client_send(client_t *c, const char *rollout_id, Baton__Envelope *req, uint64_t timeout_ms,
                baton_err_t *err);
/* True while a call is in flight. */
bool client_busy(const client_t *c);
/* The command in flight ("migrate"), or "" when idle. */
const char *client_command(const client_t *c);
/* The socket to poll for input (zmq_poll, for one client at a time). */
void *client_socket(const client_t *c);
/* For an event loop over many clients (engine.c): the descriptor to wait on (libzmq's ZMQ_FD),
 * which becomes readable when the socket has news, not once per message; then
 * client_readable(), which says whether a message waits (libzmq's ZMQ_EVENTS) and takes the
 * news off the descriptor. A socket used since it was last asked (a send, a receive, an ask
 * again) may hold a message that set nothing off: client_touched() says so, and such a socket
 * is asked before the loop sleeps. */
int client_fd(const client_t *c);
bool client_touched(const client_t *c);
bool client_readable(client_t *c);

enum { CLIENT_NOTHING = 0, CLIENT_PROGRESS = 1, CLIENT_RESULT = 2 };
/* Reads the messages waiting on the socket without blocking. Progress for the call in flight
 * goes to `progress` (heartbeats only count as a sign of life). Returns CLIENT_RESULT with the
 * Result envelope in *ret_env (the caller's: envelope_free()), which ends the call; else
 * CLIENT_NOTHING; < 0 when the call failed (the agent could not read the request, or answered
 * something that is no Result), which also ends it. */
int client_recv(client_t *c, client_progress_fn progress, void *userdata, Baton__Envelope **ret_env,
                baton_err_t *err);
/* The monotonic time (ms) at which client_tick() has something to do; UINT64_MAX when idle. */
uint64_t client_wake(const client_t *c);
/* Asks again after silence; fails the call (and ends it) with -ETIMEDOUT or -EHOSTDOWN. */
int client_tick(client_t *c, uint64_t now_ms, baton_err_t *err);
/* Forgets the call in flight (its answer, if it comes, is dropped). */
void client_abandon(client_t *c);
/* Stage chunks only: sends `req` behind the call in flight (up to CLIENT_WINDOW_MAX of them).
 * Answers come back in order; each becomes a CLIENT_RESULT of client_recv() and the next one
 * the call in flight, so client_busy() stays true until the last is answered. A failed answer
 * abandons those behind it. With nothing in flight, the same as client_send(). */
int client_send_ahead(client_t *c, const char *rollout_id, Baton__Envelope *req, baton_err_t *err);
/* Requests in flight: 0, or 1 + those sent ahead. */
size_t client_in_flight(const client_t *c);

/* The blocking form: send, then wait for the Result. A second Ctrl-C ends the wait with
 * -EINTR (the first lets the call finish: the caller stops after it). */
int client_call(client_t *c, const char *rollout_id, Baton__Envelope *req, uint64_t timeout_ms,
                client_progress_fn progress, void *userdata, Baton__Envelope **ret_env,
                baton_err_t *err);

uint64_t client_now_ms(void);

#endif
