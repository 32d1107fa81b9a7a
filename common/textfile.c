/* textfile: see textfile.h. */
#include "textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void textfile_label(FILE *f, const char *key, const char *value, bool first)
{
    fprintf(f, "%s%s=\"", first ? "" : ",", key);
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            fputc('\\', f);
        if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* The folder is opened once per write without following a link (O_NOFOLLOW) and must be one
 * only its writer (or root) can write in (it may sit in a folder another user owns, as Debian's
 * /var/lib/prometheus/node-exporter does: swapped for a link, it is refused; swapped for a folder
 * of that user's, it is refused too); the file is then made and renamed inside that very folder
 * (openat, renameat), so no name is looked up again through a path someone else may change. */
int textfile_write(const char *dir, const char *name, const char *text, const char *what,
                   baton_err_t *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return baton_err_set(err, -errno, "%s %s: %s", what, dir, strerror(errno));
    struct stat sb;
    int r = 0;
    char tmp[NAME_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    if (fstat(dfd, &sb) < 0) {
        r = baton_err_set(err, -errno, "%s %s: %s", what, dir, strerror(errno));
        goto out;
    }
    if (sb.st_uid != 0 && sb.st_uid != geteuid()) {
        r = baton_err_set(err, -EPERM,
                          "%s %s: not written: it belongs to uid %u, neither root nor this user "
                          "(uid %u)",
                          what, dir, (unsigned)sb.st_uid, (unsigned)geteuid());
        goto out;
    }
    if (sb.st_mode & 0022) {
        r = baton_err_set(err, -EPERM,
                          "%s %s: not written: others may write in it (it is owned by uid %u, "
                          "mode %04o)",
                          what, dir, (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777));
        goto out;
    }
    (void)unlinkat(dfd, tmp, 0); /* a leftover of a crash: the name, never what it points to */
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = baton_err_set(err, -errno, "%s %s/%s: %s", what, dir, tmp, strerror(errno));
        goto out;
    }
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = baton_err_set(err, n < 0 ? -errno : -ENOSPC, "%s %s/%s: %s", what, dir, tmp,
                              n < 0 ? strerror(errno) : "short write");
            break;
        }
        done += (size_t)n;
    }
    if (fchmod(fd, 0644) < 0 && r == 0) /* whatever the umask: node_exporter must read it */
        r = baton_err_set(err, -errno, "%s %s/%s: %s", what, dir, tmp, strerror(errno));
    close(fd);
    if (r == 0 && renameat(dfd, tmp, dfd, name) < 0)
        r = baton_err_set(err, -errno, "%s %s/%s: %s", what, dir, name, strerror(errno));
    if (r < 0)
        (void)unlinkat(dfd, tmp, 0);
out:
    close(dfd);
    return r;
}
