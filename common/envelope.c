/* envelope: see envelope.h. */
#include "envelope.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int envelope_pack(const Baton__Envelope *env, uint8_t **ret_buf, size_t *ret_len, baton_err_t *err)
{
    size_t len = baton__envelope__get_packed_size(env);
    if (len > BATON_MSG_MAX)
        return baton_err_set(err, -EMSGSIZE, "envelope of %zu bytes exceeds the limit of %u", len,
                             BATON_MSG_MAX);
    /* malloc(0) may return NULL; an empty Envelope is still a valid (if useless) message. */
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return baton_err_set(err, -ENOMEM, "envelope of %zu bytes: out of memory", len);
    size_t packed = baton__envelope__pack(env, buf);
    if (packed != len) {
        free(buf);
        return baton_err_set(err, -EIO, "envelope packed to %zu bytes, expected %zu", packed, len);
    }
    *ret_buf = buf;
    *ret_len = len;
    return 0;
}

/* True when s[0..len) is UTF-8 as RFC 3629 has it: no overlong forms, no surrogates, nothing
 * past U+10FFFF. A JSON encoder (jansson, Python's protobuf) refuses anything else. */
bool envelope_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len) /* cut short */
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* Every string of a message and of the messages inside it: valid UTF-8 and within
 * ENVELOPE_STRING_MAX; repeated fields within ENVELOPE_REPEATED_MAX. `path` names the field in
 * the error ("result.applied[1]"). */
static int check_strings(const ProtobufCMessage *m, const char *path, int depth, baton_err_t *err)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > 8)
        return baton_err_set(err, -EBADMSG, "%s: nested too deep", path);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        /* A oneof member other than the one set holds nothing. */
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
        size_t n = repeated ? *(const size_t *)(base + f->quantifier_offset) : 1;
        if (n > ENVELOPE_REPEATED_MAX)
            return baton_err_set(err, -EBADMSG, "%s%s%s: %zu entries, at most %d", path,
                                 *path ? "." : "", f->name, n, ENVELOPE_REPEATED_MAX);
        for (size_t k = 0; k < n; k++) {
            void *const *arr = repeated ? *(void *const *const *)(base + f->offset) : NULL;
            const void *v = repeated ? (arr ? arr[k] : NULL) : *(void *const *)(base + f->offset);
            char where[160];
            if (repeated)
                snprintf(where, sizeof(where), "%s%s%s[%zu]", path, *path ? "." : "", f->name, k);
            else
                snprintf(where, sizeof(where), "%s%s%s", path, *path ? "." : "", f->name);
            if (!v)
                continue;
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int r = check_strings(v, where, depth + 1, err);
                if (r < 0)
                    return r;
                continue;
            }
            size_t len = strlen(v);
            if (len > ENVELOPE_STRING_MAX)
                return baton_err_set(err, -EBADMSG, "%s: %zu bytes, at most %d", where, len,
                                     ENVELOPE_STRING_MAX);
            if (!envelope_utf8_valid(v, len))
                return baton_err_set(err, -EBADMSG, "%s: not valid UTF-8", where);
        }
    }
    return 0;
}

int envelope_unpack(const uint8_t *buf, size_t len, Baton__Envelope **ret_env, baton_err_t *err)
{
    if (len > BATON_MSG_MAX)
        return baton_err_set(err, -EMSGSIZE, "message of %zu bytes exceeds the limit of %u", len,
                             BATON_MSG_MAX);
    Baton__Envelope *env = baton__envelope__unpack(NULL, len, buf);
    if (!env)
        return baton_err_set(err, -EBADMSG, "malformed message (%zu bytes): not an Envelope", len);
    if (env->protocol_version != BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT) {
        uint32_t v = env->protocol_version;
        baton__envelope__free_unpacked(env, NULL);
        return baton_err_set(err, -EPROTONOSUPPORT,
                             "protocol version %u not supported (this build speaks %d)", v,
                             BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT);
    }
    if (env->body_case == BATON__ENVELOPE__BODY__NOT_SET) {
        baton__envelope__free_unpacked(env, NULL);
        return baton_err_set(err, -EBADMSG, "message carries no command");
    }
    /* Strings are copied into answers, logs and JSON: none may be malformed or huge. */
    int r = check_strings(&env->base, "", 0, err);
    if (r < 0) {
        baton__envelope__free_unpacked(env, NULL);
        return r;
    }
    *ret_env = env;
    return 0;
}

int envelope_take_frame(Baton__Envelope *env, const void *frame, size_t len, baton_err_t *err)
{
    bool stage = env->body_case == BATON__ENVELOPE__BODY_STAGE;
    uint32_t want = stage ? env->stage->data_frame : 0;
    if (!frame) {
        if (want)
            return baton_err_set(err, -EBADMSG,
                                 "stage.data_frame: %u bytes announced, no frame came with them",
                                 want);
        return 0;
    }
    if (!stage)
        return baton_err_set(err, -EBADMSG, "a %s request is one frame",
                             envelope_body_name(env->body_case));
    if (!want)
        return baton_err_set(err, -EBADMSG,
                             "a second frame (%zu bytes) no stage.data_frame announced", len);
    if (len != want)
        return baton_err_set(err, -EBADMSG, "stage.data_frame: %u bytes announced, %zu came", want,
                             len);
    if (len > BATON_CHUNK_MAX)
        return baton_err_set(err, -EBADMSG, "stage.data_frame: %zu bytes, at most %u", len,
                             BATON_CHUNK_MAX);
    if (env->stage->data.len)
        return baton_err_set(err, -EBADMSG, "stage: data both in the message and in a frame");
    if (*env->stage->url)
        return baton_err_set(err, -EBADMSG, "stage: a frame with a url (a pull carries no bytes)");
    /* unpacked with protobuf-c's default allocator (malloc), so free_unpacked frees this too */
    uint8_t *copy = malloc(len); /* len == data_frame, never 0 here */
    if (!copy)
        return baton_err_set(err, -ENOMEM, "out of memory");
    memcpy(copy, frame, len);
    free(env->stage->data.data); /* protobuf-c leaves an empty bytes field NULL; be sure */
    env->stage->data.data = copy;
    env->stage->data.len = len;
    return 0;
}

void envelope_free(Baton__Envelope **env_p)
{
    if (!env_p || !*env_p)
        return;
    baton__envelope__free_unpacked(*env_p, NULL);
    *env_p = NULL;
}

const char *envelope_body_name(Baton__Envelope__BodyCase body)
{
    switch (body) {
    case BATON__ENVELOPE__BODY_HELLO:
        return "hello";
    case BATON__ENVELOPE__BODY_RESULT:
        return "result";
    case BATON__ENVELOPE__BODY_STAGE:
        return "stage";
    case BATON__ENVELOPE__BODY_PREFLIGHT:
        return "preflight";
    case BATON__ENVELOPE__BODY_STOP:
        return "stop";
    case BATON__ENVELOPE__BODY_DUMP:
        return "dump";
    case BATON__ENVELOPE__BODY_SWAP:
        return "swap";
    case BATON__ENVELOPE__BODY_MIGRATE:
        return "migrate";
    case BATON__ENVELOPE__BODY_START:
        return "start";
    case BATON__ENVELOPE__BODY_VERIFY:
        return "verify";
    case BATON__ENVELOPE__BODY_ROLLBACK:
        return "rollback";
    case BATON__ENVELOPE__BODY_COMMIT:
        return "commit";
    case BATON__ENVELOPE__BODY_PROGRESS:
        return "progress";
    case BATON__ENVELOPE__BODY_PLAN:
        return "plan";
    case BATON__ENVELOPE__BODY__NOT_SET:
        return "none";
    default:
        return "unknown";
    }
}
