/* config: the agent's configuration file (/etc/baton/agent.yml), read and checked whole. */
#ifndef BATON_AGENT_CONFIG_H
#define BATON_AGENT_CONFIG_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "haproxy.h"

#define AGENT_SERVICES_MAX 32

typedef struct svc_config {
    char *name;              /* service name the coordinator uses */
    char *unit;              /* systemd unit, e.g. gamesrv.service */
    char *binary;            /* the binary an upgrade replaces (with release_dir: the one the unit
                              * runs, RELEASE_DIR/current/REL) */
    char *release_dir;       /* NULL, or where whole releases live side by side (release.h): the
                              * artifact is then a release archive */
    const char *release_rel; /* with release_dir: the binary's path inside a release (in binary) */
    uint64_t keep_releases;  /* releases kept after a commit (the current one among them) */
    char *database;          /* libpq conninfo; never holds the password */
    char *passfile;          /* NULL or a pgpass file (PGPASSFILE for children) */
    char *backup_dir;        /* where dumps go */
    uint64_t keep_backups;   /* dumps kept per service after a commit */
    /* Command templates: {binary} the binary the command is about, {database} the database
     * below (a conninfo, one word), {database_url} the same as a postgres:// URL. */
    char *migrate_up;       /* command template: {binary} */
    char *migrate_down;     /* command template: {binary} and {n} (required) */
    char *check;            /* NULL or a command that checks the staged binary before anything
                             * stops (pre-flight and plan): Nakama's `check --runtime.path` */
    char *version_command;  /* command template printing the version */
    char *migration_table;  /* bookkeeping table of applied migration ids */
    char *rehearse_migrate; /* NULL or migrate up against another database ({database} or
                             * {database_url}): the rehearsal on a scratch copy (rehearse: true);
                             * by default migrate_up when that names the database */
    char *list_migrations;  /* NULL or a command template printing, one a line, the migration
                             * ids a binary ships: no binary starts on a schema it does not know */
    char *list_migrations_pattern; /* NULL, or a POSIX extended regex: only lines of
                                    * list_migrations' output that match are ids (group 1, or the
                                    * match), for tools that print more than ids (Nakama's
                                    * `migrate status` log lines) */
    regex_t list_migrations_re;    /* compiled, when the pattern is given */
    char *health_http;             /* URL answering 2xx when healthy, or NULL */
    char *health_tcp;              /* host:port accepting connections when healthy, or NULL */
    char *pg_dump;                 /* tool paths (looked up in PATH unless absolute) */
    char *pg_restore;
    char *psql;
    char *drain;               /* NULL or a command run before the unit stops (take it out of the
                                * load balancer, tell players); a failure stops the upgrade there */
    char *undrain;             /* NULL or a command run once the service verified (back in) */
    haproxy_target_t *haproxy; /* NULL, or its haproxy server, drained and put back by the
                                * agent (balancer.c) */
    bool artifact_scripts;     /* a `#!` script may be the artifact (default: ELF programs only) */
    const char *pg_env[2];     /* {"PGPASSFILE=...", NULL} for tools, or {NULL} */
    char *pg_env_buf;          /* owns pg_env[0] */
    uint64_t min_healthy_ms;   /* verify: how long it must stay healthy (min_healthy_time) */
    uint64_t health_interval_ms; /* verify: the longest pause between probes (health.interval) */
    uint64_t timeout_stop_ms, timeout_start_ms, timeout_dump_ms, timeout_migrate_ms,
        timeout_verify_ms, timeout_restore_ms, timeout_hook_ms, timeout_check_ms; /* deadlines */
} svc_config_t;

typedef struct agent_config {
    char *path;            /* the file it came from */
    char *node_name;       /* this node's name (default: hostname) */
    char *listen;          /* ZeroMQ endpoint the ROUTER binds */
    char *state_dir;       /* persistent state and staged binaries */
    char *metrics_dir;     /* node_exporter's textfile folder (metrics.h), or NULL */
    char *secret_key;      /* curve: this agent's secret key file */
    char *authorized_keys; /* curve: the coordinators' public keys it obeys */
    bool insecure;         /* plain text, no authentication (explicit, warned about) */
    char *pull_proxy;      /* pull: proxy for artifacts pulled by URL (libcurl's syntax), or NULL */
    char *pull_ca_file;    /* pull: CA bundle an https:// mirror is checked against, or NULL */
    uint64_t pull_max_bytes_per_sec; /* pull: bandwidth cap per pull, 0 = none */
    size_t n_services;               /* entries in services */
    svc_config_t *services;          /* managed services */
} agent_config_t;

int agent_config_load(const char *path, agent_config_t **ret_cfg, baton_err_t *err);
void agent_config_destroy(agent_config_t **cfg_p);
/* The service called name, or NULL. */
const svc_config_t *agent_config_service(const agent_config_t *cfg, const char *name);

#endif
