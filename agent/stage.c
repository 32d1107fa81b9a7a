/* stage: receive the new binary in chunks into STATE_DIR/staging/SERVICE/, verify its
 * SHA-256, and keep it under its digest. Nothing live changes: staging is always safe. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "command.h"
#include "stage.h"
#include "envelope.h"
#include "fsutil.h"

#define STAGE_SIZE_MAX (2ull * 1024 * 1024 * 1024) /* a 2 GiB binary is already absurd */
#define STAGE_MARGIN (64ull * 1024 * 1024)         /* free space left after staging */

void stage_reset(struct staging *s, const char *partial)
{
    if (s->fd >= 0)
        close(s->fd);
    if (partial)
        unlink(partial);
    s->fd = -1;
    free(s->service);
    s->service = NULL;
    s->received = 0;
}

int stage_chunk(struct staging *s, const agent_config_t *cfg, const Baton__Stage *req,
                baton_err_t *err)
{
    if (!agent_config_service(cfg, req->service))
        return baton_err_set(err, -ENOENT, "unknown service '%s'", req->service);
    if (!digest_hex_valid(req->sha256))
        return baton_err_set(err, -EINVAL, "stage: sha256 must be 64 lower-case hex digits");
    if (req->size == 0 || req->size > STAGE_SIZE_MAX)
        return baton_err_set(err, -EFBIG, "stage: size %llu not in 1..%llu",
                             (unsigned long long)req->size, STAGE_SIZE_MAX);
    if (req->data.len > BATON_CHUNK_MAX || req->offset > req->size ||
        req->data.len > req->size - req->offset)
        return baton_err_set(err, -EINVAL, "stage: chunk at %llu of %zu bytes does not fit %llu",
                             (unsigned long long)req->offset, req->data.len,
                             (unsigned long long)req->size);

    char final[PATH_MAX], partial[PATH_MAX + 16], dir[PATH_MAX];
    int r = staged_path(cfg, req->service, req->sha256, final, sizeof(final), err);
    if (r < 0)
        return r;
    snprintf(partial, sizeof(partial), "%s.partial", final);
    snprintf(dir, sizeof(dir), "%s/staging/%s", cfg->state_dir, req->service);

    if (req->offset == 0) {
        stage_reset(s, NULL);
        if ((r = fs_mkdir_p(dir, 0700, err)) < 0)
            return r;
        /* The size announced up front must fit, with room to spare for the state and logs. */
        struct statvfs vfs;
        if (statvfs(dir, &vfs) == 0 &&
            (uint64_t)vfs.f_bavail * vfs.f_frsize < req->size + STAGE_MARGIN)
            return baton_err_set(
                err, -ENOSPC, "stage: %llu bytes announced, %llu MiB free in %s",
                (unsigned long long)req->size,
                (unsigned long long)(((uint64_t)vfs.f_bavail * vfs.f_frsize) >> 20), dir);
        s->fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
        if (s->fd < 0)
            return baton_err_set(err, -errno, "open %s: %s", partial, strerror(errno));
        if (!(s->service = strdup(req->service))) {
            stage_reset(s, partial);
            return baton_err_set(err, -ENOMEM, "out of memory");
        }
        memcpy(s->sha256, req->sha256, sizeof(s->sha256));
        s->size = req->size;
        digest_init(&s->digest);
    } else if (s->fd < 0 || strcmp(s->service, req->service) || strcmp(s->sha256, req->sha256) ||
               s->size != req->size || s->received != req->offset) {
        return baton_err_set(err, -EPROTO,
                             "stage: chunk at %llu does not follow %llu bytes "
                             "received; restart at offset 0",
                             (unsigned long long)req->offset, (unsigned long long)s->received);
    }

    const uint8_t *p = req->data.data;
    size_t left = req->data.len;
    while (left) {
        ssize_t n = write(s->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = baton_err_set(err, -errno, "write %s: %s", partial, strerror(errno));
            stage_reset(s, partial);
            return r;
        }
        p += n;
        left -= (size_t)n;
    }
    digest_update(&s->digest, req->data.data, req->data.len);
    s->received += req->data.len;
    if (s->received < s->size)
        return 0;

    char got[DIGEST_HEX_LEN + 1];
    digest_final_hex(&s->digest, got);
    if (strcmp(got, s->sha256)) {
        stage_reset(s, partial);
        return baton_err_set(err, -EBADMSG, "staged binary has sha256 %s, expected %s", got,
                             req->sha256);
    }
    if (fsync(s->fd) < 0 || fchmod(s->fd, 0755) < 0) {
        r = baton_err_set(err, -errno, "fsync %s: %s", partial, strerror(errno));
        stage_reset(s, partial);
        return r;
    }
    if (rename(partial, final) < 0) {
        r = baton_err_set(err, -errno, "rename %s -> %s: %s", partial, final, strerror(errno));
        stage_reset(s, partial);
        return r;
    }
    stage_reset(s, NULL);
    return fs_fsync_parent(final, err);
}
