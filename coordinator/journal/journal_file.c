/* journal_file: journals as files, STATE_DIR/rollouts/ROLLOUT_ID.jsonl: one line per event,
 * each written with one write(2) (O_APPEND: never interleaved) and fdatasync'ed. The driving
 * coordinator holds flock(LOCK_EX) on the file. Requests to it (continue, abort) are empty files
 * beside the journal. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "journal_backend.h"
#include "names.h"

#define JOURNAL_LINE_MAX (1024 * 1024)

static int file_path(journal_store_t *s, const char *id, const char *ext, char **ret,
                     baton_err_t *err)
{
    if (!rollout_id_valid(id))
        return baton_err_set(err, -EINVAL, "'%s' is not a rollout id", id);
    if (asprintf(ret, "%s/rollouts/%s.%s", s->dir, id, ext) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

/* A coordinator that crashed, or whose disk filled, mid-line left a last line without its
 * newline: cut back to the last whole line before appending, or the next event would be glued
 * to it and the journal unreadable from there on. Under the lock: nobody else appends. */
static int cut_torn_tail(journal_t *j, baton_err_t *err)
{
    struct stat sb;
    if (fstat(j->fd, &sb) < 0)
        return baton_err_set(err, -errno, "stat %s: %s", j->path, strerror(errno));
    off_t end = sb.st_size, keep = end;
    char buf[4096];
    while (keep > 0) {
        off_t from = keep > (off_t)sizeof(buf) ? keep - (off_t)sizeof(buf) : 0;
        ssize_t n = pread(j->fd, buf, (size_t)(keep - from), from);
        if (n <= 0)
            return baton_err_set(err, n < 0 ? -errno : -EIO, "read %s: %s", j->path,
                                 n < 0 ? strerror(errno) : "short read");
        ssize_t i = n;
        while (i > 0 && buf[i - 1] != '\n')
            i--;
        if (i > 0) {
            keep = from + i;
            break;
        }
        keep = from;
    }
    if (keep == end)
        return 0;
    if (ftruncate(j->fd, keep) < 0 || fdatasync(j->fd) < 0)
        return baton_err_set(err, -errno, "cut the torn last line of %s: %s", j->path,
                             strerror(errno));
    fprintf(stderr,
            "baton: journal %s: its last line was torn (%lld bytes without a newline, "
            "a crash or a full disk); cut\n",
            j->path, (long long)(end - keep));
    return 0;
}

static int file_open(journal_store_t *s, const char *id, journal_t *j, baton_err_t *err)
{
    char *dir = NULL;
    if (asprintf(&dir, "%s/rollouts", s->dir) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    int r = fs_mkdir_p(dir, 0700, err);
    free(dir);
    if (r < 0 || (r = file_path(s, id, "jsonl", &j->path, err)) < 0)
        return r;
    j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0)
        return baton_err_set(err, -errno, "open %s: %s", j->path, strerror(errno));
    if (flock(j->fd, LOCK_EX | LOCK_NB) < 0)
        return errno == EWOULDBLOCK
                   ? baton_err_set(err, -EBUSY,
                                   "rollout %s is driven by another coordinator (%s is locked)", id,
                                   j->path)
                   : baton_err_set(err, -errno, "lock %s: %s", j->path, strerror(errno));
    r = cut_torn_tail(j, err);
    return r < 0 ? r : fs_fsync_parent(j->path, err);
}

static int file_append(journal_t *j, const char *line, baton_err_t *err)
{
    size_t len = strlen(line);
    char *buf = malloc(len + 1);
    if (!buf)
        return baton_err_set(err, -ENOMEM, "out of memory");
    memcpy(buf, line, len);
    buf[len] = '\n';
    /* One write(2) per line: with O_APPEND a line is never interleaved or torn by another. A
     * full disk may still take part of it: then the part is cut off again, so that the journal
     * ends on its last whole line (the reader never sees half an event). */
    struct stat sb;
    off_t before = fstat(j->fd, &sb) == 0 ? sb.st_size : -1;
    ssize_t n = write(j->fd, buf, len + 1);
    int e = errno;
    free(buf);
    if (n != (ssize_t)(len + 1)) {
        bool cut = n > 0 && before >= 0 && ftruncate(j->fd, before) == 0;
        return baton_err_set(
            err, n < 0 ? -e : -ENOSPC, "write %s: %s%s", j->path,
            n < 0 ? strerror(e) : "short write (the disk is full?)",
            n > 0 ? (cut ? "; the partial line was cut" : "; a partial line is left") : "");
    }
    if (fdatasync(j->fd) < 0)
        return baton_err_set(err, -errno, "fsync %s: %s", j->path, strerror(errno));
    return 0;
}

static void file_close(journal_t *j)
{
    if (j->fd >= 0)
        close(j->fd); /* releases the lock */
    free(j->path);
}

static int file_each_line(journal_store_t *s, const char *id, journal_line_fn fn, void *userdata,
                          baton_err_t *err)
{
    char *path = NULL, *line = NULL;
    size_t cap = 0;
    int r = file_path(s, id, "jsonl", &path, err);
    if (r < 0)
        return r;
    FILE *f = fopen(path, "re");
    if (!f) {
        r = baton_err_set(err, -errno, "no journal of rollout %s (%s: %s)", id, path,
                          strerror(errno));
        free(path);
        return r;
    }
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0)
        fn(line, n >= JOURNAL_LINE_MAX ? 0 : (size_t)n, userdata);
    fclose(f);
    free(line);
    free(path);
    return 0;
}

static int file_probe_lock(journal_store_t *s, const char *id, baton_err_t *err)
{
    char *path = NULL;
    int r = file_path(s, id, "jsonl", &path, err);
    if (r < 0)
        return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        r = baton_err_set(err, -errno, "no journal of rollout %s (%s: %s)", id, path,
                          strerror(errno));
    else if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        r = errno == EWOULDBLOCK ? -EBUSY
                                 : baton_err_set(err, -errno, "lock %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd); /* releases a lock taken here */
    free(path);
    return r;
}

static int file_request(journal_store_t *s, const char *id, const char *what, baton_err_t *err)
{
    char *p = NULL;
    int r = file_path(s, id, what, &p, err);
    if (r < 0)
        return r;
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        r = baton_err_set(err, -errno, "create %s: %s", p, strerror(errno));
    else
        close(fd);
    free(p);
    return r;
}

static bool file_take(journal_store_t *s, const char *id, const char *what)
{
    char *p = NULL;
    baton_err_t err = {0};
    bool there = file_path(s, id, what, &p, &err) == 0 && unlink(p) == 0;
    free(p);
    return there;
}

/* Freezes: STATE_DIR/freezes/SERVICE.json. Put writes a temporary file whole (fsynced), then
 * link(2)s it to the name: the link fails when a freeze is there, so two operators freezing at
 * once cannot overwrite each other, and a reader never sees half a record. */
#define FREEZE_MAX (64 * 1024)

static int freeze_path(journal_store_t *s, const char *service, const char *prefix, char **ret,
                       baton_err_t *err)
{
    if (asprintf(ret, "%s/freezes/%s%s.json", s->dir, prefix, service) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

static int file_freeze_get(journal_store_t *s, const char *service, char **ret_record,
                           baton_err_t *err)
{
    char *p = NULL;
    int r = freeze_path(s, service, "", &p, err);
    if (r == 0 && (r = fs_read_all(p, FREEZE_MAX, ret_record, NULL, err)) == -ENOENT)
        *ret_record = NULL;
    free(p);
    return r;
}

static int file_freeze_put(journal_store_t *s, const char *service, const char *record,
                           char **ret_there, baton_err_t *err)
{
    char *dir = NULL, *p = NULL, *tmp = NULL, tag[32];
    snprintf(tag, sizeof(tag), ".%ld.", (long)getpid());
    int r = freeze_path(s, service, "", &p, err);
    if (r < 0 || (r = freeze_path(s, service, tag, &tmp, err)) < 0)
        goto out;
    if (asprintf(&dir, "%s/freezes", s->dir) < 0) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if ((r = fs_mkdir_p(dir, 0700, err)) < 0)
        goto out;
    int fd = fs_create_new(tmp, O_WRONLY, 0600, err);
    if (fd < 0) {
        r = fd;
        goto out;
    }
    size_t len = strlen(record);
    ssize_t n = write(fd, record, len);
    if (n != (ssize_t)len || fsync(fd) < 0) {
        r = baton_err_set(err, n < 0 || n == (ssize_t)len ? -errno : -ENOSPC, "write %s: %s", tmp,
                          n < 0 || n == (ssize_t)len ? strerror(errno) : "short write");
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (link(tmp, p) < 0) {
        r = errno == EEXIST ? -EEXIST
                            : baton_err_set(err, -errno, "link %s: %s", p, strerror(errno));
        unlink(tmp);
        if (r == -EEXIST && file_freeze_get(s, service, ret_there, err) < 0)
            *ret_there = NULL; /* gone again meanwhile: said as frozen by someone else */
        goto out;
    }
    unlink(tmp);
    r = fs_fsync_parent(p, err);
out:
    free(dir);
    free(p);
    free(tmp);
    return r;
}

static int file_freeze_del(journal_store_t *s, const char *service, char **ret_there,
                           baton_err_t *err)
{
    /* Taken out of place first (a name of this process's own), then read and removed: an
     * unfreeze racing another unfreeze and a new freeze removes the record it reports, never
     * the new one. What cannot be read (too large, damaged) is removed all the same: unfreeze
     * is the way out of a damaged record; *ret_there stays NULL then. */
    char *p = NULL, *taken = NULL, tag[48];
    snprintf(tag, sizeof(tag), ".unfreeze.%ld.", (long)getpid());
    int r = freeze_path(s, service, "", &p, err);
    if (r < 0 || (r = freeze_path(s, service, tag, &taken, err)) < 0)
        goto out;
    if (rename(p, taken) < 0) {
        r = errno == ENOENT ? -ENOENT
                            : baton_err_set(err, -errno, "rename %s: %s", p, strerror(errno));
        goto out;
    }
    if (fs_read_all(taken, FREEZE_MAX, ret_there, NULL, err) < 0)
        *ret_there = NULL;
    baton_err_clear(err);
    if (unlink(taken) < 0)
        r = baton_err_set(err, -errno, "unlink %s: %s", taken, strerror(errno));
    else
        r = fs_fsync_parent(p, err);
out:
    free(p);
    free(taken);
    return r;
}

struct listed {
    char *id;
    struct timespec mtime;
};

static int newest_first(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? 1 : -1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? 1 : -1;
    return strcmp(y->id, x->id);
}

static int file_list(journal_store_t *s, char ***ret_ids, size_t *ret_n, baton_err_t *err)
{
    char *dir = NULL;
    if (asprintf(&dir, "%s/rollouts", s->dir) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    DIR *d = opendir(dir);
    if (!d) {
        int r = errno == ENOENT ? 0 : baton_err_set(err, -errno, "%s: %s", dir, strerror(errno));
        free(dir);
        return r;
    }
    struct listed *items = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 7 || strcmp(de->d_name + len - 6, ".jsonl"))
            continue;
        char *id = strndup(de->d_name, len - 6);
        struct stat sb;
        if (!id || !rollout_id_valid(id) || fstatat(dirfd(d), de->d_name, &sb, 0) < 0) {
            free(id);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct listed *bigger = realloc(items, ncap * sizeof(*items));
            if (!bigger) {
                free(id);
                r = baton_err_set(err, -ENOMEM, "out of memory");
                break;
            }
            items = bigger;
            cap = ncap;
        }
        items[n++] = (struct listed){.id = id, .mtime = sb.st_mtim};
    }
    closedir(d);
    free(dir);
    char **ids = r == 0 && n ? calloc(n, sizeof(char *)) : NULL;
    if (r == 0 && n && !ids)
        r = baton_err_set(err, -ENOMEM, "out of memory");
    if (ids)
        qsort(items, n, sizeof(*items), newest_first);
    for (size_t i = 0; i < n; i++) {
        if (ids)
            ids[i] = items[i].id;
        else
            free(items[i].id);
    }
    free(items);
    *ret_ids = ids;
    *ret_n = ids ? n : 0;
    return r;
}

const struct journal_backend journal_file_backend = {
    .open = file_open,
    .append = file_append,
    .close = file_close,
    .each_line = file_each_line,
    .list = file_list,
    .probe_lock = file_probe_lock,
    .request = file_request,
    .take = file_take,
    .freeze_put = file_freeze_put,
    .freeze_get = file_freeze_get,
    .freeze_del = file_freeze_del,
};
