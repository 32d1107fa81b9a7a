/* step: the narrow context every step of a rollout gets, and the steps themselves.
 *
 * A step (agent/steps/step_NAME.c: step_dump.c dumps the database) reads the service's config and
 * state from its context, does its work, records what it did in the state, and fills
 * `ctx->out` for the Result. It returns 0 or a negative errno with `err` saying why. Steps run
 * on the agent's worker thread; they touch nothing but their context, so a step can be
 * unit-tested or reused on its own. Which step may follow which is decided elsewhere
 * (common/steps.c), before a step is ever called. */
#ifndef BATON_AGENT_STEP_H
#define BATON_AGENT_STEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "baton.pb-c.h"

struct pg_conn;
#include "config.h"
#include "err.h"
#include "state.h"
#include "steps.h"

/* What a step reports back, beyond success or failure. */
struct step_out {
    char version[128];  /* version now running (verify, rollback) */
    bool restored_dump; /* rollback restored the dump */
    char schema[256];   /* rollback: what it did to the schema, for the operator */
    bool have_dump;     /* the state's dump is to be reported */
    char **applied;     /* ids added (owned) */
    size_t n_applied;
    char **removed; /* ids removed (owned) */
    size_t n_removed;
    Baton__PlanInfo *plan; /* plan: what a pre-flight would find (owned) */
    char **ids;            /* migrate: every bookkeeping id afterwards (owned) */
    size_t n_ids;
    bool shared;          /* dump, migrate: skipped, another node of the rollout did it */
    bool restore_needed;  /* rollback: only the dump brings the schema back; no_restore said no */
    uint64_t rehearse_ms; /* preflight with rehearse: the migration's time on the copy */
    char **unit_log;      /* a failed start, verify or rollback: the unit's own words (owned) */
    size_t n_unit_log;
};

typedef struct step_ctx {
    const agent_config_t *cfg;   /* the agent's configuration */
    const svc_config_t *svc;     /* the service the step acts on */
    svc_state_t *st;             /* its state, saved by the caller before and after */
    const Baton__Envelope *req;  /* the command (a Step or Migrate body) */
    const char *rollout_id;      /* the command's rollout, for logs and file names */
    const char *step;            /* the step's name, for logs */
    const char *pidfile;         /* records a running tool for crash recovery; NULL: not kept */
    sd_bus **bus;                /* this thread's connection to systemd, opened on first use */
    struct pg_conn **db_lock;    /* the service's migration lock (db_lock.h) while held, kept by
                                  * the worker from the stop or dump to the migration's Result;
                                  * NULL in contexts that never take it */
    struct pg_conn **db_session; /* after the migration: the lock's connection, unlocked, kept
                                  * by the worker for the next step (the start's schema check);
                                  * NULL or *NULL: none */
    void (*on_progress)(void *userdata, const char *msg); /* NULL or gets each progress line */
    void (*on_tick)(void *userdata); /* NULL or called at least once a second while waiting */
    void *userdata;                  /* for the two callbacks */
    uint64_t min_healthy_ms;         /* verify: how long the service must stay healthy */
    uint64_t healthy_deadline_ms;    /* verify: how long the first good probe may take */
    struct step_out out;             /* for the Result */
} step_ctx_t;

void step_progress(step_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Tells the caller the step is alive (fits proc and unit tick hooks: takes the ctx). */
void step_tick(void *ctx);
/* CLOCK_MONOTONIC in milliseconds, for a step's own deadlines. */
uint64_t step_now_ms(void);
int step_bus(step_ctx_t *ctx, sd_bus **ret_bus, baton_err_t *err);
void step_log(step_ctx_t *ctx, int priority, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void step_out_clear(struct step_out *out);
/* Takes the service's migration lock for this rollout unless this worker holds it already. */
int step_lock(step_ctx_t *ctx, baton_err_t *err);
/* The bookkeeping table's ids, on the migration lock's connection while it is held (else a new
 * one): db_migration_ids(). */
int step_migration_ids(step_ctx_t *ctx, char ***ret_ids, size_t *ret_n, baton_err_t *err);
/* The bookkeeping table's ids now, on the worker's kept session when there is one (else a new
 * connection, and no waiting for a database that does not answer): db_migration_ids(). */
int step_ids_now(step_ctx_t *ctx, char ***ret_ids, size_t *ret_n, baton_err_t *err);

typedef int (*step_fn)(step_ctx_t *ctx, baton_err_t *err);

/* A dump of `service` in its backup folder: exactly SERVICE+ROLLOUT_ID.dump, as step_dump names
 * them (commit prunes them, metrics count them, by this one rule). */
bool step_backup_name(const char *service, const char *name);

int step_preflight(step_ctx_t *ctx, baton_err_t *err);
int step_stop(step_ctx_t *ctx, baton_err_t *err);
int step_dump(step_ctx_t *ctx, baton_err_t *err);
int step_swap(step_ctx_t *ctx, baton_err_t *err);
int step_migrate(step_ctx_t *ctx, baton_err_t *err);
int step_start(step_ctx_t *ctx, baton_err_t *err);
int step_verify(step_ctx_t *ctx, baton_err_t *err);
int step_commit(step_ctx_t *ctx, baton_err_t *err);
/* The load balancer (balancer.c): the node out of service before its unit stops (haproxy
 * drained to no session, then the drain hook), and back in once it verified (the undrain
 * hook, then haproxy ready until it reports the server UP). */
int balancer_out(step_ctx_t *ctx, baton_err_t *err);
/* The pre-flight's and plan's check of it: haproxy answers, has the server, not in MAINT. */
int balancer_check(step_ctx_t *ctx, baton_err_t *err);
int balancer_in(step_ctx_t *ctx, baton_err_t *err);
int step_rollback(step_ctx_t *ctx, baton_err_t *err);
/* Not a step of the table: `baton plan`'s read-only pre-flight (ctx->st is NULL); fills
 * ctx->out.plan and fails only when it cannot answer at all. */
int step_plan(step_ctx_t *ctx, baton_err_t *err);
void plan_info_free(Baton__PlanInfo **p_p);
/* The rehearsal (rehearse.c): the new `binary`'s migrate up on a scratch copy of the database,
 * timed into *ret_ms; the copy is dropped whatever happens. */
int rehearse(step_ctx_t *ctx, const char *binary, uint64_t *ret_ms, baton_err_t *err);
/* Records `version` as the highest ever deployed when it is (semver order). */
int raise_highest(svc_state_t *st, const char *version);
/* Restores the dump at `path`, whose digest must be `sha256` when given (step_dump.c). */
int dump_restore_file(step_ctx_t *ctx, const char *path, const char *sha256, baton_err_t *err);
/* Room a dump of a database of db_bytes needs in the backup folder; and -ENOSPC, saying so in
 * the pre-flight's and plan's one sentence, when free_bytes in `dir` are fewer. */
uint64_t dump_room(uint64_t db_bytes);
int dump_room_check(const char *dir, uint64_t free_bytes, uint64_t db_bytes, baton_err_t *err);
/* The new binary of the staged artifact, ready to run, and checked as the pre-flight checks it
 * (and plan, by the same call): the release unpacked (with release_dir: its name in
 * ret_release), a program for this node that says req->version, the service's `check` passing.
 * 0, or the first refusal; ret_bin is not to be run then. */
int new_binary_check(step_ctx_t *ctx, const Baton__Step *req, const char *staged, char *ret_release,
                     size_t release_len, char *ret_bin, size_t bin_len, baton_err_t *err);
/* A downgrade (req->downgrade or req->restore_dump) goes only to a version this node ran, to
 * a dump taken here at that version, or to ids the database still has: 0 with st's downgrade
 * fields set (the pre-flight saves them, plan throws its copy away), or the refusal. The one
 * check both plan and pre-flight run. `current` is the running version, `ids` the database's. */
int downgrade_check(step_ctx_t *ctx, svc_state_t *st, const Baton__Step *req, const char *current,
                    char **ids, size_t n_ids, baton_err_t *err);

/* The step function of a table entry (NULL for none). */
step_fn step_function(step_id_t id);

/* Shared databases (step_dump.c): true when both sorted lists are the same; and a check that
 * the bookkeeping table holds exactly `expect` (filling ctx->out.ids), -ESTALE when not. */
bool ids_equal(char **a, size_t na, char **b, size_t nb);
int shared_check(step_ctx_t *ctx, char **expect, size_t n_expect, baton_err_t *err);
/* The same against what `version` had here (a downgrade), or the shared node when NULL. */
int shared_check_ids(step_ctx_t *ctx, char **expect, size_t n_expect, const char *version,
                     baton_err_t *err);

/* Parts the rollback reuses. */
int dump_restore(step_ctx_t *ctx, baton_err_t *err);
int swap_back(step_ctx_t *ctx, baton_err_t *err);
/* The rollout's new binary: the staged file, or the binary in the release it installs. */
int swap_new_binary(step_ctx_t *ctx, char *buf, size_t len, baton_err_t *err);
/* The binary that ran before the rollout, wherever it is now: kept aside by the swap, in the
 * previous release, or still in place when no swap happened. */
int swap_old_binary(step_ctx_t *ctx, char *buf, size_t len, baton_err_t *err);
/* Runs migrate up, or down with `limit`, using `binary`; records ids before the first run and
 * what was applied; fills ctx->out. */
int migrate_run(step_ctx_t *ctx, bool up, unsigned limit, const char *binary, baton_err_t *err);
/* Unit active, healthy for ctx->min_healthy_ms after its first good probe, and reporting
 * `version` (not checked when NULL or ""). */
int verify_running(step_ctx_t *ctx, const char *version, baton_err_t *err);

#endif
