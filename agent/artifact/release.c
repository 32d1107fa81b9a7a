/* release: see release.h. */
#include "release.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "artifact.h"
#include "fsutil.h"
#include "names.h"

#define DROPIN_NAME "50-baton-release.conf"
#define SYSTEMD_ETC "/etc/systemd/system"

bool release_is_archive_fd(int fd)
{
    unsigned char h[512];
    ssize_t n;
    do
        n = pread(fd, h, sizeof(h), 0);
    while (n < 0 && errno == EINTR);
    if (n < 6)
        return false;
    return (h[0] == 0x1f && h[1] == 0x8b) || /* gzip */
           !memcmp(h,
                   "\xfd"
                   "7zXZ\0",
                   6) ||                               /* xz */
           !memcmp(h, "BZh", 3) ||                     /* bzip2 */
           !memcmp(h, "\x28\xb5\x2f\xfd", 4) ||        /* zstd */
           (n >= 263 && !memcmp(h + 257, "ustar", 5)); /* tar */
}

int release_name(const char *version, const char *sha256, char *buf, size_t len, baton_err_t *err)
{
    if (!version_name_valid(version))
        return baton_err_set(err, -EINVAL, "version '%s' cannot name a release", version);
    if (strlen(sha256) < 12)
        return baton_err_set(err, -EINVAL, "a release needs the artifact's sha256");
    if (snprintf(buf, len, "%s-%.12s", version, sha256) >= (int)len)
        return baton_err_set(err, -ENAMETOOLONG, "release name too long");
    return 0;
}

int release_path(const svc_config_t *svc, const char *name, char *buf, size_t len, baton_err_t *err)
{
    if (snprintf(buf, len, "%s/releases/%s", svc->release_dir, name) >= (int)len)
        return baton_err_set(err, -ENAMETOOLONG, "release path too long");
    return 0;
}

int release_binary(const svc_config_t *svc, const char *name, char *buf, size_t len,
                   baton_err_t *err)
{
    if (snprintf(buf, len, "%s/releases/%s/%s", svc->release_dir, name, svc->release_rel) >=
        (int)len)
        return baton_err_set(err, -ENAMETOOLONG, "release path too long");
    return 0;
}

/* rm -r of a folder the agent made, never following a link (FTW_PHYS). */
static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) < 0)
        return errno == ENOENT ? 0 : -errno;
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

/* A member's name, cleaned: "./" and empty components dropped. NULL `why` when good; the
 * empty name (the archive's "./") leaves buf "". */
static const char *clean_member(const char *name, char *buf, size_t len)
{
    if (!name || strlen(name) > RELEASE_MEMBER_PATH_MAX)
        return "its name is too long";
    if (name[0] == '/')
        return "its name is an absolute path";
    size_t o = 0;
    buf[0] = '\0';
    for (const char *p = name; *p;) {
        const char *e = strchrnul(p, '/');
        size_t n = (size_t)(e - p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "its name goes up a folder (..)";
        if (n && !(n == 1 && p[0] == '.')) {
            if (o + n + 2 > len)
                return "its name is too long";
            if (o)
                buf[o++] = '/';
            memcpy(buf + o, p, n);
            o += n;
            buf[o] = '\0';
        }
        p = *e ? e + 1 : e;
    }
    return NULL;
}

/* A link stays inside the release when its target is relative and, read as leading ".."s then
 * names, never climbs above the release's root from the link's folder. (No ".." after a name:
 * a link among the names could otherwise make the kernel's reading differ from this one.) */
static const char *link_inside(const char *member, const char *target)
{
    if (!target || !*target)
        return "it is a link to nothing";
    if (target[0] == '/')
        return "it is a link to an absolute path";
    long depth = 0;
    for (const char *p = member; (p = strchr(p, '/')); p++)
        depth++;
    bool names = false;
    for (const char *p = target; *p;) {
        const char *e = strchrnul(p, '/');
        size_t n = (size_t)(e - p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (names)
                return "it is a link whose target goes up after a name";
            if (--depth < 0)
                return "it is a link pointing out of the release";
        } else if (n && !(n == 1 && p[0] == '.')) {
            names = true;
        }
        p = *e ? e + 1 : e;
    }
    return NULL;
}

/* Opens the folder that holds `rel` inside root_fd, creating missing folders, never following
 * a link; *ret_base is rel's last component. */
static int open_parent(int root_fd, char *rel, const char **ret_base)
{
    int fd = dup(root_fd);
    if (fd < 0)
        return -errno;
    char *p = rel;
    for (char *slash; (slash = strchr(p, '/')); p = slash + 1) {
        *slash = '\0';
        if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST) {
            int r = -errno;
            *slash = '/';
            close(fd);
            return r;
        }
        int next = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        *slash = '/';
        close(fd);
        if (next < 0)
            return -saved;
        fd = next;
    }
    *ret_base = p;
    return fd;
}

static int copy_data(struct archive *a, int out, uint64_t *total, uint64_t declared,
                     const char *member, baton_err_t *err)
{
    const void *buf;
    size_t size;
    la_int64_t offset;
    for (;;) {
        int r = archive_read_data_block(a, &buf, &size, &offset);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return baton_err_set(err, -EBADMSG, "%s: %s", member, archive_error_string(a));
        if ((*total += size) > RELEASE_BYTES_MAX)
            return baton_err_set(err, -EFBIG, "%s: the release unpacks to more than %llu MiB",
                                 member, (unsigned long long)(RELEASE_BYTES_MAX >> 20));
        /* A block beyond the member's own size (a sparse entry's offsets) would make a huge
         * file of a tiny archive. */
        if (offset < 0 || (uint64_t)offset + size > declared)
            return baton_err_set(err, -EFBIG, "member '%s' refused: data beyond its size", member);
        if (lseek(out, offset, SEEK_SET) < 0)
            return baton_err_set(err, -errno, "%s: %s", member, strerror(errno));
        for (size_t done = 0; done < size;) {
            ssize_t w = write(out, (const char *)buf + done, size - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return baton_err_set(err, -errno, "%s: write: %s", member, strerror(errno));
            done += (size_t)w;
        }
    }
}

/* One member into root_fd: checked, then created anew. */
static int unpack_member(struct archive *a, struct archive_entry *e, int root_fd, uint64_t *total,
                         baton_err_t *err)
{
    const char *name = archive_entry_pathname(e);
    char rel[RELEASE_MEMBER_PATH_MAX + 2];
    const char *why = clean_member(name, rel, sizeof(rel));
    mode_t type = archive_entry_filetype(e);
    mode_t perm = archive_entry_perm(e);
    if (!why && archive_entry_hardlink(e))
        why = "it is a hard link";
    if (!why && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        why = "it is a device, FIFO or socket, not a file, folder or link";
    if (!why && (perm & 07000))
        why = "it has the setuid, setgid or sticky bit";
    if (!why && type == AE_IFLNK)
        why = link_inside(rel, archive_entry_symlink(e));
    if (!why && type == AE_IFREG && archive_entry_size_is_set(e) &&
        (uint64_t)archive_entry_size(e) > RELEASE_BYTES_MAX)
        why = "it is larger than a release may be";
    if (why)
        return baton_err_set(err, -EPERM, "member '%s' refused: %s", name ? name : "", why);
    if (!rel[0])
        return 0; /* "./" itself */
    /* Nobody but root writes a release: group and other write bits are dropped. */
    perm &= 0755;
    const char *base = NULL;
    int dir = open_parent(root_fd, rel, &base);
    if (dir < 0)
        return baton_err_set(err, dir, "member '%s': %s%s", name, strerror(-dir),
                             dir == -ELOOP || dir == -ENOTDIR ? " (its folder is a link or a file)"
                                                              : "");
    int r = 0;
    if (type == AE_IFDIR) {
        if (mkdirat(dir, base, perm | 0700) < 0 && errno != EEXIST)
            r = baton_err_set(err, -errno, "member '%s': %s", name, strerror(errno));
        struct stat sb;
        if (r == 0 && (fstatat(dir, base, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode)))
            r = baton_err_set(err, -EEXIST, "member '%s' refused: listed twice", name);
    } else if (type == AE_IFLNK) {
        if (symlinkat(archive_entry_symlink(e), dir, base) < 0)
            r = baton_err_set(err, -errno, "member '%s'%s: %s", name,
                              errno == EEXIST ? " refused: listed twice" : "", strerror(errno));
    } else {
        int out = openat(dir, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0) {
            r = baton_err_set(err, -errno, "member '%s'%s: %s", name,
                              errno == EEXIST ? " refused: listed twice" : "", strerror(errno));
        } else {
            uint64_t declared =
                archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : RELEASE_BYTES_MAX;
            r = copy_data(a, out, total, declared, name, err);
            if (r == 0 && fchmod(out, perm) < 0)
                r = baton_err_set(err, -errno, "member '%s': chmod: %s", name, strerror(errno));
            close(out);
        }
    }
    close(dir);
    return r;
}

static int unpack_into(const char *archive, const char *dir, baton_err_t *err)
{
    int root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root_fd < 0)
        return baton_err_set(err, -errno, "open %s: %s", dir, strerror(errno));
    struct archive *a = archive_read_new();
    if (!a) {
        close(root_fd);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    /* The four compressions libarchive has built in, nothing more: "all" would also run
     * external programs (lzop, lrzip, grzip) as root for a layer inside another. A filter
     * that is not built in (ARCHIVE_WARN: an external program) is refused. */
    int r = 0;
    if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
        archive_read_support_filter_xz(a) != ARCHIVE_OK ||
        archive_read_support_filter_bzip2(a) != ARCHIVE_OK ||
        archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
        archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_support_format_gnutar(a) != ARCHIVE_OK) {
        r = baton_err_set(err, -ENOTSUP, "libarchive here lacks a built-in decompressor: %s",
                          archive_error_string(a) ?: "?");
        goto out;
    }
    if (archive_read_open_filename(a, archive, 64 * 1024) != ARCHIVE_OK) {
        r = baton_err_set(err, -EBADMSG, "%s is no release archive: %s", archive,
                          archive_error_string(a));
        goto out;
    }
    /* One compression at most ("none" counts as one): a tar in gzip in xz is no release. */
    if (archive_filter_count(a) > 2) {
        r = baton_err_set(err, -EBADMSG, "%s is compressed twice (%s in %s)", archive,
                          archive_filter_name(a, 1) ?: "?", archive_filter_name(a, 0) ?: "?");
        goto out;
    }
    uint64_t total = 0;
    size_t members = 0;
    struct archive_entry *e;
    for (;;) {
        int h = archive_read_next_header(a, &e);
        if (h == ARCHIVE_EOF)
            break;
        if (h < ARCHIVE_WARN) {
            r = baton_err_set(err, -EBADMSG, "%s: %s", archive, archive_error_string(a));
            goto out;
        }
        if (++members > RELEASE_MEMBERS_MAX) {
            r = baton_err_set(err, -E2BIG, "%s has more than %d members", archive,
                              RELEASE_MEMBERS_MAX);
            goto out;
        }
        if ((r = unpack_member(a, e, root_fd, &total, err)) < 0)
            goto out;
    }
    /* Every file on disk before the release gets its name. */
    if (syncfs(root_fd) < 0)
        r = baton_err_set(err, -errno, "sync %s: %s", dir, strerror(errno));
out:
    archive_read_free(a);
    close(root_fd);
    return r;
}

/* RELEASE_DIR/releases, created when missing, root's only. */
static int releases_folder(const svc_config_t *svc, char *buf, size_t len, baton_err_t *err)
{
    if (snprintf(buf, len, "%s/releases", svc->release_dir) >= (int)len)
        return baton_err_set(err, -ENAMETOOLONG, "release path too long");
    int r = fs_mkdir_p(buf, 0755, err);
    return r < 0 ? r : fs_dir_root_only(buf, err);
}

int release_unpack(const svc_config_t *svc, const char *archive, const char *name, baton_err_t *err)
{
    char releases[PATH_MAX], final[PATH_MAX], tmp[PATH_MAX];
    int r = releases_folder(svc, releases, sizeof(releases), err);
    if (r < 0)
        return r;
    if (snprintf(final, sizeof(final), "%s/%s", releases, name) >= (int)sizeof(final) ||
        snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", releases, name) >= (int)sizeof(tmp))
        return baton_err_set(err, -ENAMETOOLONG, "release path too long");
    struct stat sb;
    if (lstat(final, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return baton_err_set(err, -EEXIST, "%s is there and is no folder", final);
        return 0; /* only ever made by the rename below: whole */
    }
    if ((r = remove_tree(tmp)) < 0) /* a crash's leftover */
        return baton_err_set(err, r, "remove %s: %s", tmp, strerror(-r));
    if (mkdir(tmp, 0755) < 0)
        return baton_err_set(err, -errno, "mkdir %s: %s", tmp, strerror(errno));
    r = unpack_into(archive, tmp, err);
    if (r == 0 && rename(tmp, final) < 0)
        r = baton_err_set(err, -errno, "rename %s -> %s: %s", tmp, final, strerror(errno));
    if (r == 0)
        return fs_fsync_parent(final, err);
    remove_tree(tmp);
    return r;
}

int release_prepare(const svc_config_t *svc, const char *staged, const char *version,
                    const char *sha256, char *ret_name, size_t name_len, char *ret_bin,
                    size_t bin_len, baton_err_t *err)
{
    int fd = open(staged, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return baton_err_set(err, -errno, "open %s: %s", staged, strerror(errno));
    bool archive = release_is_archive_fd(fd);
    close(fd);
    if (name_len)
        ret_name[0] = '\0';
    if (!svc->release_dir) {
        if (archive)
            return baton_err_set(err, -ENOEXEC,
                                 "the artifact is a release archive, but the agent's config gives "
                                 "%s no release_dir to unpack it in",
                                 svc->name);
        if (snprintf(ret_bin, bin_len, "%s", staged) >= (int)bin_len)
            return baton_err_set(err, -ENAMETOOLONG, "path too long");
        return artifact_check(staged, svc->artifact_scripts, err);
    }
    if (!archive)
        return baton_err_set(err, -ENOEXEC,
                             "%s takes whole releases (release_dir %s): the artifact is no release "
                             "archive (tar, compressed or not)",
                             svc->name, svc->release_dir);
    int r = release_name(version, sha256, ret_name, name_len, err);
    if (r < 0 || (r = release_unpack(svc, staged, ret_name, err)) < 0 ||
        (r = release_binary(svc, ret_name, ret_bin, bin_len, err)) < 0)
        return r;
    /* The binary it ships, at the path the unit runs it from. */
    struct stat sb;
    if (lstat(ret_bin, &sb) < 0 || !S_ISREG(sb.st_mode))
        return baton_err_set(err, -ENOENT, "release %s has no file %s (the agent's binary is %s)",
                             ret_name, svc->release_rel, svc->binary);
    return artifact_check(ret_bin, svc->artifact_scripts, err);
}

int release_adopt_name(const char *version, char *buf, size_t len, baton_err_t *err)
{
    if (!version_name_valid(version))
        return baton_err_set(err, -EINVAL, "version '%s' cannot name a release", version);
    if (snprintf(buf, len, "%s-adopted", version) >= (int)len)
        return baton_err_set(err, -ENAMETOOLONG, "release name too long");
    return 0;
}

int release_current(const svc_config_t *svc, char *buf, size_t len, baton_err_t *err)
{
    char cur[PATH_MAX], target[PATH_MAX];
    snprintf(cur, sizeof(cur), "%s/current", svc->release_dir);
    struct stat sb;
    if (lstat(cur, &sb) < 0)
        return errno == ENOENT ? -ENOENT
                               : baton_err_set(err, -errno, "%s: %s", cur, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        if (len)
            buf[0] = '\0';
        return 0;
    }
    ssize_t n = S_ISLNK(sb.st_mode) ? readlink(cur, target, sizeof(target) - 1) : -1;
    if (n < 0)
        return baton_err_set(err, -EINVAL, "%s is neither a link to a release nor a folder", cur);
    target[n] = '\0';
    const char *name = !strncmp(target, "releases/", 9) ? target + 9 : NULL;
    if (!name || !*name || strchr(name, '/') || name[0] == '.' || strlen(name) >= len)
        return baton_err_set(err, -EINVAL, "%s points to %s, not to one of releases/", cur, target);
    snprintf(buf, len, "%s", name);
    return 0;
}

int release_settle(const svc_config_t *svc, const char *adopt, baton_err_t *err)
{
    char releases[PATH_MAX], tmp[PATH_MAX], kept[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/.current.tmp", svc->release_dir) >= (int)sizeof(tmp))
        return baton_err_set(err, -ENAMETOOLONG, "release path too long");
    struct stat sb;
    if (lstat(tmp, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return 0;
    int r = releases_folder(svc, releases, sizeof(releases), err);
    if (r < 0)
        return r;
    if (!adopt || !*adopt ||
        snprintf(kept, sizeof(kept), "%s/%s", releases, adopt) >= (int)sizeof(kept))
        return baton_err_set(err, -EEXIST, "%s is an install taken over, and no name for it", tmp);
    if (lstat(kept, &sb) == 0)
        return baton_err_set(err, -EEXIST, "%s is an install taken over, but %s exists", tmp, kept);
    if (rename(tmp, kept) < 0)
        return baton_err_set(err, -errno, "rename %s -> %s: %s", tmp, kept, strerror(errno));
    if ((r = fs_fsync_parent(kept, err)) < 0)
        return r;
    return fs_fsync_parent(tmp, err);
}

int release_switch(const svc_config_t *svc, const char *name, const char *adopt, baton_err_t *err)
{
    char releases[PATH_MAX], cur[PATH_MAX], tmp[PATH_MAX], target[PATH_MAX], want[PATH_MAX];
    int r = releases_folder(svc, releases, sizeof(releases), err);
    if (r < 0)
        return r;
    if (snprintf(cur, sizeof(cur), "%s/current", svc->release_dir) >= (int)sizeof(cur) ||
        snprintf(tmp, sizeof(tmp), "%s/.current.tmp", svc->release_dir) >= (int)sizeof(tmp) ||
        snprintf(target, sizeof(target), "releases/%s", name) >= (int)sizeof(target) ||
        snprintf(want, sizeof(want), "%s/%s", releases, name) >= (int)sizeof(want))
        return baton_err_set(err, -ENAMETOOLONG, "release path too long");
    /* An adoption cut short left the old install at .current.tmp: its release first (when
     * switching back, the release asked for is that very one). */
    if ((r = release_settle(svc, adopt ? adopt : name, err)) < 0)
        return r;
    struct stat sb;
    if (stat(want, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return baton_err_set(err, -ENOENT, "release %s is not unpacked here", name);
    if (unlink(tmp) < 0 && errno != ENOENT)
        return baton_err_set(err, -errno, "unlink %s: %s", tmp, strerror(errno));
    if (symlink(target, tmp) < 0)
        return baton_err_set(err, -errno, "symlink %s: %s", tmp, strerror(errno));
    bool folder = lstat(cur, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (folder && !adopt) {
        unlink(tmp);
        return baton_err_set(err, -EEXIST, "%s is a folder, not a link to a release", cur);
    }
    if (folder) {
        /* An install from before releases, kept whole as a release of its own. Exchanged
         * with the new link in one step, so that `current` never goes missing; the folder,
         * now at .current.tmp, then gets its release name. */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, cur, RENAME_EXCHANGE) == 0) {
            if ((r = fs_fsync_parent(cur, err)) < 0)
                return r;
            return release_settle(svc, adopt, err);
        }
        if (errno != EINVAL && errno != ENOSYS && errno != EXDEV) {
            r = baton_err_set(err, -errno, "exchange %s and %s: %s", tmp, cur, strerror(errno));
            unlink(tmp);
            return r;
        }
        /* A filesystem without RENAME_EXCHANGE: moved, then linked (a crash in between
         * leaves no `current`, which the swap and rollback settle). */
        char kept[PATH_MAX];
        if (snprintf(kept, sizeof(kept), "%s/%s", releases, adopt) >= (int)sizeof(kept) ||
            rename(cur, kept) < 0) {
            r = baton_err_set(err, -errno, "rename %s -> %s/%s: %s", cur, releases, adopt,
                              strerror(errno));
            unlink(tmp);
            return r;
        }
        if ((r = fs_fsync_parent(kept, err)) < 0)
            return r;
    }
    if (rename(tmp, cur) < 0) {
        r = baton_err_set(err, -errno, "rename %s -> %s: %s", tmp, cur, strerror(errno));
        unlink(tmp);
        return r;
    }
    return fs_fsync_parent(cur, err);
}

/* Reads release `name`'s drop-in: 0 with *ret_data (the caller's), or with NULL when it has
 * none. Opened without following a link, at most RELEASE_DROPIN_MAX bytes. */
static int read_dropin(const svc_config_t *svc, const char *name, char **ret_data, size_t *ret_len,
                       baton_err_t *err)
{
    char path[PATH_MAX];
    *ret_data = NULL;
    if (snprintf(path, sizeof(path), "%s/releases/%s/" RELEASE_DROPIN_MEMBER, svc->release_dir,
                 name) >= (int)sizeof(path))
        return baton_err_set(err, -ENAMETOOLONG, "release path too long");
    struct stat sb;
    if (lstat(path, &sb) < 0)
        return errno == ENOENT ? 0 : baton_err_set(err, -errno, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return baton_err_set(err, -EINVAL, "%s is not a file", path);
    return fs_read_all(path, RELEASE_DROPIN_MAX, ret_data, ret_len, err);
}

int release_dropin(const svc_config_t *svc, const char *name, bool *ret_changed, baton_err_t *err)
{
    char dir[PATH_MAX], path[PATH_MAX];
    *ret_changed = false;
    if (snprintf(dir, sizeof(dir), SYSTEMD_ETC "/%s.d", svc->unit) >= (int)sizeof(dir) ||
        snprintf(path, sizeof(path), "%s/" DROPIN_NAME, dir) >= (int)sizeof(path))
        return baton_err_set(err, -ENAMETOOLONG, "drop-in path too long");
    char *want = NULL, *have = NULL;
    size_t want_len = 0, have_len = 0;
    int r = read_dropin(svc, name, &want, &want_len, err);
    if (r < 0)
        return r;
    baton_err_t herr = {0};
    bool had = fs_read_all(path, RELEASE_DROPIN_MAX, &have, &have_len, &herr) == 0;
    if (want && had && want_len == have_len && !memcmp(want, have, want_len)) {
        r = 0;
    } else if (want) {
        if ((r = fs_mkdir_p(dir, 0755, err)) == 0 &&
            (r = fs_write_atomic(path, want, want_len, 0644, err)) == 0)
            *ret_changed = true;
    } else if (had || herr.code != -ENOENT) {
        if (unlink(path) < 0 && errno != ENOENT)
            r = baton_err_set(err, -errno, "unlink %s: %s", path, strerror(errno));
        else if ((r = fs_fsync_parent(path, err)) == 0)
            *ret_changed = true;
    }
    free(want);
    free(have);
    return r;
}

struct aged {
    char name[RELEASE_NAME_MAX + 16];
    struct timespec t;
};

static int newest_first(const void *a, const void *b)
{
    const struct aged *x = a, *y = b;
    if (x->t.tv_sec != y->t.tv_sec)
        return x->t.tv_sec < y->t.tv_sec ? 1 : -1;
    return x->t.tv_nsec < y->t.tv_nsec ? 1 : x->t.tv_nsec > y->t.tv_nsec ? -1 : 0;
}

/* Whether `name` ends with `suffix`. */
static bool ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && !strcmp(name + n - k, suffix);
}

/* Removes releases/NAME: first renamed out of sight (.NAME.del), so that a removal cut short
 * never leaves a partial release under its name, which a later rollout would take as whole. */
static int remove_release(const char *releases, const char *name, baton_err_t *err)
{
    char path[PATH_MAX], gone[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", releases, name) >= (int)sizeof(path) ||
        snprintf(gone, sizeof(gone), "%s/.%s.del", releases, name) >= (int)sizeof(gone))
        return baton_err_set(err, -ENAMETOOLONG, "release path too long");
    int r = remove_tree(gone);
    if (r == 0 && rename(path, gone) < 0)
        r = -errno;
    if (r == 0 && (r = fs_fsync_parent(gone, err)) == 0)
        r = remove_tree(gone);
    return r < 0 && !err->code ? baton_err_set(err, r, "remove %s: %s", path, strerror(-r)) : r;
}

int release_prune(const svc_config_t *svc, size_t keep, const char *also, baton_err_t *err)
{
    char releases[PATH_MAX], current[RELEASE_NAME_MAX + 16] = "";
    if (snprintf(releases, sizeof(releases), "%s/releases", svc->release_dir) >=
        (int)sizeof(releases))
        return baton_err_set(err, -ENAMETOOLONG, "release path too long");
    /* Never prune without knowing which one runs. */
    int r = release_current(svc, current, sizeof(current), err);
    if (r < 0)
        return r == -ENOENT ? baton_err_set(err, r, "%s/current is missing: nothing pruned",
                                            svc->release_dir)
                            : r;
    DIR *d = opendir(releases);
    if (!d)
        return errno == ENOENT ? 0
                               : baton_err_set(err, -errno, "%s: %s", releases, strerror(errno));
    struct aged *list = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        struct stat sb;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            strlen(e->d_name) > RELEASE_NAME_MAX + 8 ||
            fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))
            continue;
        /* Leftovers of an unpacking or a removal cut short go; a taken-over install stays
         * (it may hold what the service wrote there). */
        if (e->d_name[0] == '.') {
            char path[PATH_MAX];
            if ((ends_with(e->d_name, ".tmp") || ends_with(e->d_name, ".del")) &&
                snprintf(path, sizeof(path), "%s/%s", releases, e->d_name) < (int)sizeof(path))
                remove_tree(path);
            continue;
        }
        if (ends_with(e->d_name, "-adopted") || strlen(e->d_name) > RELEASE_NAME_MAX)
            continue;
        if (n == cap) {
            struct aged *grown = realloc(list, (cap = cap ? cap * 2 : 16) * sizeof(*list));
            if (!grown) {
                r = baton_err_set(err, -ENOMEM, "out of memory");
                goto out;
            }
            list = grown;
        }
        if (snprintf(list[n].name, sizeof(list[n].name), "%s", e->d_name) >=
            (int)sizeof(list[n].name))
            continue;
        list[n++].t = sb.st_ctim; /* the rename that completed it */
    }
    if (n)
        qsort(list, n, sizeof(*list), newest_first);
    for (size_t i = 0, kept = 0; i < n; i++) {
        bool pinned = !strcmp(list[i].name, current) || (also && !strcmp(list[i].name, also));
        if (pinned || kept < keep) {
            kept++;
            continue;
        }
        baton_err_t rerr = {0};
        if (remove_release(releases, list[i].name, &rerr) < 0 && r == 0)
            r = baton_err_set(err, rerr.code, "%s", rerr.msg);
    }
out:
    closedir(d);
    free(list);
    return r;
}
