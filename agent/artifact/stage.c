/* stage: receive the new binary in chunks (or pull it: pull.c) into STATE_DIR/staging/SERVICE/,
 * verify its SHA-256, and keep it under its digest. Nothing live changes: staging is always safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "artifact.h"
#include "command.h"
#include "stage.h"
#include "release.h"

#include "envelope.h"
#include "fsutil.h"

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

/* What the agent holds of this artifact when nothing is in memory (a new transfer from another
 * coordinator, or this agent restarted): the whole verified binary, or a partial file, which is
 * hashed again so that the transfer can go on from its end. */
static int adopt(struct staging *s, const Baton__Stage *req, const char *final, const char *partial,
                 baton_err_t *err)
{
    struct stat sb;
    stage_reset(s, NULL);
    if (stat(final, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == req->size)
        return 1; /* kept only after its digest was checked, under that digest */
    int fd = open(partial, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    /* Only whole chunks are ever written, so a partial file ends on a chunk boundary unless a
     * write failed half-way: then it starts over. */
    if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size > req->size ||
        (uint64_t)sb.st_size % BATON_CHUNK_MAX) {
        close(fd);
        return 0;
    }
    if (!(s->service = strdup(req->service))) {
        close(fd);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    digest_init(&s->digest);
    uint8_t buf[64 * 1024];
    uint64_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int r = baton_err_set(err, -errno, "read %s: %s", partial, strerror(errno));
            close(fd);
            stage_reset(s, partial);
            return r;
        }
        if (n == 0)
            break;
        digest_update(&s->digest, buf, (size_t)n);
        got += (uint64_t)n;
    }
    if (lseek(fd, (off_t)got, SEEK_SET) < 0) {
        close(fd);
        stage_reset(s, partial);
        return 0;
    }
    s->fd = fd;
    memcpy(s->sha256, req->sha256, sizeof(s->sha256));
    s->size = req->size;
    s->received = got;
    return 0;
}

static bool same_transfer(const struct staging *s, const Baton__Stage *req)
{
    return s->fd >= 0 && !strcmp(s->service, req->service) && !strcmp(s->sha256, req->sha256) &&
           s->size == req->size;
}

int stage_keep(const svc_config_t *svc, int fd, const char *partial, const char *final,
               uint64_t size, baton_err_t *err)
{
    /* Whole and the one asked for; and a program this node may run (or, for a service with
     * releases, a release archive, checked member by member when unpacked), or never kept. */
    int r = 0;
    if (svc->release_dir && !release_is_archive_fd(fd))
        r = baton_err_set(err, -ENOEXEC,
                          "%s takes whole releases (release_dir %s): the artifact is no release "
                          "archive (tar, compressed or not)",
                          svc->name, svc->release_dir);
    else if (!svc->release_dir)
        r = artifact_check_fd(fd, "the artifact", svc->artifact_scripts, err);
    if (r == 0 && (fsync(fd) < 0 || fchmod(fd, 0755) < 0))
        r = baton_err_set(err, -errno, "fsync %s: %s", partial, strerror(errno));
    /* Closed before it is put in place: a file open for writing cannot be run (ETXTBSY), and
     * a pre-flight runs it as soon as its coordinator hears it is held. link(2), not rename:
     * a file already kept under this digest (verified, maybe running) is never replaced. */
    close(fd);
    if (r < 0) {
        unlink(partial);
        return r;
    }
    r = link(partial, final) < 0 ? -errno : 0;
    struct stat kept;
    if (r == -EEXIST && lstat(final, &kept) == 0 && S_ISREG(kept.st_mode) &&
        (uint64_t)kept.st_size == size)
        r = 0; /* kept meanwhile under this digest, whole: that one stays */
    else if (r == -EEXIST && unlink(final) == 0) /* not the artifact: never verified, replaced */
        r = link(partial, final) < 0 ? -errno : 0;
    if (r < 0)
        r = baton_err_set(err, r, "link %s -> %s: %s", partial, final, strerror(-r));
    unlink(partial);
    return r < 0 ? r : fs_fsync_parent(final, err);
}

int stage_chunk(struct staging *s, const agent_config_t *cfg, const Baton__Stage *req,
                uint64_t *ret_held, baton_err_t *err)
{
    *ret_held = 0;
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

    /* Not the transfer in memory: what is on disk says where it stands. A first chunk too: a
     * second coordinator that asked before the first one's transfer ended starts from 0, and
     * the file kept meanwhile (which a pre-flight may be running) is never written again. */
    if (!same_transfer(s, req)) {
        if ((r = adopt(s, req, final, partial, err)) < 0)
            return r;
        if (r == 1) {
            *ret_held = req->size;
            return 0; /* held whole: nothing to send again */
        }
    }
    if (req->data.len == 0) { /* the question: what do you hold? */
        *ret_held = same_transfer(s, req) ? s->received : 0;
        return 0;
    }
    if (same_transfer(s, req) && req->offset < s->received) {
        *ret_held = s->received;
        if (req->offset + req->data.len <= s->received && req->offset % BATON_CHUNK_MAX == 0)
            return 0; /* a chunk sent again after a rewind: held already */
        return baton_err_set(err, -EPROTO, "stage: chunk at %llu overlaps %llu bytes received",
                             (unsigned long long)req->offset, (unsigned long long)s->received);
    }

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
        if ((s->fd = fs_create_new(partial, O_RDWR, 0700, err)) < 0)
            return s->fd;
        if (!(s->service = strdup(req->service))) {
            stage_reset(s, partial);
            return baton_err_set(err, -ENOMEM, "out of memory");
        }
        memcpy(s->sha256, req->sha256, sizeof(s->sha256));
        s->size = req->size;
        digest_init(&s->digest);
    } else if (!same_transfer(s, req) || s->received != req->offset) {
        *ret_held = same_transfer(s, req) ? s->received : 0;
        return baton_err_set(err, -EPROTO,
                             "stage: chunk at %llu does not follow the %llu bytes held; go on "
                             "from there",
                             (unsigned long long)req->offset, (unsigned long long)*ret_held);
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
    *ret_held = s->received;
    if (s->received < s->size)
        return 0;

    char got[DIGEST_HEX_LEN + 1];
    digest_final_hex(&s->digest, got);
    if (strcmp(got, s->sha256)) {
        stage_reset(s, partial);
        *ret_held = 0;
        return baton_err_set(err, -EBADMSG, "staged binary has sha256 %s, expected %s", got,
                             req->sha256);
    }
    int fd = s->fd;
    s->fd = -1;
    r = stage_keep(agent_config_service(cfg, req->service), fd, partial, final, s->size, err);
    stage_reset(s, NULL);
    if (r < 0)
        *ret_held = 0;
    return r;
}
