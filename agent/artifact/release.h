/* release: whole releases (the binary, its runtime modules, static files, a unit drop-in) side
 * by side, and one link naming the one the service runs, as Capistrano and Deployer lay out a
 * deploy:
 *
 *   RELEASE_DIR/releases/VERSION-SHA12/   one folder per release, unpacked from its archive
 *   RELEASE_DIR/current -> releases/...   what the unit runs (binary: RELEASE_DIR/current/REL)
 *
 * A release is unpacked before anything stops (pre-flight, and plan), into a hidden folder that
 * is renamed to its name once whole and synced: a release folder under its name is complete.
 * The swap switches the link (a new link renamed over the old one, the folder fsynced): at every
 * instant `current` names the old release or the new one, never a mix; a rollback switches it
 * back. A release's `systemd/unit.conf`, when it has one, is the unit's drop-in
 * (/etc/systemd/system/UNIT.d/50-baton-release.conf) while that release is current, and is gone
 * with it. An install that predates releases (`current` a folder of its own) is taken over at
 * the first swap: exchanged with the new link in one rename (RENAME_EXCHANGE), then moved to
 * releases/VERSION-adopted, which a rollback switches back to; never pruned (it may hold what
 * the service wrote there).
 *
 * The archive (tar; gzip, xz, bzip2, zstd or none, read by libarchive) is hostile until checked,
 * member by member: absolute names, `..`, links that point out of the release, hard links,
 * devices, FIFOs, setuid/setgid/sticky bits, sizes and counts beyond the limits below are
 * refused naming the member, and nothing is left behind. Files are created anew (O_EXCL), every
 * folder is opened without following links, so no member is written through another. */
#ifndef BATON_AGENT_RELEASE_H
#define BATON_AGENT_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

#define RELEASE_MEMBERS_MAX 20000      /* entries in one archive */
#define RELEASE_BYTES_MAX (4ull << 30) /* bytes of all its files, unpacked */
#define RELEASE_MEMBER_PATH_MAX 1024   /* a member's name */
#define RELEASE_DROPIN_MAX (64 * 1024) /* systemd/unit.conf */
#define RELEASE_NAME_MAX 96            /* VERSION-SHA12 */
#define RELEASE_DROPIN_MEMBER "systemd/unit.conf"

/* True when the file open at fd starts like an archive libarchive reads for releases (tar,
 * or gzip, xz, bzip2, zstd). */
bool release_is_archive_fd(int fd);

/* The folder name of a release: VERSION-SHA12 ("3.15.0+1783fad1-0a1b2c3d4e5f"). -EINVAL when
 * the version is no version name (it becomes a path component). */
int release_name(const char *version, const char *sha256, char *buf, size_t len, baton_err_t *err);
/* RELEASE_DIR/releases/NAME, and the service's binary in it (RELEASE_DIR/releases/NAME/REL). */
int release_path(const svc_config_t *svc, const char *name, char *buf, size_t len,
                 baton_err_t *err);
int release_binary(const svc_config_t *svc, const char *name, char *buf, size_t len,
                   baton_err_t *err);

/* Unpacks the archive `archive` as release `name`, unless it is there already (then nothing
 * is read). RELEASE_DIR and its releases folder are created when missing and must be root's
 * only. On failure nothing of it is left. */
int release_unpack(const svc_config_t *svc, const char *archive, const char *name,
                   baton_err_t *err);

/* The pre-flight's part, and plan's: the new binary of the staged artifact `staged` (of
 * `sha256`, said to be `version`). For a service without releases, the staged file itself,
 * which must be a program (artifact.h); with releases, the binary in the release unpacked from
 * it, whose name goes to ret_name. An archive given to a service without releases, or a single
 * program to one with, is refused saying so. */
int release_prepare(const svc_config_t *svc, const char *staged, const char *version,
                    const char *sha256, char *ret_name, size_t name_len, char *ret_bin,
                    size_t bin_len, baton_err_t *err);

/* The release an install from before releases becomes when it is taken over: VERSION-adopted
 * (VERSION as its binary printed it). */
int release_adopt_name(const char *version, char *buf, size_t len, baton_err_t *err);

/* What `current` names: 0 with the release's name; 0 with "" when `current` is a folder of its
 * own (an install that predates releases); -ENOENT when there is none. */
int release_current(const svc_config_t *svc, char *buf, size_t len, baton_err_t *err);

/* Makes `current` name release `name` (which must be unpacked), atomically. A `current` that is
 * a folder of its own is first moved to releases/`adopt` (NULL: refused). */
int release_switch(const svc_config_t *svc, const char *name, const char *adopt, baton_err_t *err);

/* A take-over cut short by a crash (the old install's folder left at .current.tmp) is
 * finished: the folder becomes releases/`adopt`. 0 when there is nothing to finish. */
int release_settle(const svc_config_t *svc, const char *adopt, baton_err_t *err);

/* Gives the unit release `name`'s drop-in (its systemd/unit.conf), or none when it has none;
 * *ret_changed when the unit's configuration changed (a daemon-reload is due). */
int release_dropin(const svc_config_t *svc, const char *name, bool *ret_changed, baton_err_t *err);

/* Removes the oldest releases (by time unpacked) beyond `keep`, never the current one nor
 * `also` (the previous one, which a rollback may switch back to). */
int release_prune(const svc_config_t *svc, size_t keep, const char *also, baton_err_t *err);

#endif
