/* transport: the one place where baton's ZeroMQ sockets get their security, for both binaries.
 *
 * CURVE (libzmq with libsodium): every agent has a key pair and accepts only the coordinator
 * public keys listed in its authorized-keys file (checked by its ZAP handler, agent/zap.c);
 * every coordinator has a key pair and names, per node, the agent's public key, so that an
 * impostor agent fails the handshake before anything is sent to it. Keys are Z85 text (40
 * characters) in files: NAME.pub (public) and NAME.key (secret, mode 0600). Plain text only with
 * an explicit `insecure: true`, and a warning every time. */
#ifndef BATON_TRANSPORT_H
#define BATON_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define TRANSPORT_KEY_LEN 40 /* Z85 of 32 bytes */
#define TRANSPORT_ZAP_DOMAIN "baton"

typedef struct transport_key {
    char z85[TRANSPORT_KEY_LEN + 1];
} transport_key_t;

/* True when s is a Z85 key: 40 characters of Z85's alphabet. */
bool transport_key_valid(const char *s);
/* Writes a new pair: PREFIX.key (secret, 0600) and PREFIX.pub (public, 0644). Refuses to
 * overwrite either (-EEXIST). */
int transport_keygen(const char *prefix, baton_err_t *err);
/* Reads a secret key file (refused when group or others may read it) and derives its public
 * key. */
int transport_read_secret(const char *path, transport_key_t *ret_secret,
                          transport_key_t *ret_public, baton_err_t *err);
/* Reads a public key file (the first word of its first line). */
int transport_read_public(const char *path, transport_key_t *ret_public, baton_err_t *err);
/* "a1b2c3d4e5f60718": the first 8 bytes of the SHA-256 of the key's 32 bytes, in hex; what
 * status shows and logs say. */
void transport_fingerprint(const transport_key_t *key, char out[17]);

/* The options every baton socket has, set and checked here for both binaries: a message limit
 * (oversized ones are dropped by libzmq before anyone parses them) and ZMTP heartbeats (a peer
 * that vanished is noticed). The agent's ROUTER (server) also reports a reply to a gone peer as
 * an error, and lingers 1 s for its last answers; the coordinator's DEALER (client) lingers not
 * at all and abandons a connect stuck in SYN retries after 2 s, so that a healed network is seen
 * in seconds. */
int transport_tune(void *sock, bool server, baton_err_t *err);

/* A socket that serves with CURVE (the agent's ROUTER): its secret key, and its ZAP domain, so
 * that the ZAP handler decides which clients get in. Every option checked. */
int transport_server(void *sock, const transport_key_t *secret, baton_err_t *err);
/* A socket that connects with CURVE to a server whose public key it knows. */
int transport_client(void *sock, const transport_key_t *server_public,
                     const transport_key_t *secret, const transport_key_t *public,
                     baton_err_t *err);

#endif
