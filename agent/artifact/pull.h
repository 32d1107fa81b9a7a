/* pull: an artifact the agent fetches itself, with libcurl, from the http:// or https:// URL the
 * coordinator names (the fleet's mirror), into the same staging store as a pushed one (stage.c),
 * kept under its digest only once the SHA-256 the coordinator sent matches.
 *
 * One pull per service, on a thread of its own; the Stage front asks it where it stands
 * (pull_ask: answered at once), which is also what starts it. A pull
 *   - goes on from what it has: the partial file (DIGEST.pull) and the validator the server gave
 *     for it (DIGEST.pull.validator: a strong ETag, or Last-Modified) are kept across attempts,
 *     agent restarts and coordinators; the next request asks `Range: bytes=N-` with `If-Range:
 *     VALIDATOR`, so a file changed on the mirror comes whole (200) and starts over instead of
 *     being spliced onto the old one's start;
 *   - makes up to PULL_TRIES attempts with a doubling pause between them when one fails on the
 *     way (refused, reset, stalled PULL_STALL_S with no byte, a 5xx, 408, 429, a 416 to what it
 *     had); a 4xx, a TLS trust failure, a file larger than a staged artifact may be, no room, or
 *     a wrong digest end it at once (a file put together from two attempts that fails its
 *     digest is first fetched once more whole);
 *   - stops when no one asked for PULL_ORPHAN_MS (the coordinator asks every second while it
 *     waits: it was stopped or went away; what the pull got stays for the next one), or when
 *     another artifact is asked for the service;
 *   - reads its proxy, CA file and bandwidth cap from the agent's config (`pull:`). */
#ifndef BATON_AGENT_PULL_H
#define BATON_AGENT_PULL_H

#include <stddef.h>

#include "baton.pb-c.h"
#include "config.h"
#include "err.h"

#define PULL_TRIES 6         /* attempts before the pull fails */
#define PULL_STALL_S 30      /* an attempt that received no byte for this long ends */
#define PULL_ORPHAN_MS 10000 /* a pull no one asked about for this long stops */
#define PULL_ORPHAN_TEXT "10 s"

typedef struct pull pull_t;

/* Answers a Stage with a url for `svc`, whose pull lives in *p (NULL when none runs): starts
 * it, or says where it stands, at once. Fills res->staged_bytes, stage_size and
 * stage_pulling, and `line` with what it did or does. 0 while it runs and once it is kept
 * (res->stage_pulling false, staged_bytes == stage_size); < 0 when it failed (err says why,
 * naming the URL) or the request is bad. An ended pull is freed here. */
int pull_ask(pull_t **p, const agent_config_t *cfg, const svc_config_t *svc,
             const Baton__Stage *req, Baton__Result *res, char *line, size_t len, baton_err_t *err);
/* Stops a pull (the partial file stays for the next one) and frees it. */
void pull_destroy(pull_t **p);

#endif
