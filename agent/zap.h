/* zap: the agent's ZAP handler (ZeroMQ's authentication protocol, RFC 27), answering on
 * inproc://zeromq.zap.01 for the CURVE ROUTER: a client gets in only when its public key is in
 * the authorized-keys file. Every refusal is logged with the key, its fingerprint and the peer's
 * address. The list is read again on SIGHUP (systemctl reload baton-agent): connections already
 * in are kept, so a rollout in flight goes on; a removed key is refused on its next connect.
 *
 * The authorized-keys file: one Z85 public key per line, optionally followed by a name;
 * blank lines and lines starting with # are skipped. Any other line is an error naming it. */
#ifndef BATON_AGENT_ZAP_H
#define BATON_AGENT_ZAP_H

#include <stddef.h>

#include "err.h"

#define ZAP_KEYS_MAX 1000

typedef struct zap zap_t;

/* Reads the list and binds the handler; before the ROUTER binds. */
int zap_new(void *zctx, const char *authorized_keys, zap_t **ret, baton_err_t *err);
void zap_destroy(zap_t **z_p);
void *zap_socket(zap_t *z);
/* Answers one waiting request. */
void zap_handle(zap_t *z);
/* Reads the list again; on an error the old list stays and the error is returned. */
int zap_reload(zap_t *z, baton_err_t *err);
size_t zap_count(const zap_t *z);
/* Only the parsing, for --check-config and the tests: how many keys a file lists. */
int zap_check_file(const char *path, size_t *ret_n, baton_err_t *err);

#endif
