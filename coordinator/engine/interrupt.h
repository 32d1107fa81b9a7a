/* interrupt: Ctrl-C and SIGTERM for a coordinator that must never leave a node half-upgraded.
 *
 * The first signal asks the rollout to stop after the step in flight: that node is then brought
 * to a settled state (rolled back, or done when the step was its last), untouched nodes are
 * released, and baton says how to continue. A second signal leaves at once, saying which node
 * is left in which step (its agent finishes the step and records it). */
#ifndef BATON_INTERRUPT_H
#define BATON_INTERRUPT_H

/* Handles SIGINT and SIGTERM from now on (no SA_RESTART: a waiting poll returns EINTR). */
void interrupt_install(void);
/* How many stop signals arrived: 0, 1 (finish the step, settle, stop) or 2+ (leave now). */
int interrupt_count(void);
/* A descriptor that becomes readable when a stop signal arrives (a self-pipe): waits poll it
 * with their sockets, so that a signal that lands while the loop is busy, not in poll, still
 * ends the wait at once. -1 before interrupt_install(). */
int interrupt_fd(void);
/* Reads the pipe empty (after interrupt_fd() polled readable) and returns interrupt_count(). */
int interrupt_drain(void);
/* The last one, for messages ("SIGINT", or the reason given to interrupt_request). */
const char *interrupt_name(void);
/* The same as a first Ctrl-C, for another reason (`baton abort`); `why` must stay valid. */
void interrupt_request(const char *why);

#endif
