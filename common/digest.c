/* digest: see digest.h. */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int digest_global_init(baton_err_t *err)
{
    if (sodium_init() < 0)
        return baton_err_set(err, -EIO, "libsodium failed to initialise");
    return 0;
}

void digest_init(digest_t *d)
{
    crypto_hash_sha256_init(d);
}

void digest_update(digest_t *d, const void *buf, size_t len)
{
    crypto_hash_sha256_update(d, buf, len);
}

void digest_final_hex(digest_t *d, char hex[DIGEST_HEX_LEN + 1])
{
    unsigned char out[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(d, out);
    sodium_bin2hex(hex, DIGEST_HEX_LEN + 1, out, sizeof(out));
}

int digest_file(const char *path, char hex[DIGEST_HEX_LEN + 1], uint64_t *ret_size,
                baton_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return baton_err_set(err, -errno, "open %s: %s", path, strerror(errno));
    digest_t d;
    digest_init(&d);
    uint64_t size = 0;
    unsigned char buf[64 * 1024];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return baton_err_set(err, -e, "read %s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        digest_update(&d, buf, (size_t)n);
        size += (uint64_t)n;
    }
    close(fd);
    digest_final_hex(&d, hex);
    if (ret_size)
        *ret_size = size;
    return 0;
}

int digest_hex_valid(const char *s)
{
    return s && strlen(s) == DIGEST_HEX_LEN && strspn(s, "0123456789abcdef") == DIGEST_HEX_LEN;
}
