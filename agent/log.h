/* log: the agent's one way to log: to the journal with fields BATON_SERVICE, BATON_ROLLOUT_ID
 * and BATON_STEP under systemd (`journalctl BATON_ROLLOUT_ID=...`), to stderr otherwise. Safe
 * from any thread. */
#ifndef BATON_AGENT_LOG_H
#define BATON_AGENT_LOG_H

/* service, rollout and step may be NULL. */
void log_event(const char *service, const char *rollout_id, const char *step, int priority,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
