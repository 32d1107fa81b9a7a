/* step_preflight: every check that can fail before anything is stopped. It changes nothing
 * live; it only records, in the state, where this rollout starts from. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "artifact.h"
#include "command.h"
#include "db.h"
#include "db_lock.h"
#include "step.h"
#include "fsutil.h"
#include "pgtools.h"
#include "semver.h"
#include "release.h"
#include "unit.h"

/* Room a dump needs beyond the database's size: custom-format dumps are compressed and
 * usually smaller, so size + 20% + 16 MiB errs on the safe side. */
uint64_t dump_room(uint64_t db_bytes)
{
    return db_bytes + db_bytes / 5 + 16ull * 1024 * 1024;
}

int raise_highest(svc_state_t *st, const char *version)
{
    semver_t a, b;
    bool higher = !*st->highest_version ||
                  (semver_parse(version, &a, NULL) == 0 &&
                   (semver_parse(st->highest_version, &b, NULL) < 0 || semver_compare(&a, &b) > 0));
    return higher ? svc_state_set(&st->highest_version, version) : 0;
}

/* A downgrade goes only to a version this node ran, whose bookkeeping ids it recorded: its
 * migrate takes down exactly the ids added since (with the newer binary), or restores the dump
 * taken at that version when the operator named it. */
int downgrade_check(step_ctx_t *ctx, svc_state_t *st, const Baton__Step *req, const char *current,
                    char **ids, size_t n_ids, baton_err_t *err)
{
    if (!req->downgrade && !*req->restore_dump)
        return 0;
    const version_record_t *rec = svc_state_history_find(st, req->version);
    if (!rec)
        return baton_err_set(err, -ENOENT,
                             "no history of %s %s here (it ran %s%s): a downgrade goes only to "
                             "a version this node ran",
                             ctx->svc->name, req->version, st->n_history ? "" : "nothing yet",
                             st->n_history ? st->history[0].version : "");
    if (*req->restore_dump) {
        bool known = false;
        for (size_t i = 0; i < st->n_history && !known; i++)
            known = version_same(st->history[i].version, req->version) &&
                    !strcmp(st->history[i].dump, req->restore_dump);
        struct stat sb;
        if (!known && *rec->dump)
            return baton_err_set(err, -ENOENT, "%s is no dump taken here while %s ran (%s is)",
                                 req->restore_dump, req->version, rec->dump);
        if (!known) {
            /* Not one of ours: on a shared database the node that took it restores it, and
             * this one only checks the ids it leaves (the migrate step compares them with
             * what this version had here). */
            st->downgrade = true;
            st->down_limit = 0;
            return 0;
        }
        if (stat(req->restore_dump, &sb) < 0)
            return baton_err_set(err, -errno, "dump %s: %s", req->restore_dump, strerror(errno));
        char tool[PATH_MAX];
        const char *list[] = {pgtools_path(ctx->svc, PGTOOL_RESTORE, tool, sizeof(tool)), "--list",
                              req->restore_dump, NULL};
        int r = command_run(ctx, ctx->svc, list, ctx->svc->timeout_dump_ms, "pg_restore --list",
                            NULL, err);
        if (r < 0)
            return r;
        if (svc_state_set(&st->restore_dump, req->restore_dump) < 0)
            return baton_err_set(err, -ENOMEM, "out of memory");
        st->downgrade = true;
        st->down_limit = 0;
        return 0;
    }
    /* Every id that version had is still there; the rest came after and goes down. */
    size_t extra = n_ids;
    for (size_t i = 0; i < rec->n_ids; i++) {
        if (!svc_state_has(ids, n_ids, rec->ids[i]))
            return baton_err_set(err, -ESTALE,
                                 "the database lacks %s, which it had with %s: a down-migration "
                                 "cannot bring that back (restore a dump taken at %s)",
                                 rec->ids[i], req->version, req->version);
        extra--;
    }
    st->downgrade = true;
    st->down_limit = extra;
    step_progress(ctx, "downgrade %s -> %s: %zu migration%s to take down", current, req->version,
                  extra, extra == 1 ? "" : "s");
    return 0;
}

int new_binary_check(step_ctx_t *ctx, const Baton__Step *req, const char *staged, char *ret_release,
                     size_t release_len, char *ret_bin, size_t bin_len, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    /* The staged program itself (checked at staging too, again here for one staged by an
     * agent that did not check), or the one in the release unpacked from it. */
    if (svc->release_dir)
        step_progress(ctx, "unpacking the release");
    char *version = NULL;
    int r = release_prepare(svc, staged, req->version, req->sha256, ret_release, release_len,
                            ret_bin, bin_len, err);
    if (r == 0 && (r = command_version(ctx, svc, ret_bin, &version, err)) < 0)
        baton_err_prefix(err, "the new binary does not run");
    if (r == 0 && *req->version && !version_matches(version, req->version))
        r = baton_err_set(err, -EINVAL, "the new binary reports version %s, not %s", version,
                          req->version);
    /* The service's own check of the new release (its plugins, its config), nothing stopped. */
    if (r == 0)
        r = command_check(ctx, ret_bin, err);
    free(version);
    return r;
}

/* The lock held by this node's own earlier agent (a power cut: the server has not dropped its
 * session yet) holds up nobody's rollout: it is ended, and the pre-flight goes on. */
static int end_own_stale_lock(step_ctx_t *ctx, db_survey_t *db, baton_err_t *err)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "baton-agent %s ", ctx->cfg->node_name);
    if (strncmp(db->lock_holder, prefix, strlen(prefix)))
        return 0;
    bool ended = false;
    int r = db_lock_end_stale(ctx->svc, ctx->cfg->node_name, &ended, err);
    if (r < 0)
        return r;
    if (ended) {
        step_progress(ctx, "ended %s: this node's earlier agent, gone", db->lock_holder);
        db->lock_holder[0] = '\0';
    }
    return 0;
}

int dump_room_check(const char *dir, uint64_t free_bytes, uint64_t db_bytes, baton_err_t *err)
{
    if (free_bytes >= dump_room(db_bytes))
        return 0;
    return baton_err_set(err, -ENOSPC,
                         "backup folder %s has %llu MiB free; a dump of the %llu MiB database "
                         "needs about %llu MiB",
                         dir, (unsigned long long)(free_bytes >> 20),
                         (unsigned long long)(db_bytes >> 20),
                         (unsigned long long)(dump_room(db_bytes) >> 20));
}

/* A dump of a database of db_bytes fits in the backup folder (dump_room()). */
static int backup_room_check(const svc_config_t *svc, uint64_t db_bytes, baton_err_t *err)
{
    struct statvfs vfs;
    if (statvfs(svc->backup_dir, &vfs) < 0)
        return baton_err_set(err, -errno, "statvfs %s: %s", svc->backup_dir, strerror(errno));
    return dump_room_check(svc->backup_dir, (uint64_t)vfs.f_bavail * vfs.f_frsize, db_bytes, err);
}

/* Where this rollout starts from, on the record: what it installs, what ran before (what a
 * rollback returns to), the database and its ids; the history starts with what ran before
 * baton's first rollout here, and notes what changed outside baton since. -ENOMEM or 0. */
static int record_start(svc_state_t *st, const Baton__Step *req, const char *release,
                        const char *previous_release, const char *current_version,
                        const char *current_sha256, const db_survey_t *db)
{
    if (svc_state_set(&st->target_release, release) < 0 ||
        svc_state_set(&st->previous_release, previous_release) < 0 ||
        svc_state_set(&st->target_version, req->version) < 0 ||
        svc_state_set(&st->target_sha256, req->sha256) < 0 ||
        svc_state_set(&st->previous_version, current_version) < 0 ||
        svc_state_set(&st->previous_sha256, current_sha256) < 0 ||
        svc_state_set(&st->database_id, db->identity) < 0)
        return -ENOMEM;
    svc_state_clear_list(&st->ids_preflight, &st->n_ids_preflight);
    for (size_t i = 0; i < db->n_ids; i++)
        if (svc_state_push(&st->ids_preflight, &st->n_ids_preflight, db->ids[i]) < 0)
            return -ENOMEM;
    if (svc_state_history_add(st, current_version, db->ids, db->n_ids, NULL) < 0 ||
        raise_highest(st, current_version) < 0)
        return -ENOMEM;
    return 0;
}

int step_preflight(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    svc_state_t *st = ctx->st;
    const Baton__Step *req = ctx->req->preflight;
    char staged[PATH_MAX], hex[DIGEST_HEX_LEN + 1];
    char newbin[PATH_MAX], release[RELEASE_NAME_MAX + 1], current_release[RELEASE_NAME_MAX + 1];
    char *active = NULL, *current_version = NULL;
    db_survey_t db = {0};
    sd_bus *bus = NULL;
    int r;

    if (!digest_hex_valid(req->sha256) || !*req->version)
        return baton_err_set(err, -EINVAL, "preflight needs a version and a sha256");
    /* The staged binary is there, intact, and is the version we are told it is. */
    if ((r = staged_path(ctx->cfg, svc->name, req->sha256, staged, sizeof(staged), err)) < 0)
        return r;
    step_progress(ctx, "checking staged binary");
    if ((r = digest_file(staged, hex, NULL, err)) < 0)
        return baton_err_prefix(err, "no staged binary for %s with sha256 %.12s…", svc->name,
                                req->sha256);
    if (strcmp(hex, req->sha256))
        return baton_err_set(err, -EBADMSG, "staged binary %s has sha256 %s, expected %s", staged,
                             hex, req->sha256);
    if ((r = new_binary_check(ctx, req, staged, release, sizeof(release), newbin, sizeof(newbin),
                              err)) < 0)
        goto out;
    /* What `current` names now is what a rollback switches back to; an install from before
     * releases (a folder of its own) is taken over under its version's name at the swap. */
    current_release[0] = '\0';
    if (svc->release_dir &&
        (r = release_current(svc, current_release, sizeof(current_release), err)) < 0) {
        if (r == -ENOENT)
            r = baton_err_set(err, -ENOENT,
                              "%s/current does not exist: nothing installed to "
                              "upgrade from",
                              svc->release_dir);
        goto out;
    }

    /* The unit exists; what state it is in is what a rollback returns to. */
    step_progress(ctx, "checking unit %s", svc->unit);
    if ((r = step_bus(ctx, &bus, err)) < 0 ||
        (r = unit_check_loaded(bus, svc->unit, &active, err)) < 0)
        goto out;

    /* The load balancer the stop step drains it from can (balancer.c). */
    if ((r = balancer_check(ctx, err)) < 0)
        goto out;

    /* The binary to replace is there and says what it is. */
    struct stat sb;
    if (stat(svc->binary, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        r = baton_err_set(err, -ENOENT, "binary %s: %s", svc->binary,
                          errno ? strerror(errno) : "not a regular file");
        goto out;
    }
    char bindir[PATH_MAX];
    snprintf(bindir, sizeof(bindir), "%s", svc->binary);
    if ((r = fs_dir_root_only(dirname(bindir), err)) < 0)
        goto out;
    if ((r = command_version(ctx, svc, svc->binary, &current_version, err)) < 0 ||
        (r = digest_file(svc->binary, hex, NULL, err)) < 0)
        goto out;

    /* The database answers, its bookkeeping table reads, and a dump of it fits. */
    step_progress(ctx, "checking database");
    if ((r = db_survey(svc, &db, err)) < 0 || (r = end_own_stale_lock(ctx, &db, err)) < 0 ||
        /* Another rollout (through another agent on the same database) is dumping or
         * migrating it now: this one would stop a node only to wait for that, or migrate
         * under it. */
        (r = db_lock_refuse_held(db.lock_holder, err)) < 0 ||
        /* The client programs that fit this server, called directly from now on. */
        (r = pgtools_check(ctx, svc, db.server_major, err)) < 0 ||
        (r = fs_mkdir_p(svc->backup_dir, 0700, err)) < 0 ||
        (r = fs_dir_root_only(svc->backup_dir, err)) < 0)
        goto out;
    uint64_t db_bytes = db.bytes;
    if ((r = backup_room_check(svc, db_bytes, err)) < 0)
        goto out;
    /* The new binary knows every migration the database has (its own migrate up adds the
     * rest): else it would be refused at start, after the service was stopped. */
    if (!req->downgrade && (r = command_schema_known_ids(ctx, newbin, db.ids, db.n_ids, err)) < 0)
        goto out;
    if ((r = downgrade_check(ctx, st, req, current_version, db.ids, db.n_ids, err)) < 0)
        goto out;
    /* Last, once everything else passed: the migration on a copy (it takes the longest). */
    if (req->rehearse && (r = rehearse(ctx, newbin, &ctx->out.rehearse_ms, err)) < 0)
        goto out;

    if (svc->release_dir && !*current_release &&
        (r = release_adopt_name(current_version, current_release, sizeof(current_release), err)) <
            0)
        goto out;

    /* All checks passed: record where this rollout starts from (the rollout id itself was
     * recorded, with the step, before the pre-flight began). */
    if (record_start(st, req, release, svc->release_dir ? current_release : "", current_version,
                     hex, &db) < 0) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    st->was_active =
        !strcmp(active, "active") || !strcmp(active, "activating") || !strcmp(active, "reloading");
    step_progress(ctx, "%s %s (%s), database %llu KiB, %zu migration%s applied", svc->unit,
                  current_version, active, (unsigned long long)(db_bytes >> 10), db.n_ids,
                  db.n_ids == 1 ? "" : "s");
    r = 0;
out:
    free(active);
    free(current_version);
    db_survey_clear(&db);
    return r;
}
