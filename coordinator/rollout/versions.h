/* versions: the rules the upgrade guides (Nakama, PocketHost, NocoBase) give in prose, as one
 * pure function: what a rollout to `target` means for a node on `current`.
 *
 *  - up: allowed, unless the catalog says the release needs at least min_upgrade_from;
 *  - a patch down within the minor that runs: allowed;
 *  - one minor below the highest version ever deployed on the node: only with
 *    --allow-downgrade (the newer binary's migrate down, then the older binary);
 *  - refused: more than one minor below that highest version; a version the node never ran (no
 *    history of its migrations); across a release that requires maintenance;
 *  - --restore-dump lifts those refusals: the dump taken at that version is restored instead,
 *    which loses every change since (baton plan says so).
 * Versions that are no semver (a service that prints "2024.1") get no rules: they are taken
 * as an upgrade, as before. */
#ifndef BATON_VERSIONS_H
#define BATON_VERSIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"

typedef enum version_move {
    MOVE_UP = 0,  /* an upgrade (or versions without semver) */
    MOVE_SAME,    /* already there */
    MOVE_DOWN,    /* an allowed downgrade */
    MOVE_REFUSED, /* see why */
} version_move_t;

typedef struct version_facts {
    const char *current;    /* what the node runs */
    const char *highest;    /* the highest version ever deployed there ("" unknown) */
    const char *const *ran; /* versions in its history */
    size_t n_ran;
    const catalog_t *catalog; /* NULL without one */
    bool allow_downgrade;     /* --allow-downgrade */
    bool restore_dump;        /* --restore-dump was given */
} version_facts_t;

/* Decides; on MOVE_REFUSED `why` (len bytes) says why in one line. */
version_move_t version_move(const version_facts_t *f, const char *target, char *why, size_t len);

#endif
