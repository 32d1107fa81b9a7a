/* agent: the state of a running baton-agent and the steps it performs.
 *
 * One thread. A command arrives on the ROUTER, is checked, and its step runs to the end while
 * Progress messages stream back to the same peer; then exactly one Result goes back. Each step
 * lives in its own file (step_dump.c dumps the database) and has the same shape: it reads the
 * service's config and state, does its work, records what it did in the state, and fills
 * `step_out` for the Result. A step returns 0 or a negative errno with `err` saying why. */
#ifndef BATON_AGENT_H
#define BATON_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <zmq.h>

#include "baton.pb-c.h"
#include "config.h"
#include "digest.h"
#include "err.h"
#include "state.h"

struct pg_conn;

#define BATON_AGENT_VERSION "0.1.0"

/* A binary being received in Stage chunks. */
struct staging {
    int fd;                          /* open .partial file, -1 when none */
    char *service;                   /* service it is for */
    char sha256[DIGEST_HEX_LEN + 1]; /* announced digest */
    uint64_t size;                   /* announced size */
    uint64_t received;               /* bytes written so far */
    digest_t digest;                 /* running digest of what was received */
};

typedef struct agent {
    agent_config_t *cfg;    /* configuration */
    void *zctx;             /* ZeroMQ context */
    void *router;           /* ROUTER socket the coordinator talks to */
    zmq_msg_t peer;         /* identity frame of the request being served */
    bool have_peer;         /* peer holds an identity */
    uint64_t request_id;    /* id of the request being served */
    const char *rollout_id; /* its rollout id (borrowed from the request) */
    const char *step;       /* name of the step being served */
    const char *service;    /* service it acts on */
    sd_bus *bus;            /* connection to systemd, opened on first use */
    uint64_t watchdog_usec; /* WatchdogSec from systemd, 0 when off */
    uint64_t last_ping;     /* when we last sent WATCHDOG=1 (monotonic usec) */
    struct staging stage;   /* binary being staged */
} agent_t;

/* What a step reports back, beyond success or failure. */
struct step_out {
    char version[128];  /* version now running (verify, rollback) */
    bool restored_dump; /* rollback restored the dump */
    bool have_dump;     /* the state's dump is to be reported */
    char **applied;     /* ids added (owned) */
    size_t n_applied;
    char **removed; /* ids removed (owned) */
    size_t n_removed;
};

/* ---- helpers every step may use (agent.c, log.c) ---- */
void agent_progress(agent_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void agent_tick(void *agent); /* pings the watchdog when due; fits proc/unit tick hooks */
int agent_bus(agent_t *a, sd_bus **ret_bus, baton_err_t *err);
/* STATE_DIR/running.pid: the tool running now, for proc's crash recovery. */
const char *agent_pidfile(const agent_t *a);
void agent_log(agent_t *a, int priority, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- database (db.c) ---- */
/* Connects with the service's conninfo and passfile. The connection is the caller's. */
int db_connect(const svc_config_t *svc, struct pg_conn **ret_conn, baton_err_t *err);
/* The bookkeeping table's ids, sorted; a missing table gives an empty list. */
int db_migration_ids(const svc_config_t *svc, char ***ret_ids, size_t *ret_n, baton_err_t *err);
int db_size(const svc_config_t *svc, uint64_t *ret_bytes, baton_err_t *err);

/* ---- commands (command.c) ---- */
/* Splits a template on spaces and fills {binary} and {n}; the argv is the caller's. */
int command_argv(const char *tmpl, const char *binary, unsigned n, char ***ret_argv,
                 baton_err_t *err);
void command_argv_free(char ***argv_p);
/* Runs argv (with the service's database environment when svc is given) and fails unless it
 * exited 0 within timeout_ms; the error reads "WHAT: exit code 1: <last line>". *ret_res
 * (may be NULL) gets the output tail. */
struct proc_result;
int command_run(agent_t *a, const svc_config_t *svc, const char *const *argv, uint64_t timeout_ms,
                const char *what, struct proc_result *ret_res, baton_err_t *err);
/* Environment for tools that reach the database (PGPASSFILE), NULL-terminated, static. */
const char *const *command_pg_env(const svc_config_t *svc);
/* Runs the version command of `binary` and returns its first word (the caller's). */
int command_version(agent_t *a, const svc_config_t *svc, const char *binary, char **ret_version,
                    baton_err_t *err);
/* True when `reported` (what --version printed) is `version`: equal, or version followed by
 * '+', '-' or a space (build metadata, as in "3.21.0+7d6b5c"). */
bool version_matches(const char *reported, const char *version);

/* ---- paths (command.c) ---- */
/* STATE_DIR/staging/SERVICE/SHA256: where a verified staged binary lives. */
int staged_path(const agent_t *a, const char *service, const char *sha256, char *buf, size_t len,
                baton_err_t *err);

/* ---- steps ---- */
int step_stage(agent_t *a, const Baton__Stage *req, baton_err_t *err);
int step_preflight(agent_t *a, const svc_config_t *svc, svc_state_t *st, const Baton__Step *req,
                   baton_err_t *err);
int step_stop(agent_t *a, const svc_config_t *svc, svc_state_t *st, baton_err_t *err);
int step_dump(agent_t *a, const svc_config_t *svc, svc_state_t *st, baton_err_t *err);
int dump_restore(agent_t *a, const svc_config_t *svc, const svc_state_t *st, baton_err_t *err);
int step_swap(agent_t *a, const svc_config_t *svc, svc_state_t *st, baton_err_t *err);
int swap_back(agent_t *a, const svc_config_t *svc, svc_state_t *st, baton_err_t *err);
int step_migrate(agent_t *a, const svc_config_t *svc, svc_state_t *st, const Baton__Migrate *req,
                 struct step_out *out, baton_err_t *err);
int step_start(agent_t *a, const svc_config_t *svc, svc_state_t *st, baton_err_t *err);
int step_verify(agent_t *a, const svc_config_t *svc, svc_state_t *st, const char *version,
                struct step_out *out, baton_err_t *err);
int step_rollback(agent_t *a, const svc_config_t *svc, svc_state_t *st, struct step_out *out,
                  baton_err_t *err);
int step_commit(agent_t *a, const svc_config_t *svc, svc_state_t *st, baton_err_t *err);
/* Fills a Hello about this node; free with hello_free(). */
int hello_build(agent_t *a, Baton__Hello **ret_hello, baton_err_t *err);
void hello_free(Baton__Hello **hello_p);

#endif
