/* config: see config.h. Defaults mirror what a Nakama-style service needs. */
#include "config.h"
#include "conninfo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "names.h"
#include "ydoc.h"

#define MIN_MS 100
#define MAX_MS (24ull * 3600 * 1000)

static bool is_name(const char *s, size_t max)
{
    return name_valid(s, max);
}

static int check(ydoc_t *doc, const ynode_t *map, const char *where, const char *key, bool ok,
                 const char *what, baton_err_t *err)
{
    if (ok)
        return 0;
    const ynode_t *v = ydoc_get(doc, map, key);
    return baton_err_set(err, -EINVAL, "%s:%u: %s%s%s: %s", ydoc_path(doc), ydoc_line(v ? v : map),
                         where, *where ? "." : "", key, what);
}

static int set_default(char **field, const char *value)
{
    if (*field)
        return 0;
    *field = strdup(value);
    return *field ? 0 : -ENOMEM;
}

/* haproxy's names: letters, digits, '-', '_', '.', ':' (its configuration manual). */
static bool haproxy_name(const char *s)
{
    size_t n = strlen(s);
    return n && n <= 100 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == n;
}

static int load_haproxy(ydoc_t *doc, const ynode_t *node, const char *where, const char *node_name,
                        svc_config_t *s, baton_err_t *err)
{
    static const char *const keys[] = {"runtime_api",   "backend",    "server",
                                       "drain_timeout", "up_timeout", NULL};
    const ynode_t *h = ydoc_get(doc, node, "haproxy");
    if (!h)
        return 0;
    char sub[320];
    snprintf(sub, sizeof(sub), "%s.haproxy", where);
    haproxy_target_t *t = s->haproxy = calloc(1, sizeof(*t));
    if (!t)
        return baton_err_set(err, -ENOMEM, "out of memory");
    /* As Ansible's haproxy module waits: a minute for sessions to end, a minute to come UP. */
    t->drain_ms = 60000;
    t->up_ms = 60000;
    int r;
    if ((r = ydoc_expect_map(doc, h, sub, keys, err)) < 0 ||
        (r = ydoc_str(doc, h, sub, "runtime_api", true, &t->runtime_api, err)) < 0 ||
        (r = ydoc_str(doc, h, sub, "backend", true, &t->backend, err)) < 0 ||
        (r = ydoc_str(doc, h, sub, "server", false, &t->server, err)) < 0 ||
        (r = ydoc_duration_ms(doc, h, sub, "drain_timeout", false, 0, 3600 * 1000, &t->drain_ms,
                              err)) < 0 ||
        (r = ydoc_duration_ms(doc, h, sub, "up_timeout", false, 1000, 3600 * 1000, &t->up_ms,
                              err)) < 0)
        return r;
    if (!t->server && !(t->server = strdup(node_name)))
        return baton_err_set(err, -ENOMEM, "out of memory");
    const char *api = t->runtime_api, *colon = strrchr(api, ':');
    bool api_ok = api[0] == '/' ? strlen(api) < 108 /* sun_path */
                                : colon && colon != api && colon[1] &&
                                      strspn(colon + 1, "0123456789") == strlen(colon + 1);
    if ((r = check(doc, h, sub, "runtime_api", api_ok,
                   "must be the path of haproxy's stats socket or host:port (level admin)", err)) <
            0 ||
        (r = check(doc, h, sub, "backend", haproxy_name(t->backend),
                   "must be 1-100 of [A-Za-z0-9-_.:]", err)) < 0)
        return r;
    return check(doc, h, sub, "server", haproxy_name(t->server),
                 "must be 1-100 of [A-Za-z0-9-_.:] (default: the node's name)", err);
}

/* The service's settings that are strings (commands, paths), read as given; the hooks and the
 * pattern checked. */
static int load_service_strings(ydoc_t *doc, const ynode_t *node, const char *where,
                                svc_config_t *s, baton_err_t *err)
{
    static const char *const keys[] = {"name",
                                       "unit",
                                       "binary",
                                       "database",
                                       "passfile",
                                       "backup_dir",
                                       "keep_backups",
                                       "migrate_up",
                                       "migrate_down",
                                       "version_command",
                                       "migration_table",
                                       "list_migrations",
                                       "rehearse_migrate",
                                       "health",
                                       "timeouts",
                                       "pg_dump",
                                       "pg_restore",
                                       "psql",
                                       "min_healthy_time",
                                       "drain",
                                       "undrain",
                                       "artifact_scripts",
                                       "check",
                                       "release_dir",
                                       "keep_releases",
                                       "list_migrations_pattern",
                                       "haproxy",
                                       NULL};
    int r;
    if ((r = ydoc_expect_map(doc, node, where, keys, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "name", true, &s->name, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "unit", true, &s->unit, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "binary", true, &s->binary, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "database", true, &s->database, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "passfile", false, &s->passfile, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "backup_dir", true, &s->backup_dir, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "migrate_up", false, &s->migrate_up, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "migrate_down", false, &s->migrate_down, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "version_command", false, &s->version_command, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "migration_table", false, &s->migration_table, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "list_migrations", false, &s->list_migrations, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "rehearse_migrate", false, &s->rehearse_migrate, err)) <
            0 ||
        (r = ydoc_str(doc, node, where, "pg_dump", false, &s->pg_dump, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "pg_restore", false, &s->pg_restore, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "psql", false, &s->psql, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "drain", false, &s->drain, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "undrain", false, &s->undrain, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "check", false, &s->check, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "release_dir", false, &s->release_dir, err)) < 0 ||
        (r = ydoc_str(doc, node, where, "list_migrations_pattern", false,
                      &s->list_migrations_pattern, err)) < 0)
        return r;
    if (s->list_migrations_pattern) {
        int rc = regcomp(&s->list_migrations_re, s->list_migrations_pattern, REG_EXTENDED);
        if (rc != 0) {
            char why[160];
            regerror(rc, &s->list_migrations_re, why, sizeof(why));
            free(s->list_migrations_pattern); /* nothing compiled to free */
            s->list_migrations_pattern = NULL;
            return check(doc, node, where, "list_migrations_pattern", false, why, err);
        }
        if ((r = check(doc, node, where, "list_migrations_pattern", s->list_migrations != NULL,
                       "needs list_migrations (the command whose output it reads)", err)) < 0)
            return r;
    }
    if ((r = check(doc, node, where, "drain", !s->drain || s->drain[0] == '/',
                   "must start with an absolute path (it runs as root, without a shell)", err)) <
            0 ||
        (r = check(doc, node, where, "undrain", !s->undrain || s->undrain[0] == '/',
                   "must start with an absolute path (it runs as root, without a shell)", err)) < 0)
        return r;
    return 0;
}

/* Names and paths: what each must look like. */
static int check_service_paths(ydoc_t *doc, const ynode_t *node, const char *where, svc_config_t *s,
                               baton_err_t *err)
{
    int r;
    if ((r = check(doc, node, where, "name", is_name(s->name, 64),
                   "must be 1-64 of [A-Za-z0-9_.-@]", err)) < 0 ||
        (r = check(doc, node, where, "unit",
                   is_name(s->unit, 255) && strlen(s->unit) > 8 &&
                       !strcmp(s->unit + strlen(s->unit) - 8, ".service"),
                   "must be a unit name ending in .service", err)) < 0 ||
        (r = check(doc, node, where, "binary", s->binary[0] == '/', "must be an absolute path",
                   err)) < 0 ||
        (r = check(doc, node, where, "backup_dir", s->backup_dir[0] == '/',
                   "must be an absolute path", err)) < 0 ||
        (r = check(doc, node, where, "release_dir",
                   !s->release_dir || (s->release_dir[0] == '/' && strlen(s->release_dir) > 1 &&
                                       s->release_dir[strlen(s->release_dir) - 1] != '/'),
                   "must be an absolute path (without a trailing /)", err)) < 0 ||
        (r = check(doc, node, where, "passfile", !s->passfile || s->passfile[0] == '/',
                   "must be an absolute path", err)) < 0 ||
        (r = check(doc, node, where, "database", conninfo_parses(s->database),
                   "is not a libpq connection string", err)) < 0 ||
        (r = check(doc, node, where, "database", !conninfo_has_password(s->database),
                   "must not hold a password: use passfile", err)) < 0)
        return r;

    if (s->release_dir) {
        /* The unit runs the current release's binary: binary names it through `current`. */
        size_t dl = strlen(s->release_dir);
        const char *rel = s->binary + dl + strlen("/current/");
        bool under = !strncmp(s->binary, s->release_dir, dl) &&
                     !strncmp(s->binary + dl, "/current/", 9) && *rel && !strstr(rel, "..") &&
                     rel[strlen(rel) - 1] != '/';
        char want[128];
        snprintf(want, sizeof(want), "must be %.60s/current/PATH (the binary in a release)",
                 s->release_dir);
        if ((r = check(doc, node, where, "binary", under, want, err)) < 0)
            return r;
        s->release_rel = rel;
    }
    return 0;
}

/* The commands, with their defaults, and what each must pass. */
static int load_service_commands(ydoc_t *doc, const ynode_t *node, const char *where,
                                 svc_config_t *s, baton_err_t *err)
{
    int r;
    if (set_default(&s->migrate_up, "{binary} migrate up") < 0 ||
        set_default(&s->migrate_down, "{binary} migrate down --limit {n}") < 0 ||
        set_default(&s->version_command, "{binary} --version") < 0 ||
        set_default(&s->migration_table, "migration_info") < 0 ||
        set_default(&s->pg_dump, "pg_dump") < 0 || set_default(&s->pg_restore, "pg_restore") < 0 ||
        set_default(&s->psql, "psql") < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    if ((r = check(doc, node, where, "rehearse_migrate",
                   !s->rehearse_migrate || strstr(s->rehearse_migrate, "{database}") ||
                       strstr(s->rehearse_migrate, "{database_url}"),
                   "must pass the scratch database {database} or {database_url}", err)) < 0)
        return r;
    /* The database written once: a migrate_up that names it rehearses as it is. */
    if (!s->rehearse_migrate &&
        (strstr(s->migrate_up, "{database}") || strstr(s->migrate_up, "{database_url}")) &&
        !(s->rehearse_migrate = strdup(s->migrate_up)))
        return baton_err_set(err, -ENOMEM, "out of memory");
    /* Without an explicit limit some tools (nakama migrate down) revert everything. */
    if ((r = check(doc, node, where, "migrate_down", strstr(s->migrate_down, "{n}") != NULL,
                   "must pass the limit {n}", err)) < 0)
        return r;
    size_t tl = strlen(s->migration_table);
    if ((r = check(doc, node, where, "migration_table",
                   tl && tl <= 63 &&
                       strspn(s->migration_table, "abcdefghijklmnopqrstuvwxyz0123456789_") == tl,
                   "must be a lower-case SQL name", err)) < 0)
        return r;
    return 0;
}

/* health: exactly one of http or tcp, and the longest pause between probes. */
static int load_service_health(ydoc_t *doc, const ynode_t *node, const char *where, svc_config_t *s,
                               baton_err_t *err)
{
    static const char *const health_keys[] = {"http", "tcp", "interval", NULL};
    int r;
    char sub[320];
    const ynode_t *health = ydoc_get(doc, node, "health");
    snprintf(sub, sizeof(sub), "%s.health", where);
    if (!health)
        return baton_err_set(err, -EINVAL, "%s:%u: %s: required key missing", ydoc_path(doc),
                             ydoc_line(node), sub);
    if ((r = ydoc_expect_map(doc, health, sub, health_keys, err)) < 0 ||
        (r = ydoc_str(doc, health, sub, "http", false, &s->health_http, err)) < 0 ||
        (r = ydoc_str(doc, health, sub, "tcp", false, &s->health_tcp, err)) < 0)
        return r;
    /* The longest pause between probes; the first ones come sooner (probe.c). */
    s->health_interval_ms = 250;
    if ((r = ydoc_duration_ms(doc, health, sub, "interval", false, 10, 60 * 1000,
                              &s->health_interval_ms, err)) < 0)
        return r;
    if (!!s->health_http == !!s->health_tcp)
        return baton_err_set(err, -EINVAL, "%s:%u: %s: give exactly one of http or tcp",
                             ydoc_path(doc), ydoc_line(health), sub);
    if ((r = check(doc, health, sub, "http",
                   !s->health_http || !strncmp(s->health_http, "http://", 7) ||
                       !strncmp(s->health_http, "https://", 8),
                   "must be an http:// or https:// URL", err)) < 0 ||
        (r = check(doc, health, sub, "tcp", !s->health_tcp || strrchr(s->health_tcp, ':'),
                   "must be host:port", err)) < 0)
        return r;
    return 0;
}

/* timeouts: each step's, with its default. */
static int load_service_timeouts(ydoc_t *doc, const ynode_t *node, const char *where,
                                 svc_config_t *s, baton_err_t *err)
{
    static const char *const timeout_keys[] = {"stop",    "start", "dump",  "migrate", "verify",
                                               "restore", "hook",  "check", NULL};
    int r;
    char sub[320];
    s->timeout_stop_ms = 90000;
    s->timeout_start_ms = 90000;
    s->timeout_dump_ms = 30 * 60000;
    s->timeout_migrate_ms = 30 * 60000;
    s->timeout_verify_ms = 60000;
    s->timeout_restore_ms = 30 * 60000;
    s->timeout_hook_ms = 60000;
    s->timeout_check_ms = 60000;
    const ynode_t *t = ydoc_get(doc, node, "timeouts");
    if (t) {
        snprintf(sub, sizeof(sub), "%s.timeouts", where);
        if ((r = ydoc_expect_map(doc, t, sub, timeout_keys, err)) < 0 ||
            (r = ydoc_duration_ms(doc, t, sub, "stop", false, MIN_MS, MAX_MS, &s->timeout_stop_ms,
                                  err)) < 0 ||
            (r = ydoc_duration_ms(doc, t, sub, "start", false, MIN_MS, MAX_MS, &s->timeout_start_ms,
                                  err)) < 0 ||
            (r = ydoc_duration_ms(doc, t, sub, "dump", false, MIN_MS, MAX_MS, &s->timeout_dump_ms,
                                  err)) < 0 ||
            (r = ydoc_duration_ms(doc, t, sub, "migrate", false, MIN_MS, MAX_MS,
                                  &s->timeout_migrate_ms, err)) < 0 ||
            (r = ydoc_duration_ms(doc, t, sub, "verify", false, MIN_MS, MAX_MS,
                                  &s->timeout_verify_ms, err)) < 0 ||
            (r = ydoc_duration_ms(doc, t, sub, "restore", false, MIN_MS, MAX_MS,
                                  &s->timeout_restore_ms, err)) < 0 ||
            (r = ydoc_duration_ms(doc, t, sub, "hook", false, MIN_MS, MAX_MS, &s->timeout_hook_ms,
                                  err)) < 0 ||
            (r = ydoc_duration_ms(doc, t, sub, "check", false, MIN_MS, MAX_MS, &s->timeout_check_ms,
                                  err)) < 0)
            return r;
    }
    return 0;
}

static int load_service(ydoc_t *doc, const ynode_t *node, const char *where, const char *node_name,
                        svc_config_t *s, baton_err_t *err)
{
    int r;
    if ((r = load_service_strings(doc, node, where, s, err)) < 0)
        return r;
    if ((r = ydoc_bool(doc, node, where, "artifact_scripts", &s->artifact_scripts, err)) < 0 ||
        (r = load_haproxy(doc, node, where, node_name, s, err)) < 0)
        return r;
    s->keep_releases = 3;
    if ((r = ydoc_uint(doc, node, where, "keep_releases", false, 2, 1000, &s->keep_releases, err)) <
        0)
        return r;
    s->keep_backups = 3;
    if ((r = ydoc_uint(doc, node, where, "keep_backups", false, 1, 1000, &s->keep_backups, err)) <
        0)
        return r;
    if ((r = check_service_paths(doc, node, where, s, err)) < 0 ||
        (r = load_service_commands(doc, node, where, s, err)) < 0 ||
        (r = load_service_health(doc, node, where, s, err)) < 0)
        return r;
    /* As Nomad's update block: 10 s of health after the first good probe. */
    s->min_healthy_ms = 10000;
    if ((r = ydoc_duration_ms(doc, node, where, "min_healthy_time", false, 0, 3600 * 1000,
                              &s->min_healthy_ms, err)) < 0)
        return r;
    if (s->passfile) {
        if (asprintf(&s->pg_env_buf, "PGPASSFILE=%s", s->passfile) < 0)
            return baton_err_set(err, -ENOMEM, "out of memory");
        s->pg_env[0] = s->pg_env_buf;
    }
    return load_service_timeouts(doc, node, where, s, err);
}

/* pull: how artifacts named by URL are fetched (pull.h): through a proxy, against a CA file, at
 * most so many bytes a second. */
static int load_pull(ydoc_t *doc, const ynode_t *root, agent_config_t *c, baton_err_t *err)
{
    static const char *const keys[] = {"proxy", "ca_file", "max_bytes_per_sec", NULL};
    const ynode_t *pull = ydoc_get(doc, root, "pull");
    int r;
    if (!pull)
        return 0;
    if ((r = ydoc_expect_map(doc, pull, "pull", keys, err)) < 0 ||
        (r = ydoc_str(doc, pull, "pull", "proxy", false, &c->pull_proxy, err)) < 0 ||
        (r = ydoc_str(doc, pull, "pull", "ca_file", false, &c->pull_ca_file, err)) < 0 ||
        (r = ydoc_uint(doc, pull, "pull", "max_bytes_per_sec", false, 1024, 1ull << 40,
                       &c->pull_max_bytes_per_sec, err)) < 0)
        return r;
    return check(doc, pull, "pull", "ca_file", !c->pull_ca_file || c->pull_ca_file[0] == '/',
                 "must be an absolute path", err);
}

int agent_config_load(const char *path, agent_config_t **ret_cfg, baton_err_t *err)
{
    static const char *const keys[] = {"node",     "listen",      "state_dir", "services", "curve",
                                       "insecure", "metrics_dir", "pull",      NULL};
    static const char *const curve_keys[] = {"secret_key", "authorized_keys", NULL};
    ydoc_t *doc = NULL;
    int r = ydoc_load(path, &doc, err);
    if (r < 0)
        return r;
    agent_config_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->path = strdup(path))) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    const ynode_t *root = ydoc_root(doc);
    if ((r = ydoc_expect_map(doc, root, "", keys, err)) < 0 ||
        (r = ydoc_str(doc, root, "", "node", false, &c->node_name, err)) < 0 ||
        (r = ydoc_str(doc, root, "", "listen", true, &c->listen, err)) < 0 ||
        (r = ydoc_str(doc, root, "", "state_dir", false, &c->state_dir, err)) < 0 ||
        (r = ydoc_str(doc, root, "", "metrics_dir", false, &c->metrics_dir, err)) < 0 ||
        (r = ydoc_bool(doc, root, "", "insecure", &c->insecure, err)) < 0)
        goto out;
    /* Whom the agent obeys: listed coordinators over CURVE, or, said out loud, anyone. */
    const ynode_t *curve = ydoc_get(doc, root, "curve");
    if (curve &&
        ((r = ydoc_expect_map(doc, curve, "curve", curve_keys, err)) < 0 ||
         (r = ydoc_str(doc, curve, "curve", "secret_key", true, &c->secret_key, err)) < 0 ||
         (r = ydoc_str(doc, curve, "curve", "authorized_keys", true, &c->authorized_keys, err)) <
             0))
        goto out;
    if ((r = load_pull(doc, root, c, err)) < 0)
        goto out;
    if (!curve == !c->insecure) {
        r = baton_err_set(err, -EINVAL, "%s:%u: %s", path, ydoc_line(curve ? curve : root),
                          curve ? "curve and insecure: true exclude each other"
                                : "curve: required (secret_key and authorized_keys: the "
                                  "coordinators it obeys), or insecure: true for plain text");
        goto out;
    }
    if (curve && ((r = check(doc, curve, "curve", "secret_key", c->secret_key[0] == '/',
                             "must be an absolute path", err)) < 0 ||
                  (r = check(doc, curve, "curve", "authorized_keys", c->authorized_keys[0] == '/',
                             "must be an absolute path", err)) < 0))
        goto out;
    if (!c->node_name) {
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        c->node_name = strdup(host);
    }
    if (set_default(&c->state_dir, "/var/lib/baton") < 0) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if ((r = check(doc, root, "", "state_dir", c->state_dir[0] == '/', "must be an absolute path",
                   err)) < 0 ||
        (r = check(doc, root, "", "metrics_dir", !c->metrics_dir || c->metrics_dir[0] == '/',
                   "must be an absolute path", err)) < 0 ||
        (r = check(doc, root, "", "listen",
                   !strncmp(c->listen, "tcp://", 6) || !strncmp(c->listen, "ipc://", 6),
                   "must be a tcp:// or ipc:// endpoint", err)) < 0 ||
        (r = check(doc, root, "", "node", c->node_name && is_name(c->node_name, 64),
                   "must be 1-64 of [A-Za-z0-9_.-@]", err)) < 0)
        goto out;

    const ynode_t *svcs = ydoc_get(doc, root, "services");
    if (!svcs) {
        r = baton_err_set(err, -EINVAL, "%s:%u: services: required key missing", path,
                          ydoc_line(root));
        goto out;
    }
    if ((r = ydoc_expect_seq(doc, svcs, "services", AGENT_SERVICES_MAX, err)) < 0)
        goto out;
    c->n_services = ydoc_seq_len(svcs);
    c->services = calloc(c->n_services, sizeof(*c->services));
    if (!c->services) {
        r = baton_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < c->n_services; i++) {
        char where[32];
        snprintf(where, sizeof(where), "services[%zu]", i);
        const ynode_t *item = ydoc_seq_item(doc, svcs, i);
        if ((r = load_service(doc, item, where, c->node_name, &c->services[i], err)) < 0)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(c->services[j].name, c->services[i].name)) {
                r = baton_err_set(err, -EINVAL, "%s:%u: %s.name: '%s' is already used", path,
                                  ydoc_line(ydoc_get(doc, item, "name")), where,
                                  c->services[i].name);
                goto out;
            }
            /* One `current` and one set of releases per service: each prunes its own. */
            if (c->services[i].release_dir && c->services[j].release_dir &&
                !strcmp(c->services[j].release_dir, c->services[i].release_dir)) {
                r = baton_err_set(err, -EINVAL, "%s:%u: %s.release_dir: %s is also %s's", path,
                                  ydoc_line(ydoc_get(doc, item, "release_dir")), where,
                                  c->services[i].release_dir, c->services[j].name);
                goto out;
            }
        }
    }
    *ret_cfg = c;
    c = NULL;
out:
    agent_config_destroy(&c);
    ydoc_destroy(&doc);
    return r;
}

static void svc_free(svc_config_t *s)
{
    if (s->list_migrations_pattern)
        regfree(&s->list_migrations_re);
    if (s->haproxy) {
        free(s->haproxy->runtime_api);
        free(s->haproxy->backend);
        free(s->haproxy->server);
        free(s->haproxy);
        s->haproxy = NULL;
    }
    char **fields[] = {&s->name,
                       &s->unit,
                       &s->binary,
                       &s->database,
                       &s->passfile,
                       &s->backup_dir,
                       &s->migrate_up,
                       &s->migrate_down,
                       &s->version_command,
                       &s->migration_table,
                       &s->health_http,
                       &s->health_tcp,
                       &s->pg_dump,
                       &s->pg_restore,
                       &s->psql,
                       &s->pg_env_buf,
                       &s->drain,
                       &s->undrain,
                       &s->list_migrations,
                       &s->rehearse_migrate,
                       &s->check,
                       &s->release_dir,
                       &s->list_migrations_pattern};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
}

void agent_config_destroy(agent_config_t **cfg_p)
{
    if (!cfg_p || !*cfg_p)
        return;
    agent_config_t *c = *cfg_p;
    for (size_t i = 0; c->services && i < c->n_services; i++)
        svc_free(&c->services[i]);
    free(c->services);
    free(c->path);
    free(c->node_name);
    free(c->listen);
    free(c->state_dir);
    free(c->metrics_dir);
    free(c->pull_proxy);
    free(c->pull_ca_file);
    free(c->secret_key);
    free(c->authorized_keys);
    free(c);
    *cfg_p = NULL;
}

const svc_config_t *agent_config_service(const agent_config_t *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->n_services; i++)
        if (!strcmp(cfg->services[i].name, name))
            return &cfg->services[i];
    return NULL;
}
