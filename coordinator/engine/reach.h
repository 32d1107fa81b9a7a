/* reach: why an agent did not answer Hello. ZeroMQ hides the transport: a node that is down, an
 * agent that is stopped, a name that does not resolve and a CURVE key that does not match all
 * look the same (no reply). A plain TCP connect to the endpoint tells them apart, so that the
 * message names the likely cause and keeps the CURVE hint for when TCP got through. */
#ifndef BATON_REACH_H
#define BATON_REACH_H

#include <stdbool.h>
#include <stddef.h>

/* Tries `endpoint` (tcp://HOST:PORT) for at most timeout_ms. True when a TCP connection was
 * made (the agent listens: what failed is above TCP); else false with the reason in `why`
 * ("nothing listens at 10.0.0.5:7400 (connection refused): is baton-agent running there?").
 * An endpoint that is no tcp:// one is taken as reachable. */
bool reach_tcp(const char *endpoint, unsigned timeout_ms, char *why, size_t len);

#endif
