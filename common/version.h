/* version: baton's own version, the same for the coordinator and the agent, and the skew policy
 * between them (as Kubernetes' and Nomad's): a coordinator and an agent work together when they
 * share the major version and are at most one minor apart, either way. Both sides check the
 * other's in Hello, before anything is staged or stopped; a pair outside the window is refused
 * naming both versions. */
#ifndef BATON_VERSION_H
#define BATON_VERSION_H

#include "err.h"

#define BATON_VERSION "0.3.0"

/* 0 when `theirs` (the peer's version, named `peer` in the message, e.g. "the agent at node2")
 * is within the window of BATON_VERSION; -EPROTONOSUPPORT saying both versions otherwise. An
 * empty `theirs` is a peer older than the policy (before 0.3.0), outside it. */
int version_skew_check(const char *theirs, const char *peer, const char *me, baton_err_t *err);

#endif
