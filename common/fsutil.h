/* fsutil: file operations that survive a crash at any instant (write-temp, fsync, rename). */
#ifndef BATON_FSUTIL_H
#define BATON_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "err.h"

/* Replaces `path` with `len` bytes of `data`: written to path.tmp, fsynced, renamed over path,
 * and the directory fsynced, so a reader sees the old or the new content, never a mix. On ext4
 * and XFS (fs_fsync_covers_rename) one journal commit does it: the data written out and waited
 * for, renamed, then the file fsynced. A failure of that last fsync leaves the new content in
 * place, not known to be on disk (as a failed fsync of the folder would). */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, baton_err_t *err);
/* The same, fsynced only when `durable`: without, the file is still replaced whole (a crashed
 * process leaves the old or the new one, never half), but a power loss may lose it. For records
 * that only matter while the machine stays up. */
int fs_write_replace(const char *path, const void *data, size_t len, mode_t mode, bool durable,
                     baton_err_t *err);

/* Whether fsync(fd) also makes a rename of that file done before it durable (its file system
 * journals both in order: ext4, XFS), so that the folder need not be fsynced as well. */
bool fs_fsync_covers_rename(int fd);

/* Creates `path` anew for writing (O_EXCL|O_NOFOLLOW): a leftover of an earlier crash is
 * unlinked first (a link, never what it points to), so a planted symlink or hard-linked file
 * is never written through or chowned. Returns the descriptor or a negative errno. */
int fs_create_new(const char *path, int flags, mode_t mode, baton_err_t *err);

/* 0 when no one but root may replace what root creates in `dir` or any folder above it: each
 * owned by root, with no group or other write bit unless sticky (as OpenSSH's StrictModes asks
 * of a key's folders, with /tmp's exception): where a root daemon creates files. -EPERM naming
 * the first folder that fails, and who may write it. */
int fs_dir_root_only(const char *dir, baton_err_t *err);

/* Reads a whole file of at most `max` bytes; *ret_data (NUL-terminated) is the caller's. */
int fs_read_all(const char *path, size_t max, char **ret_data, size_t *ret_len, baton_err_t *err);

/* fsync the directory that contains `path`, making a rename in it durable. */
int fs_fsync_parent(const char *path, baton_err_t *err);

/* mkdir -p with `mode` for the folders it creates. */
int fs_mkdir_p(const char *path, mode_t mode, baton_err_t *err);

/* A file as stat(2) saw it: all of it changes when the file is rewritten, replaced (a rename
 * brings another inode), chmod-ed or renamed (ctime). For answers kept until the file changes. */
typedef struct fs_ident {
    dev_t dev;
    ino_t ino;
    off_t size;
    mode_t mode;
    struct timespec mtime, ctime;
} fs_ident_t;
fs_ident_t fs_ident(const struct stat *sb);
bool fs_ident_equal(const fs_ident_t *a, const fs_ident_t *b);

#endif
