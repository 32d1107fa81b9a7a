/* step: the helpers every step uses, and the table from step to function. */
#include "step.h"
#include "clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db.h"
#include "db_lock.h"
#include "log.h"
#include "unit.h"

uint64_t step_now_ms(void)
{
    return mono_ms();
}

void step_progress(step_ctx_t *ctx, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_trim_partial(msg);
    log_event(ctx->svc ? ctx->svc->name : NULL, ctx->rollout_id, ctx->step, 6, "%s", msg);
    if (ctx->on_progress)
        ctx->on_progress(ctx->userdata, msg);
}

void step_tick(void *c)
{
    step_ctx_t *ctx = c;
    if (ctx->on_tick)
        ctx->on_tick(ctx->userdata);
}

int step_bus(step_ctx_t *ctx, sd_bus **ret_bus, baton_err_t *err)
{
    if (!*ctx->bus) {
        int r = unit_bus_open(ctx->bus, err);
        if (r < 0)
            return r;
    }
    *ret_bus = *ctx->bus;
    return 0;
}

void step_log(step_ctx_t *ctx, int priority, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_event(ctx->svc ? ctx->svc->name : NULL, ctx->rollout_id, ctx->step, priority, "%s", msg);
}

void step_out_clear(struct step_out *out)
{
    svc_state_clear_list(&out->applied, &out->n_applied);
    svc_state_clear_list(&out->removed, &out->n_removed);
    svc_state_clear_list(&out->ids, &out->n_ids);
    svc_state_clear_list(&out->unit_log, &out->n_unit_log);
    plan_info_free(&out->plan);
}

/* A rollback is what puts the node back: a database away for a while (a restart, a failover)
 * is waited for, within the migration timeout, saying so every 10 s, instead of leaving the
 * node stopped on the new binary. Forward steps fail at once (and are rolled back). */
struct db_wait {
    uint64_t start, next_say, wait_ms;
};
static bool db_wait_again(step_ctx_t *ctx, struct db_wait *w, baton_err_t *err)
{
    if (strcmp(ctx->step, "rollback"))
        return false;
    uint64_t now = step_now_ms();
    if (!w->start)
        w->start = now, w->wait_ms = 250;
    if (now - w->start >= ctx->svc->timeout_migrate_ms)
        return false;
    if (now >= w->next_say) {
        step_progress(ctx, "%s; trying again (%llu s of %llu)", err->msg,
                      (unsigned long long)((now - w->start) / 1000),
                      (unsigned long long)(ctx->svc->timeout_migrate_ms / 1000));
        w->next_say = now + 10000;
    }
    for (uint64_t until = now + w->wait_ms; step_now_ms() < until;) {
        step_tick(ctx);
        usleep(100 * 1000);
    }
    w->wait_ms = w->wait_ms < 2500 ? w->wait_ms * 2 : 5000;
    baton_err_clear(err);
    return true;
}

int step_lock(step_ctx_t *ctx, baton_err_t *err)
{
    if (!ctx->db_lock || *ctx->db_lock)
        return 0;
    struct db_wait w = {0};
    int r;
    while ((r = db_lock_take(ctx->svc, ctx->cfg->node_name, ctx->rollout_id, ctx->db_lock, err)) ==
               -ECONNREFUSED &&
           db_wait_again(ctx, &w, err))
        ;
    return r;
}

int step_ids_now(step_ctx_t *ctx, char ***ret_ids, size_t *ret_n, baton_err_t *err)
{
    if (ctx && ctx->db_session && *ctx->db_session && PQstatus(*ctx->db_session) == CONNECTION_OK) {
        int r = db_migration_ids_on(*ctx->db_session, ctx->svc, ret_ids, ret_n, err);
        if (r == 0 || PQstatus(*ctx->db_session) == CONNECTION_OK)
            return r;
        baton_err_clear(err); /* the connection broke: ask on a new one */
    }
    return db_migration_ids(ctx->svc, ret_ids, ret_n, err);
}

int step_migration_ids(step_ctx_t *ctx, char ***ret_ids, size_t *ret_n, baton_err_t *err)
{
    /* The lock's connection is open and idle while a migration runs in its own: asking there
     * saves a connection set-up (~10 ms) twice inside the node's downtime. */
    if (ctx->db_lock && *ctx->db_lock && PQstatus(*ctx->db_lock) == CONNECTION_OK) {
        int r = db_migration_ids_on(*ctx->db_lock, ctx->svc, ret_ids, ret_n, err);
        if (r == 0 || PQstatus(*ctx->db_lock) == CONNECTION_OK)
            return r;
        baton_err_clear(err); /* the connection broke (and the lock with it): ask anew */
    }
    struct db_wait w = {0};
    int r;
    while ((r = db_migration_ids(ctx->svc, ret_ids, ret_n, err)) == -ECONNREFUSED &&
           db_wait_again(ctx, &w, err))
        ;
    return r;
}

/* Weak: the agent's unit tests run the worker and the rules with steps of their own. */
__attribute__((weak)) step_fn step_function(step_id_t id)
{
    static const step_fn fns[STEP__MAX] = {
        [STEP_PREFLIGHT] = step_preflight, [STEP_STOP] = step_stop,
        [STEP_DUMP] = step_dump,           [STEP_SWAP] = step_swap,
        [STEP_MIGRATE] = step_migrate,     [STEP_START] = step_start,
        [STEP_VERIFY] = step_verify,       [STEP_COMMIT] = step_commit,
        [STEP_ROLLBACK] = step_rollback,
    };
    return id > STEP_NONE && id < STEP__MAX ? fns[id] : NULL;
}
