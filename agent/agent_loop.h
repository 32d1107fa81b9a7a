/* agent_loop: serving requests (agent.c) as seen from the main loop (main.c). */
#ifndef BATON_AGENT_LOOP_H
#define BATON_AGENT_LOOP_H

#include "agent.h"

/* Serves one checked request from the peer in a->peer: one Result goes back. */
void agent_serve(agent_t *a, const Baton__Envelope *req);
/* Answers the peer in a->peer with an error Result (for requests that could not be read). */
void agent_reply_error(agent_t *a, uint64_t request_id, Baton__Status status, const char *msg);

#endif
