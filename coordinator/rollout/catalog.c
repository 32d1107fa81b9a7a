/* catalog: see catalog.h. */
#include "catalog.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "names.h"
#include "ydoc.h"

static int bad(ydoc_t *doc, const ynode_t *node, const char *where, const char *what,
               baton_err_t *err)
{
    return baton_err_set(err, -EINVAL, "%s:%u: %s: %s", ydoc_path(doc), ydoc_line(node), where,
                         what);
}

static void release_free(release_t *r)
{
    free(r->version);
    free(r->artifact);
    free(r->sha256);
    free(r->notes);
}

void catalog_destroy(catalog_t **c_p)
{
    catalog_t *c = c_p ? *c_p : NULL;
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        release_free(&c->releases[i]);
    free(c->releases);
    free(c->service);
    free(c->path);
    free(c);
    *c_p = NULL;
}

static int load_release(ydoc_t *doc, const ynode_t *node, const char *where, const char *dir,
                        release_t *rel, baton_err_t *err)
{
    static const char *const keys[] = {"version",  "artifact", "sha256", "min_upgrade_from",
                                       "requires", "notes",    NULL};
    char *artifact = NULL, *min_from = NULL, *requires = NULL, sub[96];
    int r;
    if ((r = ydoc_expect_map(doc, node, where, keys, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "version", true, &rel->version, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "artifact", true, &artifact, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "sha256", true, &rel->sha256, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "min_upgrade_from", false, &min_from, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "requires", false, &requires, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "notes", false, &rel->notes, err)) < 0)
        goto out;
    baton_err_t verr = {0};
    snprintf(sub, sizeof(sub), "%s.version", where);
    if (semver_parse(rel->version, &rel->v, &verr) < 0) {
        r = bad(doc, ydoc_get(doc, node, "version"), sub, verr.msg, err);
        goto out;
    }
    /* It travels on the wire and names files: the same rule as every version name. */
    if (!version_name_valid(rel->version)) {
        r = bad(doc, ydoc_get(doc, node, "version"), sub, "must be at most 64 characters", err);
        goto out;
    }
    snprintf(sub, sizeof(sub), "%s.sha256", where);
    if (!digest_hex_valid(rel->sha256)) {
        r = bad(doc, ydoc_get(doc, node, "sha256"), sub, "must be 64 lower-case hex digits", err);
        goto out;
    }
    snprintf(sub, sizeof(sub), "%s.min_upgrade_from", where);
    if (min_from) {
        baton_err_clear(&verr);
        if (semver_parse(min_from, &rel->min_from, &verr) < 0) {
            r = bad(doc, ydoc_get(doc, node, "min_upgrade_from"), sub, verr.msg, err);
            goto out;
        }
        if (semver_compare(&rel->min_from, &rel->v) >= 0) {
            r = bad(doc, ydoc_get(doc, node, "min_upgrade_from"), sub,
                    "must be below the release's own version", err);
            goto out;
        }
        rel->has_min_from = true;
    }
    snprintf(sub, sizeof(sub), "%s.requires", where);
    if (requires && strcmp(requires, "maintenance")) {
        r = bad(doc, ydoc_get(doc, node, "requires"), sub, "must be maintenance", err);
        goto out;
    }
    rel->maintenance = requires != NULL;
    snprintf(sub, sizeof(sub), "%s.artifact", where);
    if (artifact_is_url(artifact) && !artifact_url_valid(artifact)) {
        r = bad(doc, ydoc_get(doc, node, "artifact"), sub, ARTIFACT_URL_RULE, err);
        goto out;
    }
    /* A relative artifact is relative to the catalog, not to where baton runs; a URL is the
     * agents' to pull as it is. */
    if ((artifact[0] == '/' || artifact_is_url(artifact)
             ? asprintf(&rel->artifact, "%s", artifact)
             : asprintf(&rel->artifact, "%s/%s", dir, artifact)) < 0) {
        rel->artifact = NULL;
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    r = 0;
out:
    free(artifact);
    free(min_from);
    free(requires);
    return r;
}

static int by_version(const void *a, const void *b)
{
    return semver_compare(&((const release_t *)a)->v, &((const release_t *)b)->v);
}

int catalog_load(const char *path, catalog_t **ret, baton_err_t *err)
{
    static const char *const keys[] = {"service", "releases", NULL};
    ydoc_t *doc = NULL;
    int r = ydoc_load(path, &doc, err);
    if (r < 0)
        return r;
    catalog_t *c = calloc(1, sizeof(*c));
    char *copy = strdup(path);
    const char *dir = copy ? dirname(copy) : NULL;
    if (!c || !copy || !(c->path = strdup(path))) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    const ynode_t *root = ydoc_root(doc), *list;
    if ((r = ydoc_expect_map(doc, root, "", keys, err)) < 0 ||
        (r = ydoc_str(doc, root, "", "service", true, &c->service, err)) < 0)
        goto out;
    if (!name_valid(c->service, NAME_MAX_LEN)) {
        r = bad(doc, ydoc_get(doc, root, "service"), "service", "must be 1-64 of [A-Za-z0-9_.-@]",
                err);
        goto out;
    }
    list = ydoc_get(doc, root, "releases");
    if (!list) {
        r = baton_err_set(err, -EINVAL, "%s:%u: releases: required key missing", path,
                          ydoc_line(root));
        goto out;
    }
    if ((r = ydoc_expect_seq(doc, list, "releases", CATALOG_RELEASES_MAX, err)) < 0)
        goto out;
    size_t n = ydoc_seq_len(list);
    if (!(c->releases = calloc(n, sizeof(*c->releases)))) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char where[32];
        snprintf(where, sizeof(where), "releases[%zu]", i);
        const ynode_t *item = ydoc_seq_item(doc, list, i);
        c->n++;
        if ((r = load_release(doc, item, where, dir, &c->releases[i], err)) < 0)
            goto out;
        for (size_t k = 0; k < i; k++)
            if (semver_compare(&c->releases[k].v, &c->releases[i].v) == 0) {
                char msg[96];
                snprintf(msg, sizeof(msg), "%s is listed twice (also releases[%zu])",
                         c->releases[i].version, k);
                r = bad(doc, item, where, msg, err);
                goto out;
            }
    }
    qsort(c->releases, c->n, sizeof(*c->releases), by_version);
    *ret = c;
    c = NULL;
    r = 0;
out:
    free(copy);
    catalog_destroy(&c);
    ydoc_destroy(&doc);
    return r;
}

const release_t *catalog_resolve(const catalog_t *c, const semver_range_t *range)
{
    for (size_t i = c->n; i-- > 0;)
        if (semver_range_match(range, &c->releases[i].v))
            return &c->releases[i];
    return NULL;
}

const release_t *catalog_find(const catalog_t *c, const semver_t *v)
{
    for (size_t i = 0; i < c->n; i++)
        if (semver_compare(&c->releases[i].v, v) == 0)
            return &c->releases[i];
    return NULL;
}

size_t catalog_hops(const catalog_t *c, const semver_t *from, const release_t *to,
                    const release_t **ret, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        const release_t *r = &c->releases[i];
        bool above_from_minor =
            r->v.major > from->major || (r->v.major == from->major && r->v.minor > from->minor);
        bool below_to_minor =
            r->v.major < to->v.major || (r->v.major == to->v.major && r->v.minor < to->v.minor);
        if (!above_from_minor || !below_to_minor || *r->v.pre)
            continue;
        /* Only the newest release (not a pre-release) of its minor: none after it (sorted). */
        bool newer = false;
        for (size_t k = i + 1; k < c->n && !newer; k++) {
            const semver_t *o = &c->releases[k].v;
            newer = o->major == r->v.major && o->minor == r->v.minor && !*o->pre;
        }
        if (newer)
            continue;
        if (n < max)
            ret[n] = r;
        n++;
    }
    if (n < max)
        ret[n] = to;
    return n + 1;
}

const release_t *catalog_maintenance_between(const catalog_t *c, const semver_t *from,
                                             const semver_t *to)
{
    for (size_t i = 0; i < c->n; i++) {
        const release_t *r = &c->releases[i];
        if (r->maintenance && semver_compare(&r->v, from) > 0 && semver_compare(&r->v, to) <= 0)
            return r;
    }
    return NULL;
}
