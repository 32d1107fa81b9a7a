/* rollout_file: see rollout_file.h. */
#include "rollout_file.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "http_post.h"
#include "semver.h"
#include "client.h"
#include "names.h"
#include "ydoc.h"

static bool plain_name(const char *s)
{
    return name_valid(s, NAME_MAX_LEN);
}

/* HOST:PORT, HOST a name, an IPv4 address or [IPv6]; PORT 1-65535. */
static bool tcp_endpoint_valid(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (s[0] == '[' && colon[-1] != ']'))
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    return colon[1] >= '0' && colon[1] <= '9' && !*end && !errno && port >= 1 && port <= 65535;
}

static int bad(ydoc_t *doc, const ynode_t *map, const char *where, const char *key,
               const char *what, baton_err_t *err)
{
    const ynode_t *v = ydoc_get(doc, map, key);
    return baton_err_set(err, -EINVAL, "%s:%u: %s%s%s: %s", ydoc_path(doc), ydoc_line(v ? v : map),
                         where, *where ? "." : "", key, what);
}

/* Calls `one` on the scalar at root[key], or on each item of the list there (at most `max`). */
static int scalar_or_list(ydoc_t *doc, const ynode_t *root, const char *key, size_t max,
                          int (*one)(const char *text, size_t i, void *userdata), void *userdata,
                          const char *expect, size_t *ret_n, baton_err_t *err)
{
    const ynode_t *v = ydoc_get(doc, root, key);
    if (!v)
        return 0;
    size_t n = v->type == YAML_SEQUENCE_NODE ? ydoc_seq_len(v) : 1;
    if (v->type == YAML_SEQUENCE_NODE && max == 0)
        return baton_err_set(err, -EINVAL, "%s:%u: %s: expected one value, found a list",
                             ydoc_path(doc), ydoc_line(v), key);
    if (v->type == YAML_SEQUENCE_NODE && (n == 0 || n > max))
        return baton_err_set(err, -EINVAL, "%s:%u: %s: a list of 1 to %zu entries", ydoc_path(doc),
                             ydoc_line(v), key, max);
    for (size_t i = 0; i < n; i++) {
        const ynode_t *item = v->type == YAML_SEQUENCE_NODE ? ydoc_seq_item(doc, v, i) : v;
        const char *text = ydoc_scalar(item);
        if (!text || one(text, i, userdata) < 0)
            return baton_err_set(err, -EINVAL, "%s:%u: %s%s: '%s' is not %s", ydoc_path(doc),
                                 ydoc_line(item), key, v->type == YAML_SEQUENCE_NODE ? "[]" : "",
                                 text ? text : "(a list or mapping)", expect);
    }
    *ret_n = n;
    return 0;
}

static int one_batch(const char *text, size_t i, void *userdata)
{
    return amount_parse(text, 1, &((strategy_t *)userdata)->batches[i]);
}

static int one_pause(const char *text, size_t i, void *userdata)
{
    strategy_t *s = userdata;
    amount_t a;
    if (!strcmp(text, "canary")) {
        s->pause_after[i] = 1;
        return 0;
    }
    if (amount_parse(text, 1, &a) < 0 || a.percent)
        return -EINVAL;
    s->pause_after[i] = a.value;
    return 0;
}

static int one_amount(const char *text, size_t i, void *userdata)
{
    (void)i;
    amount_t *a = userdata;
    return amount_parse(text, a->value, a); /* value holds the least count allowed */
}

/* A list of names into a mask of bits (notify's `on:`, a webhook's `at:`). */
struct name_bits {
    unsigned (*by_name)(const char *name); /* a name's bit, 0 when there is no such name */
    unsigned mask;
};

static int name_bit(const char *text, size_t i, void *userdata)
{
    (void)i;
    struct name_bits *nb = userdata;
    unsigned bit = nb->by_name(text);
    nb->mask |= bit;
    return bit ? 0 : -1;
}

/* notify: a list of {url, format, on} (notify.h). */
static int load_notify(ydoc_t *doc, const ynode_t *root, rollout_file_t *rf, baton_err_t *err)
{
    static const char *const keys[] = {"url", "format", "on", NULL};
    const ynode_t *list = ydoc_get(doc, root, "notify");
    if (!list || (list->type == YAML_SEQUENCE_NODE && ydoc_seq_len(list) == 0))
        return 0; /* notify: [] (the starter file's): no targets */
    int r = ydoc_expect_seq(doc, list, "notify", NOTIFY_TARGETS_MAX, err);
    if (r < 0)
        return r;
    size_t n = ydoc_seq_len(list);
    if (!(rf->notify = calloc(n ? n : 1, sizeof(*rf->notify))))
        return baton_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char where[32];
        snprintf(where, sizeof(where), "notify[%zu]", i);
        const ynode_t *item = ydoc_seq_item(doc, list, i);
        notify_target_t *t = &rf->notify[i];
        char *format = NULL;
        size_t n_on = 0;
        rf->n_notify = i + 1; /* freed from here on */
        if ((r = ydoc_expect_map(doc, item, where, keys, err)) < 0 ||
            (r = ydoc_str(doc, item, where, "url", true, &t->url, err)) < 0 ||
            (r = ydoc_str(doc, item, where, "format", false, &format, err)) < 0)
            return r;
        const char *problem = http_post_url_problem(t->url);
        if (problem)
            return bad(doc, item, where, "url", problem, err);
        t->format = format && !strcmp(format, "slack") ? NOTIFY_SLACK : NOTIFY_JSON;
        bool format_ok = !format || !strcmp(format, "json") || !strcmp(format, "slack");
        free(format);
        if (!format_ok)
            return bad(doc, item, where, "format", "must be json or slack", err);
        char expect[96];
        snprintf(expect, sizeof(expect), "one of %s", notify_kind_names());
        struct name_bits on = {notify_kind_by_name, 0};
        if ((r = scalar_or_list(doc, item, "on", 6, name_bit, &on, expect, &n_on, err)) < 0)
            return r;
        t->on = n_on ? on.mask : NOTIFY_ALL;
    }
    return 0;
}

/* webhooks: a list of {url, at, timeout, retries} (webhook.h); after the strategy, which
 * before_commit depends on. */
static int load_webhooks(ydoc_t *doc, const ynode_t *root, rollout_file_t *rf, baton_err_t *err)
{
    static const char *const keys[] = {"url", "at", "timeout", "retries", NULL};
    const ynode_t *list = ydoc_get(doc, root, "webhooks");
    if (!list || (list->type == YAML_SEQUENCE_NODE && ydoc_seq_len(list) == 0))
        return 0;
    int r = ydoc_expect_seq(doc, list, "webhooks", WEBHOOKS_MAX, err);
    if (r < 0)
        return r;
    size_t n = ydoc_seq_len(list);
    if (!(rf->webhooks = calloc(n, sizeof(*rf->webhooks))))
        return baton_err_set(err, -ENOMEM, "out of memory");
    char expect[96];
    snprintf(expect, sizeof(expect), "one of %s", webhook_at_names());
    for (size_t i = 0; i < n; i++) {
        char where[32];
        snprintf(where, sizeof(where), "webhooks[%zu]", i);
        const ynode_t *item = ydoc_seq_item(doc, list, i);
        webhook_t *h = &rf->webhooks[i];
        size_t n_at = 0;
        struct name_bits at = {webhook_at_by_name, 0};
        uint64_t retries = 2;
        h->timeout_ms = 10000;
        rf->n_webhooks = i + 1; /* freed from here on */
        if ((r = ydoc_expect_map(doc, item, where, keys, err)) < 0 ||
            (r = ydoc_str(doc, item, where, "url", true, &h->url, err)) < 0 ||
            (r = ydoc_duration_ms(doc, item, where, "timeout", false, 1000, 60000, &h->timeout_ms,
                                  err)) < 0 ||
            (r = ydoc_uint(doc, item, where, "retries", false, 0, 5, &retries, err)) < 0 ||
            (r = scalar_or_list(doc, item, "at", 3, name_bit, &at, expect, &n_at, err)) < 0)
            return r;
        const char *problem = http_post_url_problem(h->url);
        if (problem)
            return bad(doc, item, where, "url", problem, err);
        h->retries = (unsigned)retries;
        h->at = n_at ? at.mask : WEBHOOK_BEFORE_ROLLOUT;
        /* Only rollback-all holds every commit until the last batch passed; elsewhere there
         * is no moment before "the" commit to ask at. */
        if ((h->at & WEBHOOK_BEFORE_COMMIT) && rf->strategy.on_failure != ON_FAILURE_ROLLBACK_ALL) {
            char why[128];
            snprintf(why, sizeof(why),
                     "before_commit needs on_failure: rollback-all: with %s, each node commits "
                     "as soon as it verifies",
                     on_failure_str(rf->strategy.on_failure));
            return bad(doc, item, where, "at", why, err);
        }
    }
    return 0;
}

/* One list of analysis checks (analysis.h): `checks` (a node's, scope node) or `bake` (a
 * batch's). A query's {{words}} are checked here against its scope, its PromQL by `baton plan`
 * (Prometheus says). */
static int load_checks(ydoc_t *doc, const ynode_t *m, const char *key, const prom_vars_t *scope,
                       uint64_t progress_deadline_ms, analysis_check_t *checks, size_t *ret_n,
                       baton_err_t *err)
{
    static const char *const check_keys[] = {"name",  "query",         "success", "interval",
                                             "count", "failure_limit", NULL};
    const ynode_t *list = ydoc_get(doc, m, key);
    char where[48];
    snprintf(where, sizeof(where), "analysis.%s", key);
    int r = list ? ydoc_expect_seq(doc, list, where, ANALYSIS_CHECKS_MAX, err) : 0;
    if (r < 0 || !list)
        return r;
    size_t n = ydoc_seq_len(list); /* 1 to 8: an empty list is refused above */
    for (size_t i = 0; i < n; i++) {
        char why[256];
        snprintf(where, sizeof(where), "analysis.%s[%zu]", key, i);
        const ynode_t *item = ydoc_seq_item(doc, list, i);
        analysis_check_t *c = &checks[i];
        uint64_t count = 3, limit = 0;
        c->interval_ms = 10000;
        *ret_n = i + 1; /* freed from here on */
        if ((r = ydoc_expect_map(doc, item, where, check_keys, err)) < 0 ||
            (r = ydoc_str(doc, item, where, "name", true, &c->name, err)) < 0 ||
            (r = ydoc_str(doc, item, where, "query", true, &c->query, err)) < 0 ||
            (r = ydoc_str(doc, item, where, "success", true, &c->success_text, err)) < 0 ||
            (r = ydoc_duration_ms(doc, item, where, "interval", false, 1000, 600000,
                                  &c->interval_ms, err)) < 0 ||
            (r = ydoc_uint(doc, item, where, "count", false, 1, ANALYSIS_COUNT_MAX, &count, err)) <
                0 ||
            (r = ydoc_uint(doc, item, where, "failure_limit", false, 0, ANALYSIS_COUNT_MAX - 1,
                           &limit, err)) < 0)
            return r;
        if (!plain_name(c->name))
            return bad(doc, item, where, "name", "must be 1-64 of [A-Za-z0-9_.-@]", err);
        /* A measurement is progress: none within progress_deadline would halt every rollout. */
        if (progress_deadline_ms && c->interval_ms >= progress_deadline_ms)
            return bad(doc, item, where, "interval",
                       "must be shorter than progress_deadline (no measurement within it would "
                       "halt the rollout)",
                       err);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(checks[k].name, c->name))
                return bad(doc, item, where, "name", "is the name of an earlier check", err);
        char *q = NULL;
        if (prom_expand(c->query, scope, &q, why, sizeof(why)) < 0)
            return bad(doc, item, where, "query", why, err);
        free(q);
        if (prom_condition_parse(c->success_text, &c->success, why, sizeof(why)) < 0)
            return bad(doc, item, where, "success", why, err);
        c->count = (unsigned)count;
        c->failure_limit = (unsigned)limit;
        if (c->failure_limit >= c->count)
            return bad(doc, item, where, "failure_limit",
                       "must be below count: with as many failures allowed as measurements, the "
                       "check could not fail",
                       err);
    }
    return 0;
}

/* analysis: {prometheus, timeout, checks, bake} (analysis.h). */
static int load_analysis(ydoc_t *doc, const ynode_t *root, rollout_file_t *rf, baton_err_t *err)
{
    static const char *const keys[] = {"prometheus", "timeout", "checks", "bake", NULL};
    const ynode_t *m = ydoc_get(doc, root, "analysis");
    if (!m)
        return 0;
    analysis_t *a = calloc(1, sizeof(*a));
    if (!(rf->analysis = a))
        return baton_err_set(err, -ENOMEM, "out of memory");
    a->timeout_ms = 5000;
    int r;
    if ((r = ydoc_expect_map(doc, m, "analysis", keys, err)) < 0 ||
        (r = ydoc_str(doc, m, "analysis", "prometheus", true, &a->prometheus, err)) < 0 ||
        (r = ydoc_duration_ms(doc, m, "analysis", "timeout", false, 1000, 60000, &a->timeout_ms,
                              err)) < 0)
        return r;
    const char *problem = http_post_url_problem(a->prometheus);
    if (problem)
        return bad(doc, m, "analysis", "prometheus", problem, err);
    if (!ydoc_get(doc, m, "checks") && !ydoc_get(doc, m, "bake"))
        return bad(doc, m, "analysis", "checks", "is required (or bake): a list of 1 to 8 checks",
                   err);
    if ((r = load_checks(doc, m, "checks", &prom_vars_node_scope, rf->progress_deadline_ms,
                         a->checks, &a->n_checks, err)) < 0 ||
        (r = load_checks(doc, m, "bake", &prom_vars_batch_scope, rf->progress_deadline_ms, a->bake,
                         &a->n_bake, err)) < 0)
        return r;
    return 0;
}

static int load_strategy(ydoc_t *doc, const ynode_t *root, strategy_t *s, baton_err_t *err)
{
    size_t n = 0;
    strategy_init(s);
    int r = scalar_or_list(doc, root, "batches", STRATEGY_BATCHES_MAX, one_batch, s,
                           "a node count >= 1 or a percentage like \"25%\"", &s->n_batches, err);
    if (r < 0 || (r = scalar_or_list(doc, root, "pause_after", STRATEGY_PAUSES_MAX, one_pause, s,
                                     "canary or a batch number >= 1", &s->n_pauses, err)) < 0)
        return r;
    if (ydoc_get(doc, root, "max_unavailable")) {
        s->max_unavailable.value = 1;
        if ((r = scalar_or_list(doc, root, "max_unavailable", 0, one_amount, &s->max_unavailable,
                                "a node count >= 1 or a percentage like \"25%\"", &n, err)) < 0)
            return r;
        s->max_unavailable_set = true;
    }
    if ((r = scalar_or_list(doc, root, "max_failures", 0, one_amount, &s->max_failures,
                            "a count >= 0 or a percentage like \"10%\"", &n, err)) < 0)
        return r;
    char *text = NULL;
    if ((r = ydoc_str(doc, root, "", "on_failure", false, &text, err)) < 0)
        return r;
    if (text && on_failure_parse(text, &s->on_failure) < 0) {
        free(text);
        return bad(doc, root, "", "on_failure", "must be halt, rollback-all or continue", err);
    }
    free(text);
    if (ydoc_get(doc, root, "max_failures") && s->on_failure != ON_FAILURE_CONTINUE)
        return bad(doc, root, "", "max_failures", "only means something with on_failure: continue",
                   err);
    /* How a rollback that needs the dump of a database other nodes serve from goes on. */
    text = NULL;
    if ((r = ydoc_str(doc, root, "", "restore_shared", false, &text, err)) < 0)
        return r;
    if (text && strcmp(text, "refuse") && strcmp(text, "stop-group")) {
        free(text);
        return bad(doc, root, "", "restore_shared", "must be refuse or stop-group", err);
    }
    s->restore_stop_group = text && !strcmp(text, "stop-group");
    free(text);
    uint64_t mif = s->max_in_flight;
    if ((r = ydoc_uint(doc, root, "", "max_in_flight", false, 1, 1024, &mif, err)) < 0)
        return r;
    s->max_in_flight = (uint32_t)mif;
    return 0;
}

/* The version to roll out: with a catalog, the highest release the version (or range) matches,
 * its artifact and digest; without one, the version as written, which must be no alias and no
 * range (a range means nothing without releases to choose from). */
static int resolve_version(ydoc_t *doc, const ynode_t *root, const char *path, const char *catalog,
                           rollout_file_t *rf, char **artifact, baton_err_t *err)
{
    baton_err_t verr = {0};
    semver_range_t range;
    const char *asked = rf->version_asked;
    if (semver_is_alias(asked)) {
        semver_range_parse(asked, &range, &verr);
        return bad(doc, root, "", "version", verr.msg, err);
    }
    bool is_range = semver_range_parse(asked, &range, &verr) == 0;
    if (!catalog) {
        /* "1" or "2024.1" may well be what a service prints: only range syntax is a range. */
        bool looks_range =
            strpbrk(asked, "~^*<>= \t") || strstr(asked, ".x") || strstr(asked, ".X");
        if (is_range && looks_range && !semver_range_exact(&range))
            return bad(doc, root, "", "version",
                       "a version range needs a catalog (catalog: FILE) to choose from", err);
        return (rf->version = strdup(asked)) ? 0 : baton_err_set(err, -ENOMEM, "out of memory");
    }
    if (*artifact)
        return bad(doc, root, "", "artifact", "comes from the catalog: give one or the other", err);
    if (rf->sha256)
        return bad(doc, root, "", "sha256", "comes from the catalog: give one or the other", err);
    if (!is_range)
        return bad(doc, root, "", "version", verr.msg, err);
    char *dir = strdup(path), *cpath = NULL;
    int n = !dir                ? -1
            : catalog[0] == '/' ? asprintf(&cpath, "%s", catalog)
                                : asprintf(&cpath, "%s/%s", dirname(dir), catalog);
    free(dir);
    if (n < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    int r = catalog_load(cpath, &rf->catalog, err);
    free(cpath);
    if (r < 0)
        return r;
    const catalog_t *c = rf->catalog;
    if (strcmp(c->service, rf->service)) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s lists releases of %s, not %s", c->path, c->service,
                 rf->service);
        return bad(doc, root, "", "catalog", msg, err);
    }
    if (!(rf->release = catalog_resolve(c, &range))) {
        char msg[512];
        snprintf(msg, sizeof(msg), "'%s' matches no release in %s (it lists %s to %s)", asked,
                 c->path, c->n ? c->releases[0].version : "none",
                 c->n ? c->releases[c->n - 1].version : "none");
        return bad(doc, root, "", "version", msg, err);
    }
    rf->maintenance = rf->release->maintenance;
    if (!(rf->version = strdup(rf->release->version)) ||
        !(*artifact = strdup(rf->release->artifact)) || !(rf->sha256 = strdup(rf->release->sha256)))
        return baton_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

int rollout_file_check_artifact(const rollout_file_t *rf, baton_err_t *err)
{
    struct stat sb;
    if (artifact_is_url(rf->artifact))
        return 0; /* the agents' to pull */
    if (stat(rf->artifact, &sb) < 0)
        return baton_err_set(err, -errno, "%s: %s: %s", rf->artifact_where, rf->artifact,
                             strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return baton_err_set(err, -EINVAL, "%s: %s is not a file", rf->artifact_where,
                             rf->artifact);
    if (access(rf->artifact, R_OK) < 0)
        return baton_err_set(err, -errno, "%s: %s: %s", rf->artifact_where, rf->artifact,
                             strerror(errno));
    return 0;
}

/* What is rolled out: service, version (or a catalog's release), the artifact (relative to
 * the rollout file's folder) and its digest. */
static int load_release(ydoc_t *doc, const ynode_t *root, const char *path, rollout_file_t *rf,
                        baton_err_t *err)
{
    char *artifact = NULL, *catalog = NULL;
    int r;
    if ((r = ydoc_str(doc, root, "", "service", true, &rf->service, err)) < 0 ||
        (r = ydoc_str(doc, root, "", "version", true, &rf->version_asked, err)) < 0 ||
        (r = ydoc_str(doc, root, "", "catalog", false, &catalog, err)) < 0 ||
        (r = ydoc_str(doc, root, "", "artifact", !catalog, &artifact, err)) < 0 ||
        (r = ydoc_str(doc, root, "", "sha256", false, &rf->sha256, err)) < 0)
        goto out;
    if (!plain_name(rf->service)) {
        r = bad(doc, root, "", "service", "must be 1-64 of [A-Za-z0-9_.-@]", err);
        goto out;
    }
    if ((r = resolve_version(doc, root, path, catalog, rf, &artifact, err)) < 0 ||
        (r = ydoc_bool(doc, root, "", "rehearse", &rf->rehearse, err)) < 0)
        goto out;
    if (!version_name_valid(rf->version)) {
        r = bad(doc, root, "", "version", "must be 1-64 of [A-Za-z0-9_.-@+]", err);
        goto out;
    }
    if (rf->sha256 && !digest_hex_valid(rf->sha256)) {
        r = bad(doc, root, "", "sha256", "must be 64 lower-case hex digits", err);
        goto out;
    }
    /* A URL: pulled by each agent, which checks what it got against the digest, so the
     * digest is required (the coordinator never sees the file). A catalog's checked its own. */
    if (!rf->release && artifact_is_url(artifact) && !artifact_url_valid(artifact)) {
        r = bad(doc, root, "", "artifact", ARTIFACT_URL_RULE, err);
        goto out;
    }
    if (artifact_is_url(artifact) && !rf->sha256) {
        r = bad(doc, root, "", "artifact",
                "a URL needs the artifact's sha256 (sha256: ...): the agents check what they "
                "pull against it",
                err);
        goto out;
    }
    /* Where the artifact is named, for a message about it. */
    if (rf->release)
        snprintf(rf->artifact_where, sizeof(rf->artifact_where), "%s: release %s: artifact",
                 rf->catalog->path, rf->release->version);
    else
        snprintf(rf->artifact_where, sizeof(rf->artifact_where), "%s:%u: artifact", ydoc_path(doc),
                 ydoc_line(ydoc_get(doc, root, "artifact")));
    /* A relative artifact is relative to the rollout file's folder (as it really is, so that
     * messages name no "./."), not to where baton runs. */
    if (artifact_is_url(artifact)) {
        if (!(rf->artifact = strdup(artifact)))
            r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    char *dir = realpath(path, NULL);
    if (!dir)
        dir = strdup(path);
    const char *rel = artifact;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2 + strspn(rel + 2, "/");
    int n = !dir                 ? -1
            : artifact[0] == '/' ? asprintf(&rf->artifact, "%s", artifact)
                                 : asprintf(&rf->artifact, "%s/%s", dirname(dir), rel);
    free(dir);
    if (n < 0) {
        rf->artifact = NULL;
        r = baton_err_set(err, -ENOMEM, "out of memory");
    }
out:
    free(artifact);
    free(catalog);
    return r;
}

/* The timeouts and the health windows, with their defaults. */
static int load_timing(ydoc_t *doc, const ynode_t *root, rollout_file_t *rf, baton_err_t *err)
{
    static const char *const timeout_keys[] = {"connect", "step", NULL};
    int r;
    rf->connect_timeout_ms = 5000;
    rf->step_timeout_ms = 45 * 60 * 1000;
    const ynode_t *t = ydoc_get(doc, root, "timeouts");
    if (t && ((r = ydoc_expect_map(doc, t, "timeouts", timeout_keys, err)) < 0 ||
              (r = ydoc_duration_ms(doc, t, "timeouts", "connect", false, 100, 600000,
                                    &rf->connect_timeout_ms, err)) < 0 ||
              (r = ydoc_duration_ms(doc, t, "timeouts", "step", false, 1000, 24ull * 3600 * 1000,
                                    &rf->step_timeout_ms, err)) < 0))
        return r;
    rf->liveness_ms = CLIENT_LIVENESS_MS;
    if ((r = ydoc_duration_ms(doc, root, "", "liveness", false, 2000, 3600 * 1000, &rf->liveness_ms,
                              err)) < 0)
        return r;
    if (ydoc_get(doc, root, "min_healthy_time")) {
        if ((r = ydoc_duration_ms(doc, root, "", "min_healthy_time", false, 0, 3600 * 1000,
                                  &rf->min_healthy_ms, err)) < 0)
            return r;
        rf->min_healthy_set = true;
    }
    if (ydoc_get(doc, root, "healthy_deadline")) {
        if ((r = ydoc_duration_ms(doc, root, "", "healthy_deadline", false, 1000, 3600 * 1000,
                                  &rf->healthy_deadline_ms, err)) < 0)
            return r;
        rf->healthy_deadline_set = true;
    }
    return ydoc_duration_ms(doc, root, "", "progress_deadline", false, 1000, 24ull * 3600 * 1000,
                            &rf->progress_deadline_ms, err);
}

/* One node: its name, endpoint and (with curve, required) its agent's public key. */
static int load_node(ydoc_t *doc, const ynode_t *n, const char *where, bool curve,
                     rollout_node_t *node, baton_err_t *err)
{
    static const char *const node_keys[] = {"name", "endpoint", "public_key", NULL};
    char *key = NULL;
    int r;
    if ((r = ydoc_expect_map(doc, n, where, node_keys, err)) < 0 ||
        (r = ydoc_str(doc, n, where, "name", true, &node->name, err)) < 0 ||
        (r = ydoc_str(doc, n, where, "endpoint", true, &node->endpoint, err)) < 0 ||
        (r = ydoc_str(doc, n, where, "public_key", curve, &key, err)) < 0)
        return r;
    if (key && !transport_key_valid(key)) {
        free(key);
        return bad(doc, n, where, "public_key",
                   "must be the agent's Z85 public key (40 characters, from baton keygen)", err);
    }
    if (key)
        memcpy(node->public_key.z85, key, sizeof(node->public_key.z85));
    free(key);
    if (!plain_name(node->name))
        return bad(doc, n, where, "name", "must be 1-64 of [A-Za-z0-9_.-@]", err);
    if (strncmp(node->endpoint, "tcp://", 6) && strncmp(node->endpoint, "ipc://", 6))
        return bad(doc, n, where, "endpoint", "must be a tcp:// or ipc:// endpoint", err);
    if (!strncmp(node->endpoint, "tcp://", 6) && !tcp_endpoint_valid(node->endpoint + 6))
        return bad(doc, n, where, "endpoint", "must be tcp://HOST:PORT (port 1-65535)", err);
    return 0;
}

static int load_nodes(ydoc_t *doc, const ynode_t *root, const char *path, bool curve,
                      rollout_file_t *rf, baton_err_t *err)
{
    const ynode_t *nodes = ydoc_get(doc, root, "nodes");
    int r;
    if (!nodes)
        return baton_err_set(err, -EINVAL, "%s:%u: nodes: required key missing", path,
                             ydoc_line(root));
    if ((r = ydoc_expect_seq(doc, nodes, "nodes", ROLLOUT_NODES_MAX, err)) < 0)
        return r;
    rf->n_nodes = ydoc_seq_len(nodes);
    if (!(rf->nodes = calloc(rf->n_nodes, sizeof(*rf->nodes))))
        return baton_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < rf->n_nodes; i++) {
        char where[32];
        snprintf(where, sizeof(where), "nodes[%zu]", i);
        const ynode_t *n = ydoc_seq_item(doc, nodes, i);
        if ((r = load_node(doc, n, where, curve, &rf->nodes[i], err)) < 0)
            return r;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(rf->nodes[j].name, rf->nodes[i].name))
                return bad(doc, n, where, "name", "names a node twice", err);
    }
    return 0;
}

/* The coordinator's own key (curve.secret_key, relative to the rollout file), or, said out
 * loud, insecure: exactly one of them. */
static int load_curve_key(ydoc_t *doc, const ynode_t *root, const ynode_t *curve, const char *path,
                          const char *secret_path, rollout_file_t *rf, baton_err_t *err)
{
    if (!curve == !rf->insecure)
        return baton_err_set(err, -EINVAL, "%s:%u: %s", path, ydoc_line(curve ? curve : root),
                             curve ? "curve and insecure: true exclude each other"
                                   : "curve: required (secret_key: the coordinator's key file; "
                                     "each node's public_key), or insecure: true for plain text");
    if (!curve)
        return 0;
    char *dir = strdup(path), *full = NULL;
    int n = !dir                    ? -1
            : secret_path[0] == '/' ? asprintf(&full, "%s", secret_path)
                                    : asprintf(&full, "%s/%s", dirname(dir), secret_path);
    free(dir);
    if (n < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    int r = transport_read_secret(full, &rf->secret_key, &rf->public_key, err);
    free(full);
    if (r < 0)
        baton_err_prefix(err, "%s:%u: curve.secret_key", path,
                         ydoc_line(ydoc_get(doc, curve, "secret_key")));
    return r;
}

int rollout_file_load(const char *path, rollout_file_t **ret, baton_err_t *err)
{
    static const char *const keys[] = {"service",
                                       "version",
                                       "artifact",
                                       "sha256",
                                       "nodes",
                                       "timeouts",
                                       "liveness",
                                       "min_healthy_time",
                                       "healthy_deadline",
                                       "progress_deadline",
                                       "batches",
                                       "max_unavailable",
                                       "on_failure",
                                       "max_failures",
                                       "pause_after",
                                       "max_in_flight",
                                       "curve",
                                       "insecure",
                                       "restore_shared",
                                       "catalog",
                                       "rehearse",
                                       "notify",
                                       "webhooks",
                                       "analysis",
                                       NULL};
    static const char *const curve_keys[] = {"secret_key", NULL};
    ydoc_t *doc = NULL;
    char *secret_path = NULL;
    int r = ydoc_load(path, &doc, err);
    if (r < 0)
        return r;
    rollout_file_t *rf = calloc(1, sizeof(*rf));
    if (!rf || !(rf->path = strdup(path))) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    const ynode_t *root = ydoc_root(doc);
    if ((r = ydoc_expect_map(doc, root, "", keys, err)) < 0 ||
        (r = load_release(doc, root, path, rf, err)) < 0 ||
        (r = load_timing(doc, root, rf, err)) < 0 ||
        (r = load_strategy(doc, root, &rf->strategy, err)) < 0 ||
        (r = load_notify(doc, root, rf, err)) < 0 || (r = load_webhooks(doc, root, rf, err)) < 0 ||
        (r = load_analysis(doc, root, rf, err)) < 0)
        goto out;
    /* Whom the coordinator talks to: agents proving the key the file names, or, said out
     * loud, anyone at the endpoint. */
    const ynode_t *curve = ydoc_get(doc, root, "curve");
    if ((r = ydoc_bool(doc, root, "", "insecure", &rf->insecure, err)) < 0 ||
        (curve &&
         ((r = ydoc_expect_map(doc, curve, "curve", curve_keys, err)) < 0 ||
          (r = ydoc_str(doc, curve, "curve", "secret_key", true, &secret_path, err)) < 0)) ||
        (r = load_nodes(doc, root, path, curve != NULL, rf, err)) < 0 ||
        (r = load_curve_key(doc, root, curve, path, secret_path, rf, err)) < 0)
        goto out;
    *ret = rf;
    rf = NULL;
    r = 0;
out:
    free(secret_path);
    rollout_file_destroy(&rf);
    ydoc_destroy(&doc);
    return r;
}

void rollout_file_destroy(rollout_file_t **rf_p)
{
    if (!rf_p || !*rf_p)
        return;
    rollout_file_t *rf = *rf_p;
    for (size_t i = 0; rf->nodes && i < rf->n_nodes; i++) {
        free(rf->nodes[i].name);
        free(rf->nodes[i].endpoint);
    }
    free(rf->nodes);
    for (size_t i = 0; rf->notify && i < rf->n_notify; i++)
        free(rf->notify[i].url);
    free(rf->notify);
    for (size_t i = 0; rf->webhooks && i < rf->n_webhooks; i++)
        free(rf->webhooks[i].url);
    free(rf->webhooks);
    analysis_free(&rf->analysis);
    free(rf->path);
    free(rf->service);
    free(rf->version);
    free(rf->version_asked);
    free(rf->artifact);
    free(rf->sha256);
    catalog_destroy(&rf->catalog);
    free(rf);
    *rf_p = NULL;
}
