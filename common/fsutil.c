/* fsutil: see fsutil.h. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

int fs_fsync_parent(const char *path, baton_err_t *err)
{
    char copy[PATH_MAX];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
        return baton_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return baton_err_set(err, -errno, "open %s: %s", dir, strerror(errno));
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        return baton_err_set(err, r, "fsync %s: %s", dir, strerror(-r));
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, baton_err_t *err)
{
    return fs_write_replace(path, data, len, mode, true, err);
}

int fs_create_new(const char *path, int flags, mode_t mode, baton_err_t *err)
{
    if (unlink(path) < 0 && errno != ENOENT)
        return baton_err_set(err, -errno, "unlink %s: %s", path, strerror(errno));
    int fd = open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return baton_err_set(err, -errno, "create %s: %s", path, strerror(errno));
    return fd;
}

int fs_dir_root_only(const char *dir, baton_err_t *err)
{
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return baton_err_set(err, -errno, "%s: %s", dir, strerror(errno));
    for (;;) {
        struct stat sb;
        if (stat(real, &sb) < 0)
            return baton_err_set(err, -errno, "stat %s: %s", real, strerror(errno));
        /* Others may write a sticky folder (a tmpfs's 1777) but not rename or remove what root
         * made there, and the agent creates with O_EXCL|O_NOFOLLOW: that is safe. */
        if (sb.st_uid != 0 || ((sb.st_mode & (S_IWGRP | S_IWOTH)) && !(sb.st_mode & S_ISVTX)))
            return baton_err_set(err, -EPERM,
                                 "%s may be written by others than root (owner uid %u, mode "
                                 "%04o): the agent creates no file under it",
                                 real, (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777));
        char *slash = strrchr(real, '/');
        if (!slash || slash == real) {
            if (real[1] == '\0')
                return 0;
            real[1] = '\0'; /* and "/" itself */
            continue;
        }
        *slash = '\0';
    }
}

bool fs_fsync_covers_rename(int fd)
{
    struct statfs s;
    if (fstatfs(fd, &s) < 0)
        return false;
    /* ext4 (and ext2/3 driven by ext4, one magic) and XFS: fsync of a file forces the journal
     * up to the file's own last change, and a rename changes the renamed file (its ctime) in the
     * very transaction that changes the folder; the journal commits in order. Elsewhere (btrfs,
     * network file systems) the folder is fsynced too. */
    return s.f_type == EXT4_SUPER_MAGIC || s.f_type == XFS_SUPER_MAGIC;
}

int fs_write_replace(const char *path, const void *data, size_t len, mode_t mode, bool durable,
                     baton_err_t *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return baton_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
    int fd = fs_create_new(tmp, O_WRONLY, mode, err);
    if (fd < 0)
        return fd;
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return baton_err_set(err, -e, "write %s: %s", tmp, strerror(e));
        }
        p += n;
        left -= (size_t)n;
    }
    /* One journal commit where the file system allows it, instead of two (the file's, then the
     * folder's): the data written to the disk first and waited for (sync_file_range: no
     * metadata, no cache flush), renamed, then the file fsynced, which commits its blocks and
     * the rename together and flushes the disk's cache over the data written before. Whatever
     * the mount options (XFS and ext4's data=writeback do not order data before metadata),
     * the name never reaches the disk ahead of the bytes. A failed write of the data leaves
     * the old file in place. */
    bool one_flush = durable && fs_fsync_covers_rename(fd);
    if (one_flush && sync_file_range(fd, 0, 0,
                                     SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                         SYNC_FILE_RANGE_WAIT_AFTER) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return baton_err_set(err, -e, "write %s to disk: %s", tmp, strerror(e));
    }
    if (durable && !one_flush && fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return baton_err_set(err, -e, "fsync %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return baton_err_set(err, -e, "rename %s -> %s: %s", tmp, path, strerror(e));
    }
    if (one_flush) {
        int e = fsync(fd) < 0 ? errno : 0;
        close(fd);
        /* The new content is in place but not known to be on disk: said as a failure, as a
         * failed fsync of the folder was. */
        return e ? baton_err_set(err, -e, "fsync %s: %s", path, strerror(e)) : 0;
    }
    close(fd);
    return durable ? fs_fsync_parent(path, err) : 0;
}

int fs_read_all(const char *path, size_t max, char **ret_data, size_t *ret_len, baton_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return baton_err_set(err, -errno, "open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size > max) {
        close(fd);
        return baton_err_set(err, -EFBIG, "%s: larger than %zu bytes", path, max);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf)
        return baton_err_set(err, -ENOMEM, "%s: out of memory", path);
    if (got != (size_t)st.st_size) {
        free(buf);
        return baton_err_set(err, -EIO, "read %s: short read", path);
    }
    buf[got] = '\0';
    *ret_data = buf;
    if (ret_len)
        *ret_len = got;
    return 0;
}

int fs_mkdir_p(const char *path, mode_t mode, baton_err_t *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return baton_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return baton_err_set(err, -errno, "mkdir %s: %s", buf, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return baton_err_set(err, -ENOTDIR, "%s: not a directory", path);
    return 0;
}

fs_ident_t fs_ident(const struct stat *sb)
{
    return (fs_ident_t){.dev = sb->st_dev,
                        .ino = sb->st_ino,
                        .size = sb->st_size,
                        .mode = sb->st_mode,
                        .mtime = sb->st_mtim,
                        .ctime = sb->st_ctim};
}

bool fs_ident_equal(const fs_ident_t *a, const fs_ident_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mode == b->mode &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}
