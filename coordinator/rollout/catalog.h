/* catalog: a service's release catalog (YAML), the list of versions an operator may roll out,
 * each with its artifact and digest, and the rules its release notes would otherwise say in
 * prose:
 *
 *   service: gamesrv
 *   releases:
 *     - version: 1.2.0                 # Semantic Versioning 2.0
 *       artifact: gamesrv-1.2.0        # relative to this file's folder
 *       sha256: 5f0c…                  # the artifact's digest: a mismatch refuses the rollout
 *       min_upgrade_from: 1.1.0        # optional: nodes below it must upgrade to it first
 *       requires: maintenance          # optional: rolled with every node of a database stopped
 *       notes: "adds the inventory"    # optional, shown by baton plan
 *
 * A rollout file names it (`catalog: FILE`) and asks for an exact version or a range
 * (semver.h); the highest release that matches is the one rolled out. */
#ifndef BATON_CATALOG_H
#define BATON_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "semver.h"

#define CATALOG_RELEASES_MAX 10000

typedef struct release {
    char *version;     /* as written in the catalog */
    semver_t v;        /* parsed */
    char *artifact;    /* resolved against the catalog's folder */
    char *sha256;      /* the artifact's digest */
    bool has_min_from; /* min_upgrade_from was given */
    semver_t min_from; /* and what it says */
    bool maintenance;  /* requires: maintenance */
    char *notes;       /* NULL or the release's notes */
} release_t;

typedef struct catalog {
    char *path;          /* the file */
    char *service;       /* the service its releases are of */
    size_t n;            /* releases */
    release_t *releases; /* sorted, lowest version first */
} catalog_t;

/* Loads and checks the whole file: every error names the file, the line and the key. */
int catalog_load(const char *path, catalog_t **ret, baton_err_t *err);
void catalog_destroy(catalog_t **c_p);

/* The highest release the range matches, or NULL. */
const release_t *catalog_resolve(const catalog_t *c, const semver_range_t *range);
/* The release of exactly that version (build metadata ignored), or NULL. */
const release_t *catalog_find(const catalog_t *c, const semver_t *v);

/* The hops of an upgrade from `from` to release `to`, one minor version at a time: the newest
 * release of each MAJOR.MINOR strictly between the two, then `to` itself. Writes at most `max`
 * releases into ret and returns how many hops there are. */
size_t catalog_hops(const catalog_t *c, const semver_t *from, const release_t *to,
                    const release_t **ret, size_t max);
/* A release above `from` and at most `to` that requires maintenance, or NULL. */
const release_t *catalog_maintenance_between(const catalog_t *c, const semver_t *from,
                                             const semver_t *to);

#endif
