/* transport: see transport.h. */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "envelope.h"

bool transport_key_valid(const char *s)
{
    static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              ".-:+=^!/*?&<>()[]{}@%$#";
    return s && strlen(s) == TRANSPORT_KEY_LEN && strspn(s, z85) == TRANSPORT_KEY_LEN;
}

static int write_new(const char *path, const char *text, mode_t mode, baton_err_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return baton_err_set(err, -errno, "%s: %s%s", path, strerror(errno),
                             errno == EEXIST ? " (a key is never overwritten)" : "");
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok) {
        unlink(path);
        return baton_err_set(err, -e, "write %s: %s", path, strerror(e));
    }
    return 0;
}

int transport_keygen(const char *prefix, baton_err_t *err)
{
    char pub[TRANSPORT_KEY_LEN + 1], sec[TRANSPORT_KEY_LEN + 1];
    if (zmq_curve_keypair(pub, sec) < 0)
        return baton_err_set(err, -errno, "curve keypair: %s (libzmq without CURVE?)",
                             zmq_strerror(errno));
    char *key_path = NULL, *pub_path = NULL, line[TRANSPORT_KEY_LEN + 2];
    if (asprintf(&key_path, "%s.key", prefix) < 0 || asprintf(&pub_path, "%s.pub", prefix) < 0) {
        free(key_path);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    struct stat sb;
    int r = 0;
    if (stat(pub_path, &sb) == 0)
        r = baton_err_set(err, -EEXIST, "%s: exists (a key is never overwritten)", pub_path);
    if (r == 0) {
        snprintf(line, sizeof(line), "%s\n", sec);
        r = write_new(key_path, line, 0600, err);
    }
    if (r == 0) {
        snprintf(line, sizeof(line), "%s\n", pub);
        if ((r = write_new(pub_path, line, 0644, err)) < 0)
            unlink(key_path);
    }
    sodium_memzero(sec, sizeof(sec));
    sodium_memzero(line, sizeof(line));
    free(key_path);
    free(pub_path);
    return r;
}

/* The first word of the first line of a small file. With `secret`, the file opened must be
 * readable by its owner alone: checked on the descriptor read from (fstat), so that the file
 * checked is the file read, whatever is renamed over the path meanwhile. */
static int read_key_file(const char *path, bool secret, transport_key_t *ret, baton_err_t *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return baton_err_set(err, -errno, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (secret && fstat(fileno(f), &sb) < 0) {
        int e = errno;
        fclose(f);
        return baton_err_set(err, -e, "%s: %s", path, strerror(e));
    }
    if (secret && (!S_ISREG(sb.st_mode) || (sb.st_mode & 0077))) {
        fclose(f);
        if (!S_ISREG(sb.st_mode))
            return baton_err_set(err, -EPERM, "%s: a secret key must be a regular file", path);
        return baton_err_set(err, -EPERM,
                             "%s: a secret key must not be readable by others "
                             "(mode %03o; chmod 600)",
                             path, (unsigned)(sb.st_mode & 0777));
    }
    char line[256] = "";
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    line[strcspn(line, " \t\r\n")] = '\0';
    if (!got || !transport_key_valid(line)) {
        sodium_memzero(line, sizeof(line));
        return baton_err_set(err, -EINVAL, "%s: not a Z85 CURVE key (40 characters)", path);
    }
    memcpy(ret->z85, line, TRANSPORT_KEY_LEN + 1);
    sodium_memzero(line, sizeof(line));
    return 0;
}

int transport_read_secret(const char *path, transport_key_t *ret_secret,
                          transport_key_t *ret_public, baton_err_t *err)
{
    int r = read_key_file(path, true, ret_secret, err);
    if (r < 0)
        return r;
    if (zmq_curve_public(ret_public->z85, ret_secret->z85) < 0)
        return baton_err_set(err, -EINVAL, "%s: not a CURVE secret key", path);
    return 0;
}

int transport_read_public(const char *path, transport_key_t *ret_public, baton_err_t *err)
{
    return read_key_file(path, false, ret_public, err);
}

void transport_fingerprint(const transport_key_t *key, char out[17])
{
    uint8_t raw[32], hash[crypto_hash_sha256_BYTES];
    if (!zmq_z85_decode(raw, key->z85)) {
        snprintf(out, 17, "?");
        return;
    }
    crypto_hash_sha256(hash, raw, sizeof(raw));
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", hash[i]);
}

static int opt(void *sock, int name, const void *val, size_t len, const char *what,
               baton_err_t *err)
{
    if (zmq_setsockopt(sock, name, val, len) < 0)
        return baton_err_set(err, -errno, "zmq_setsockopt %s: %s", what, zmq_strerror(errno));
    return 0;
}

int transport_tune(void *sock, bool server, baton_err_t *err)
{
    int64_t maxsize = BATON_MSG_MAX + 1024;
    int one = 1, ivl = 2000, timeout = 10000, linger = server ? 1000 : 0, connect_timeout = 2000;
    int r;
    if ((r = opt(sock, ZMQ_MAXMSGSIZE, &maxsize, sizeof(maxsize), "MAXMSGSIZE", err)) < 0 ||
        (r = opt(sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl), "HEARTBEAT_IVL", err)) < 0 ||
        (r = opt(sock, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout), "HEARTBEAT_TIMEOUT",
                 err)) < 0 ||
        (r = opt(sock, ZMQ_LINGER, &linger, sizeof(linger), "LINGER", err)) < 0)
        return r;
    if (server)
        return opt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one), "ROUTER_MANDATORY", err);
    return opt(sock, ZMQ_CONNECT_TIMEOUT, &connect_timeout, sizeof(connect_timeout),
               "CONNECT_TIMEOUT", err);
}

int transport_server(void *sock, const transport_key_t *secret, baton_err_t *err)
{
    int one = 1;
    int r;
    if ((r = opt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one), "CURVE_SERVER", err)) < 0 ||
        (r = opt(sock, ZMQ_CURVE_SECRETKEY, secret->z85, TRANSPORT_KEY_LEN + 1, "CURVE_SECRETKEY",
                 err)) < 0 ||
        (r = opt(sock, ZMQ_ZAP_DOMAIN, TRANSPORT_ZAP_DOMAIN, strlen(TRANSPORT_ZAP_DOMAIN),
                 "ZAP_DOMAIN", err)) < 0)
        return r;
    return 0;
}

int transport_client(void *sock, const transport_key_t *server_public,
                     const transport_key_t *secret, const transport_key_t *public, baton_err_t *err)
{
    int r;
    if ((r = opt(sock, ZMQ_CURVE_SERVERKEY, server_public->z85, TRANSPORT_KEY_LEN + 1,
                 "CURVE_SERVERKEY", err)) < 0 ||
        (r = opt(sock, ZMQ_CURVE_PUBLICKEY, public->z85, TRANSPORT_KEY_LEN + 1, "CURVE_PUBLICKEY",
                 err)) < 0 ||
        (r = opt(sock, ZMQ_CURVE_SECRETKEY, secret->z85, TRANSPORT_KEY_LEN + 1, "CURVE_SECRETKEY",
                 err)) < 0)
        return r;
    return 0;
}
