/* zap: see zap.h. */
#include "zap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "log.h"
#include "transport.h"

struct zap {
    void *sock; /* REP on inproc://zeromq.zap.01 */
    char *path; /* the authorized-keys file */
    transport_key_t *keys;
    size_t n;
};

static int load(const char *path, transport_key_t **ret_keys, size_t *ret_n, baton_err_t *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return baton_err_set(err, -errno, "%s: %s", path, strerror(errno));
    transport_key_t *keys = calloc(ZAP_KEYS_MAX, sizeof(*keys));
    if (!keys) {
        fclose(f);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    char line[512];
    unsigned lineno = 0;
    size_t n = 0;
    int r = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        p[strcspn(p, " \t\r\n")] = '\0';
        if (!transport_key_valid(p)) {
            r = baton_err_set(err, -EINVAL, "%s:%u: not a Z85 CURVE public key (40 characters)",
                              path, lineno);
            break;
        }
        if (n == ZAP_KEYS_MAX) {
            r = baton_err_set(err, -E2BIG, "%s:%u: more than %d keys", path, lineno, ZAP_KEYS_MAX);
            break;
        }
        memcpy(keys[n++].z85, p, TRANSPORT_KEY_LEN + 1);
    }
    fclose(f);
    if (r < 0) {
        free(keys);
        return r;
    }
    *ret_keys = keys;
    *ret_n = n;
    return 0;
}

int zap_check_file(const char *path, size_t *ret_n, baton_err_t *err)
{
    transport_key_t *keys = NULL;
    int r = load(path, &keys, ret_n, err);
    free(keys);
    return r;
}

int zap_new(void *zctx, const char *authorized_keys, zap_t **ret, baton_err_t *err)
{
    zap_t *z = calloc(1, sizeof(*z));
    if (!z || !(z->path = strdup(authorized_keys))) {
        free(z);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    int r = load(z->path, &z->keys, &z->n, err);
    if (r < 0) {
        zap_destroy(&z);
        return r;
    }
    int linger = 0;
    z->sock = zmq_socket(zctx, ZMQ_REP);
    if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_bind(z->sock, "inproc://zeromq.zap.01") < 0) {
        r = baton_err_set(err, -errno, "ZAP handler: %s", zmq_strerror(errno));
        zap_destroy(&z);
        return r;
    }
    *ret = z;
    return 0;
}

void zap_destroy(zap_t **z_p)
{
    zap_t *z = *z_p;
    if (!z)
        return;
    if (z->sock)
        zmq_close(z->sock);
    free(z->keys);
    free(z->path);
    free(z);
    *z_p = NULL;
}

void *zap_socket(zap_t *z)
{
    return z->sock;
}

size_t zap_count(const zap_t *z)
{
    return z->n;
}

int zap_reload(zap_t *z, baton_err_t *err)
{
    transport_key_t *keys = NULL;
    size_t n = 0;
    int r = load(z->path, &keys, &n, err);
    if (r < 0)
        return r;
    free(z->keys);
    z->keys = keys;
    z->n = n;
    return 0;
}

/* A ZAP request (RFC 27): version, request id, domain, address, identity, mechanism, then the
 * mechanism's credentials (CURVE: the client's 32-byte public key). */
#define ZAP_FRAMES 7

void zap_handle(zap_t *z)
{
    zmq_msg_t frames[ZAP_FRAMES + 1];
    size_t n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, z->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_FRAMES + 1) {
            zmq_msg_init(&frames[n]);
            zmq_msg_move(&frames[n++], &m);
        }
        zmq_msg_close(&m);
    }
    if (n == 0)
        return;
    char key[TRANSPORT_KEY_LEN + 1] = "", address[64] = "?", mechanism[16] = "";
    if (n >= 4)
        snprintf(address, sizeof(address), "%.*s", (int)zmq_msg_size(&frames[3]),
                 (const char *)zmq_msg_data(&frames[3]));
    if (n >= 6)
        snprintf(mechanism, sizeof(mechanism), "%.*s", (int)zmq_msg_size(&frames[5]),
                 (const char *)zmq_msg_data(&frames[5]));
    if (n == ZAP_FRAMES && zmq_msg_size(&frames[6]) == 32)
        zmq_z85_encode(key, zmq_msg_data(&frames[6]), 32);
    bool ok = false;
    for (size_t i = 0; *key && i < z->n && !ok; i++)
        ok = !strcmp(z->keys[i].z85, key);
    if (!ok) {
        transport_key_t k;
        char fp[17] = "?";
        if (*key) {
            memcpy(k.z85, key, sizeof(k.z85));
            transport_fingerprint(&k, fp);
        }
        log_event(NULL, NULL, NULL, 4,
                  "refused a connection from %s: %s key %s (fingerprint %s) is not in %s", address,
                  *mechanism ? mechanism : "no", *key ? key : "(none)", fp, z->path);
    }
    /* The reply: version, request id, status code, status text, user id, metadata. */
    const char *reply[] = {"1.0", NULL, ok ? "200" : "400", ok ? "OK" : "key not authorized",
                           "",    ""};
    for (size_t i = 0; i < 6; i++) {
        int flags = i < 5 ? ZMQ_SNDMORE : 0;
        if (i == 1) {
            if (n >= 2)
                zmq_send(z->sock, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), flags);
            else
                zmq_send(z->sock, "", 0, flags);
        } else {
            zmq_send(z->sock, reply[i], strlen(reply[i]), flags);
        }
    }
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
}
