/* stage: a new binary received in Stage chunks into STATE_DIR/staging/SERVICE/, its SHA-256
 * verified, and kept under its digest. Nothing live changes: staging is always safe, and runs
 * on the agent's main loop between other requests. */
#ifndef BATON_AGENT_STAGE_H
#define BATON_AGENT_STAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "baton.pb-c.h"
#include "config.h"
#include "digest.h"
#include "err.h"

#define STAGE_SIZE_MAX (2ull * 1024 * 1024 * 1024) /* a 2 GiB binary is already absurd */
#define STAGE_MARGIN (64ull * 1024 * 1024)         /* free space left after staging */

/* A binary being received. */
struct staging {
    int fd;                          /* open .partial file, -1 when none */
    char *service;                   /* service it is for */
    char sha256[DIGEST_HEX_LEN + 1]; /* announced digest */
    uint64_t size;                   /* announced size */
    uint64_t received;               /* bytes written so far */
    digest_t digest;                 /* running digest of what was received */
};

/* Writes one chunk; the first (offset 0) starts over, the last verifies and keeps the file; an
 * empty one only asks. *ret_held: the bytes held afterwards, also on -EPROTO (where the sender
 * goes on from). A transfer not in memory is taken up from the partial file on disk. */
int stage_chunk(struct staging *s, const agent_config_t *cfg, const Baton__Stage *req,
                uint64_t *ret_held, baton_err_t *err);
/* Keeps a whole, verified artifact received into `partial` (fd open on it; closed here): checks
 * that it is what the service takes (a program, or a release archive), fsyncs it and links it to
 * `final` (a file kept there already, whole, stays). `partial` is removed in every case. */
int stage_keep(const svc_config_t *svc, int fd, const char *partial, const char *final,
               uint64_t size, baton_err_t *err);
/* Closes and forgets a transfer; removes `partial` when given. */
void stage_reset(struct staging *s, const char *partial);

#endif
