/* envelope: packing and checked unpacking of the one message type on baton's wire.
 *
 * Everything that arrives from the network is hostile until envelope_unpack() said otherwise:
 * it checks the size limit before protobuf-c sees the bytes, then the protocol version and that
 * a body is present, so that dispatch code only ever switches over known, well-formed commands. */
#ifndef BATON_ENVELOPE_H
#define BATON_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton.pb-c.h"
#include "err.h"

/* Largest Envelope either side accepts. Binary chunks travel in Stage messages of at most
 * BATON_CHUNK_MAX bytes, so 4 MiB leaves ample room for the framing around one chunk. */
#define BATON_MSG_MAX (4u * 1024u * 1024u)
#define BATON_CHUNK_MAX (1u * 1024u * 1024u)
/* A coordinator waiting for a pull (Stage with a url) asks where it stands at least this
 * often (the agent gives a pull up after ten times as long without an ask: pull.h). */
#define BATON_PULL_ASK_MAX_MS 1000u
/* What an agent can do beyond protocol 1 (Hello.features); a coordinator uses each only with
 * agents that list it. */
/* Stage.url: the agent fetches the artifact itself */
#define BATON_FEATURE_PULL "pull"
/* Stage.data_frame: a chunk's bytes in a frame of their own */
#define BATON_FEATURE_FRAME "frame"

/* Serialises `env` into a new buffer. On success *ret_buf (the caller's, free() it) and *ret_len
 * are set. Fails with -EMSGSIZE when the packed message would exceed BATON_MSG_MAX. */
int envelope_pack(const Baton__Envelope *env, uint8_t **ret_buf, size_t *ret_len, baton_err_t *err);

/* Parses `len` bytes. On success *ret_env is the caller's (envelope_free() it). Fails with
 * -EMSGSIZE (over the limit), -EBADMSG (not a valid Envelope, no body, a string that is not
 * UTF-8 or over its limit, naming the field) or -EPROTONOSUPPORT (another protocol version);
 * nothing is allocated then. */
int envelope_unpack(const uint8_t *buf, size_t len, Baton__Envelope **ret_env, baton_err_t *err);

/* A request that came with a second frame (Stage.data_frame): the frame's bytes become the
 * Stage's data, copied (the frame is the caller's still). Fails with -EBADMSG, naming what is
 * wrong, unless `env` is a Stage whose data_frame is exactly `len`, with no data of its own, and
 * `len` at most BATON_CHUNK_MAX; `env` is unchanged then. Without a frame (`frame` NULL) it
 * only checks that none was announced. */
int envelope_take_frame(Baton__Envelope *env, const void *frame, size_t len, baton_err_t *err);

/* Limits on what a message may carry, checked by envelope_unpack() in every nested message. */
#define ENVELOPE_STRING_MAX (16 * 1024) /* bytes in any one string */
/* Entries in any repeated field: as many migration ids as the agent records of one list
 * (STATE_IDS_MAX), so that nothing the wire takes is refused when recorded. */
#define ENVELOPE_REPEATED_MAX 4096

/* True when the bytes are valid UTF-8 (RFC 3629). */
bool envelope_utf8_valid(const char *s, size_t len);

/* Frees an Envelope from envelope_unpack(); NULL-safe, sets *env_p to NULL. */
void envelope_free(Baton__Envelope **env_p);

/* Human name of a body case, for messages ("hello", "result", "unknown"). */
const char *envelope_body_name(Baton__Envelope__BodyCase body);

#endif
