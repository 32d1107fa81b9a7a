/* haproxy: one server of an haproxy backend, driven through haproxy's runtime API (the "stats
 * socket" at level admin: a UNIX socket path, or host:port over TCP). One command per
 * connection, as haproxy's non-interactive mode answers: the command line, then the answer
 * until haproxy closes.
 *
 * Taken out: `set server BACKEND/SERVER state drain` (no new connections; health checks go on,
 * so haproxy sees the service stop and start), then the server's sessions and queue are waited
 * down to 0. Put back: `state ready`, then haproxy's own status is waited for until it says UP
 * (its checks passed `rise` times) or "no check" (none configured): only then is the node in
 * service as players see it. Not MAINT: in maintenance haproxy stops checking, and on leaving
 * it reports UP at once from its last check, before the new version was ever checked. */
#ifndef BATON_AGENT_HAPROXY_H
#define BATON_AGENT_HAPROXY_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

typedef struct haproxy_target {
    char *runtime_api; /* "/run/haproxy/admin.sock" or "host:port" */
    char *backend;
    char *server;
    uint64_t drain_ms; /* how long the sessions may take to end */
    uint64_t up_ms;    /* how long haproxy may take to report the server UP */
} haproxy_target_t;

/* One server's line of `show stat`. */
typedef struct haproxy_server_stat {
    uint64_t sessions; /* scur */
    uint64_t queued;   /* qcur */
    char status[32];   /* "UP", "DOWN 1/2", "DRAIN", "MAINT", "no check", ... */
} haproxy_server_stat_t;

/* Sends `command` and reads the answer (at most 1 MiB, the caller frees *ret_answer), each way
 * within timeout_ms. */
int haproxy_command(const char *runtime_api, const char *command, uint64_t timeout_ms,
                    char **ret_answer, baton_err_t *err);

/* Finds BACKEND/SERVER in the CSV of `show stat` (its header names the columns): 0, -ENOENT
 * when it is not there, -EBADMSG when the answer is not that CSV. */
int haproxy_stat_parse(const char *csv, const char *backend, const char *server,
                       haproxy_server_stat_t *ret, baton_err_t *err);

/* True when haproxy sends the server traffic as a healthy one. */
bool haproxy_status_up(const char *status);

/* `set server B/S state drain|ready`: 0, or haproxy's own answer as the error ("No such
 * server."). */
int haproxy_set_state(const haproxy_target_t *t, const char *state, baton_err_t *err);
int haproxy_server_stat(const haproxy_target_t *t, haproxy_server_stat_t *ret, baton_err_t *err);

#endif
