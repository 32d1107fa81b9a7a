/* digest: SHA-256 (libsodium) of streams and files, as lower-case hex. */
#ifndef BATON_DIGEST_H
#define BATON_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "err.h"

#define DIGEST_HEX_LEN (crypto_hash_sha256_BYTES * 2)

typedef crypto_hash_sha256_state digest_t;

/* sodium_init() once per process; safe to call again. */
int digest_global_init(baton_err_t *err);
void digest_init(digest_t *d);
void digest_update(digest_t *d, const void *buf, size_t len);
/* Writes DIGEST_HEX_LEN hex characters and a NUL into hex. */
void digest_final_hex(digest_t *d, char hex[DIGEST_HEX_LEN + 1]);

/* Digest and size of a whole file. */
int digest_file(const char *path, char hex[DIGEST_HEX_LEN + 1], uint64_t *ret_size,
                baton_err_t *err);

/* True when s is exactly DIGEST_HEX_LEN lower-case hex characters. */
int digest_hex_valid(const char *s);

#endif
