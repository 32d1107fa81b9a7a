/* envelope: see envelope.h. */
#include "envelope.h"

#include <errno.h>
#include <stdlib.h>

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
    *ret_env = env;
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
