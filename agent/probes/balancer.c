/* balancer: the node out of service before its unit stops, and back in once it verified: the
 * built-in haproxy (haproxy.h) and the operator's drain/undrain hooks for other balancers.
 * The one place the stop, verify and rollback steps go through for it. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "haproxy.h"
#include "step.h"

#define POLL_MS 100

static void pause_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Drained, then its sessions and queue waited down to 0. On a timeout the step fails before
 * anything stopped, and the stop step puts the server back (balancer_in). */
static int haproxy_out(step_ctx_t *ctx, const haproxy_target_t *t, baton_err_t *err)
{
    step_progress(ctx, "haproxy: draining %s/%s", t->backend, t->server);
    int r = haproxy_set_state(t, "drain", err);
    if (r < 0)
        return baton_err_prefix(err, "drain failed");
    uint64_t start = step_now_ms(), reported = start;
    haproxy_server_stat_t s = {0};
    for (;;) {
        if ((r = haproxy_server_stat(t, &s, err)) < 0)
            break;
        if (!s.sessions && !s.queued) {
            step_progress(ctx, "haproxy: %s/%s drained in %.1f s (%s)", t->backend, t->server,
                          (double)(step_now_ms() - start) / 1000.0, s.status);
            return 0;
        }
        uint64_t now = step_now_ms();
        if (now - start >= t->drain_ms) {
            r = baton_err_set(err, -ETIMEDOUT,
                              "haproxy: %s/%s still has %llu session%s and %llu queued after "
                              "%.1f s (drain_timeout): not stopped",
                              t->backend, t->server, (unsigned long long)s.sessions,
                              s.sessions == 1 ? "" : "s", (unsigned long long)s.queued,
                              (double)(now - start) / 1000.0);
            break;
        }
        if (now - reported >= 5000) {
            reported = now;
            step_progress(ctx, "haproxy: %s/%s: %llu sessions still open", t->backend, t->server,
                          (unsigned long long)s.sessions);
        }
        step_tick(ctx);
        pause_ms(POLL_MS);
    }
    return baton_err_prefix(err, "drain failed");
}

/* Ready, then haproxy's status waited for until its checks say UP. */
static int haproxy_in(step_ctx_t *ctx, const haproxy_target_t *t, baton_err_t *err)
{
    step_progress(ctx, "haproxy: %s/%s ready, waiting for UP", t->backend, t->server);
    int r = haproxy_set_state(t, "ready", err);
    uint64_t start = step_now_ms();
    haproxy_server_stat_t s = {0};
    while (r == 0 && (r = haproxy_server_stat(t, &s, err)) == 0) {
        uint64_t now = step_now_ms();
        if (haproxy_status_up(s.status)) {
            step_progress(ctx, "haproxy: %s/%s %s after %.1f s", t->backend, t->server, s.status,
                          (double)(now - start) / 1000.0);
            return 0;
        }
        if (now - start >= t->up_ms)
            return baton_err_set(err, -ETIMEDOUT,
                                 "haproxy reports %s/%s %s after %.1f s (up_timeout): its checks "
                                 "do not pass; the node is not back in service",
                                 t->backend, t->server, s.status, (double)(now - start) / 1000.0);
        step_tick(ctx);
        pause_ms(POLL_MS);
    }
    return baton_err_prefix(err, "back in service failed");
}

int balancer_check(step_ctx_t *ctx, baton_err_t *err)
{
    const haproxy_target_t *t = ctx->svc->haproxy;
    if (!t)
        return 0;
    /* Its haproxy answers and knows its server, taken out of service by no one else: the stop
     * step drains it and the verify puts it back, which would undo an operator's MAINT or
     * DRAIN. */
    haproxy_server_stat_t s;
    step_progress(ctx, "checking haproxy %s/%s", t->backend, t->server);
    int r = haproxy_server_stat(t, &s, err);
    if (r == 0 && (!strncmp(s.status, "MAINT", 5) || !strncmp(s.status, "DRAIN", 5)))
        r = baton_err_set(err, -EBUSY,
                          "haproxy has %s/%s in %s (taken out by hand?): the rollout would put it "
                          "back in service; `set server %s/%s state ready` first",
                          t->backend, t->server, s.status, t->backend, t->server);
    return r;
}

int balancer_out(step_ctx_t *ctx, baton_err_t *err)
{
    /* A unit that was not running serves nobody: its server is not drained (and a rollback,
     * which starts only what ran, has nothing to put back). */
    int r = ctx->svc->haproxy && ctx->st->was_active ? haproxy_out(ctx, ctx->svc->haproxy, err) : 0;
    return r < 0 ? r : command_hook(ctx, "drain", err);
}

int balancer_in(step_ctx_t *ctx, baton_err_t *err)
{
    int r = command_hook(ctx, "undrain", err);
    if (r == 0 && ctx->svc->haproxy)
        r = haproxy_in(ctx, ctx->svc->haproxy, err);
    return r;
}
