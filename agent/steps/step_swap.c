/* step_swap: put the new version in place of the old one, atomically.
 *
 * A single binary: the new file is written beside the target (same folder, so same
 * filesystem), given the target's mode and owner, fsynced, then rename()d over it: at every
 * instant the target path holds either the whole old binary or the whole new one. Before that
 * the old binary is kept as TARGET.baton-prev (a hard link: no copy, no window) for the
 * rollback.
 *
 * A release (release.h): unpacked by the pre-flight already; the swap switches `current` to it
 * (a link renamed over the old one) and gives the unit the release's drop-in, or takes the old
 * one's away (then a daemon-reload). A rollback switches back the same way. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "digest.h"
#include "release.h"
#include "step.h"
#include "unit.h"
#include "fsutil.h"

/* Copies src to dst (created anew, never through a link) with like's owner and mode, and checks
 * on the way that what it copied is the file with the digest `sha256`: the copy reads every
 * byte anyway, and the staged file may have changed since the pre-flight hashed it. */
static int copy_file(const char *src, const char *dst, const struct stat *like, const char *sha256,
                     fs_ident_t *ret_src, baton_err_t *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return baton_err_set(err, -errno, "open %s: %s", src, strerror(errno));
    struct stat in_sb;
    if (fstat(in, &in_sb) < 0) {
        int e = errno;
        close(in);
        return baton_err_set(err, -e, "stat %s: %s", src, strerror(e));
    }
    *ret_src = fs_ident(&in_sb);
    int out = fs_create_new(dst, O_WRONLY, 0700, err);
    if (out < 0) {
        close(in);
        return out;
    }
    digest_t digest;
    digest_init(&digest);
    char buf[128 * 1024];
    int r = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = baton_err_set(err, -errno, "read %s: %s", src, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        digest_update(&digest, buf, (size_t)n);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                r = baton_err_set(err, -errno, "write %s: %s", dst, strerror(errno));
                goto done;
            }
            off += w;
        }
    }
done:
    if (r == 0) {
        char got[DIGEST_HEX_LEN + 1];
        digest_final_hex(&digest, got);
        if (strcmp(got, sha256))
            r = baton_err_set(err, -EBADMSG,
                              "%s changed since it was verified: sha256 %.12s…, expected %.12s…",
                              src, got, sha256);
    }
    if (r == 0 &&
        (fchown(out, like->st_uid, like->st_gid) < 0 || fchmod(out, like->st_mode & 07777) < 0))
        r = baton_err_set(err, -errno, "chown/chmod %s: %s", dst, strerror(errno));
    if (r == 0 && fsync(out) < 0)
        r = baton_err_set(err, -errno, "fsync %s: %s", dst, strerror(errno));
    close(in);
    close(out);
    if (r < 0)
        unlink(dst);
    return r;
}

/* Installs `src`, which must have the digest `sha256`, at `target` with target's current mode
 * and owner. */
static int install_over(const char *src, const char *sha256, const char *target, baton_err_t *err)
{
    struct stat sb;
    char tmp[PATH_MAX + 16];
    if (stat(target, &sb) < 0)
        return baton_err_set(err, -errno, "stat %s: %s", target, strerror(errno));
    snprintf(tmp, sizeof(tmp), "%s.baton-new", target);
    fs_ident_t original;
    int r = copy_file(src, tmp, &sb, sha256, &original, err);
    if (r < 0)
        return r;
    if (rename(tmp, target) < 0) {
        r = baton_err_set(err, -errno, "rename %s -> %s: %s", tmp, target, strerror(errno));
        unlink(tmp);
        return r;
    }
    /* The same bytes as the file the pre-flight asked: the start's schema check and the
     * verify's version need not run them again (after the rename: it changes the ctime). An
     * original changed while it was read would have failed its digest above. */
    if (stat(target, &sb) == 0) {
        fs_ident_t copy = fs_ident(&sb);
        command_remember_copy(target, &original, &copy);
    }
    return fs_fsync_parent(target, err);
}

static void prev_path(const svc_config_t *svc, char *buf, size_t len)
{
    snprintf(buf, len, "%s.baton-prev", svc->binary);
}

/* Release `name`'s drop-in for the unit; systemd reads it again when it changed, and always
 * when the step runs again after a crash (the drop-in may have been written, the reload not
 * done). */
static int unit_config_of(step_ctx_t *ctx, const char *name, bool again, baton_err_t *err)
{
    bool changed = false;
    int r = release_dropin(ctx->svc, name, &changed, err);
    if (r < 0 || (!changed && !again))
        return r;
    step_progress(ctx, "the unit's drop-in changed: daemon-reload");
    sd_bus *bus = NULL;
    if ((r = step_bus(ctx, &bus, err)) < 0)
        return r;
    return unit_daemon_reload(bus, err);
}

static int swap_release(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    svc_state_t *st = ctx->st;
    char cur[RELEASE_NAME_MAX + 1] = "", path[PATH_MAX], hex[DIGEST_HEX_LEN + 1];
    int r = release_current(svc, cur, sizeof(cur), err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (r == 0 && !strcmp(cur, st->target_release)) { /* switched before a crash */
        if ((r = release_settle(svc, st->previous_release, err)) < 0 ||
            (r = unit_config_of(ctx, st->target_release, true, err)) < 0)
            return r;
        st->swapped = true;
        return 0;
    }
    if (r == -ENOENT) {
        /* Only a crash between taking an old install over and linking the new release leaves
         * no `current`: the old install is then the previous release already. */
        struct stat sb;
        if ((r = release_path(svc, st->previous_release, path, sizeof(path), err)) < 0)
            return r;
        if (stat(path, &sb) < 0)
            return baton_err_set(err, -ENOENT, "%s/current is gone, and no release %s to return to",
                                 svc->release_dir, st->previous_release);
    } else {
        /* What runs is what the pre-flight found: the same release (a folder of its own for
         * an install being taken over: its release does not exist yet), the same binary. */
        struct stat sb;
        if ((r = release_path(svc, st->previous_release, path, sizeof(path), err)) < 0)
            return r;
        bool adopting = lstat(path, &sb) < 0;
        if (strcmp(cur, adopting ? "" : st->previous_release))
            return baton_err_set(err, -EBUSY,
                                 "%s/current names %s since preflight, not %s: someone else is "
                                 "installing",
                                 svc->release_dir, *cur ? cur : "a folder", st->previous_release);
        if ((r = digest_file(svc->binary, hex, NULL, err)) < 0)
            return r;
        if (strcmp(hex, st->previous_sha256))
            return baton_err_set(err, -EBUSY,
                                 "%s changed since preflight (sha256 %.12s…): someone else is "
                                 "installing",
                                 svc->binary, hex);
    }
    step_progress(ctx, "switching %s/current to release %s", svc->release_dir, st->target_release);
    if ((r = release_switch(svc, st->target_release, st->previous_release, err)) < 0 ||
        (r = unit_config_of(ctx, st->target_release, false, err)) < 0)
        return r;
    st->swapped = true;
    return 0;
}

static int swap_back_release(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    svc_state_t *st = ctx->st;
    char cur[RELEASE_NAME_MAX + 1] = "";
    int r = release_current(svc, cur, sizeof(cur), err);
    if (r < 0 && r != -ENOENT)
        return r;
    /* Still the old install's own folder (never taken over), or back already. */
    bool back = r == 0 && (!*cur || !strcmp(cur, st->previous_release));
    if (!back) {
        step_progress(ctx, "switching %s/current back to release %s", svc->release_dir,
                      st->previous_release);
        if ((r = release_switch(svc, st->previous_release, NULL, err)) < 0)
            return r;
    }
    if (*cur || !back) {
        if ((r = unit_config_of(ctx, st->previous_release, back, err)) < 0)
            return r;
    }
    st->swapped = false;
    return 0;
}

int swap_new_binary(step_ctx_t *ctx, char *buf, size_t len, baton_err_t *err)
{
    const svc_state_t *st = ctx->st;
    if (*st->target_release)
        return release_binary(ctx->svc, st->target_release, buf, len, err);
    return staged_path(ctx->cfg, ctx->svc->name, st->target_sha256, buf, len, err);
}

int swap_old_binary(step_ctx_t *ctx, char *buf, size_t len, baton_err_t *err)
{
    const svc_state_t *st = ctx->st;
    if (!st->swapped)
        snprintf(buf, len, "%s", ctx->svc->binary);
    else if (*st->target_release)
        return release_binary(ctx->svc, st->previous_release, buf, len, err);
    else
        snprintf(buf, len, "%s.baton-prev", ctx->svc->binary);
    return 0;
}

int step_swap(step_ctx_t *ctx, baton_err_t *err)
{
    if (*ctx->st->target_release)
        return swap_release(ctx, err);
    const svc_config_t *svc = ctx->svc;
    svc_state_t *st = ctx->st;
    char staged[PATH_MAX], prev[PATH_MAX + 16], tmp[PATH_MAX + 32], hex[DIGEST_HEX_LEN + 1];
    int r = staged_path(ctx->cfg, svc->name, st->target_sha256, staged, sizeof(staged), err);
    if (r < 0 || (r = digest_file(svc->binary, hex, NULL, err)) < 0)
        return r;
    if (!strcmp(hex, st->target_sha256)) { /* done before a crash: nothing left to do */
        st->swapped = true;
        return 0;
    }
    /* Nobody but root may plant a file (a link to /etc/shadow, say) where the agent creates
     * the new binary and the kept one. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", svc->binary);
    if ((r = fs_dir_root_only(dirname(dir), err)) < 0)
        return r;
    if (strcmp(hex, st->previous_sha256))
        return baton_err_set(err, -EBUSY,
                             "%s changed since preflight (sha256 %.12s…): "
                             "someone else is installing",
                             svc->binary, hex);
    /* Keep the old binary: link it under a temporary name, then rename over any older one. */
    prev_path(svc, prev, sizeof(prev));
    snprintf(tmp, sizeof(tmp), "%s.tmp", prev);
    unlink(tmp);
    if (link(svc->binary, tmp) < 0)
        return baton_err_set(err, -errno, "link %s -> %s: %s", svc->binary, tmp, strerror(errno));
    if (rename(tmp, prev) < 0) {
        r = baton_err_set(err, -errno, "rename %s -> %s: %s", tmp, prev, strerror(errno));
        unlink(tmp);
        return r;
    }
    step_progress(ctx, "installing %s", svc->binary);
    if ((r = install_over(staged, st->target_sha256, svc->binary, err)) < 0)
        return r;
    st->swapped = true;
    return 0;
}

int swap_back(step_ctx_t *ctx, baton_err_t *err)
{
    if (*ctx->st->target_release)
        return swap_back_release(ctx, err);
    const svc_config_t *svc = ctx->svc;
    svc_state_t *st = ctx->st;
    char prev[PATH_MAX + 16], hex[DIGEST_HEX_LEN + 1];
    int r = digest_file(svc->binary, hex, NULL, err);
    if (r < 0)
        return r;
    if (!strcmp(hex, st->previous_sha256)) { /* already back */
        st->swapped = false;
        return 0;
    }
    prev_path(svc, prev, sizeof(prev));
    if ((r = digest_file(prev, hex, NULL, err)) < 0)
        return r;
    if (strcmp(hex, st->previous_sha256))
        return baton_err_set(err, -EBADMSG,
                             "%s has sha256 %.12s…, not the previous binary's "
                             "%.12s…",
                             prev, hex, st->previous_sha256);
    step_progress(ctx, "putting back the previous %s", svc->binary);
    if ((r = install_over(prev, st->previous_sha256, svc->binary, err)) < 0)
        return r;
    st->swapped = false;
    return 0;
}
