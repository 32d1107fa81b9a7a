/* step_verify: the service really runs the new version, and keeps running it: the unit is
 * active, the health probe passes (polled until the verify timeout), the binary reports the
 * target version, and for min_healthy_time afterwards the unit stays active with the same main
 * process and no restart while every probe passes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "semver.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "probe.h"
#include "step.h"
#include "unit.h"

static int unit_active(step_ctx_t *ctx, const svc_config_t *svc, baton_err_t *err)
{
    sd_bus *bus = NULL;
    char *state = NULL;
    int r = step_bus(ctx, &bus, err);
    if (r < 0 || (r = unit_property(bus, svc->unit, "Unit", "ActiveState", &state, err)) < 0)
        return r;
    if (strcmp(state, "active")) {
        char why[160];
        unit_why_failed(bus, svc->unit, why, sizeof(why));
        r = baton_err_set(err, -EIO, "%s is %s (%s)", svc->unit, state, why);
    }
    free(state);
    return r;
}

/* What must not change while the service is watched: a restart changes both. */
struct unit_identity {
    uint32_t main_pid; /* MainPID */
    uint32_t restarts; /* NRestarts */
};

static int unit_identity(step_ctx_t *ctx, struct unit_identity *ret, baton_err_t *err)
{
    sd_bus *bus = NULL;
    int r = step_bus(ctx, &bus, err);
    if (r < 0 ||
        (r = unit_property_u32(bus, ctx->svc->unit, "Service", "MainPID", &ret->main_pid, err)) <
            0 ||
        (r = unit_property_u32(bus, ctx->svc->unit, "Service", "NRestarts", &ret->restarts, err)) <
            0)
        return r;
    return 0;
}

static void pause_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits for the first good probe; the service may die meanwhile, then there is no point
 * waiting for the deadline. The pauses follow probe_next_pause(): every 10 ms while nothing
 * listens (a service that starts listening healthy is seen within ~10 ms of it, downtime the
 * operator would otherwise pay for nothing), doubling up to health.interval once it answers.
 * systemd is asked whether the unit still runs every UNIT_CHECK_MS, not at every probe. */
#define UNIT_CHECK_MS 100
static int first_healthy(step_ctx_t *ctx, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    uint64_t limit = ctx->healthy_deadline_ms ? ctx->healthy_deadline_ms : svc->timeout_verify_ms;
    uint64_t start = mono_ms(), deadline = start + limit, next_note = start, next_unit = start;
    uint64_t pause = 0;
    char why[512] = "";
    int r;
    step_progress(ctx, "waiting for %s to be healthy",
                  svc->health_http ? svc->health_http : svc->health_tcp);
    while ((r = probe(svc, why, sizeof(why))) < 0) {
        step_tick(ctx);
        uint64_t t = mono_ms();
        if (t >= deadline)
            return baton_err_set(err, -ETIMEDOUT, "not healthy after %llu s: %s",
                                 (unsigned long long)(limit / 1000), why);
        if (t >= next_note) {
            step_progress(ctx, "not healthy yet: %s", why);
            next_note = t + 5000;
        }
        if (t >= next_unit) {
            int u = unit_active(ctx, svc, err);
            if (u < 0)
                return u;
            next_unit = t + UNIT_CHECK_MS;
        }
        pause = probe_next_pause(r, pause, svc->health_interval_ms);
        pause_ms(deadline - t < pause ? deadline - t : pause);
    }
    return 0;
}

/* After the first good probe, the service must stay up for min_healthy_ms: the unit active with
 * the same main process and no restart, and every probe passing (as Nomad's min_healthy_time).
 * One lucky probe of a service that dies a second later is not an upgrade. */
static int stays_healthy(step_ctx_t *ctx, const struct unit_identity *first, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    uint64_t start = mono_ms(), end = start + ctx->min_healthy_ms, probes = 1;
    char why[512] = "";
    step_progress(ctx, "healthy; watching it for %llu ms", (unsigned long long)ctx->min_healthy_ms);
    for (;;) {
        uint64_t t = mono_ms();
        if (t >= end)
            break;
        pause_ms(end - t < svc->health_interval_ms ? end - t : svc->health_interval_ms);
        step_tick(ctx);
        double after = (double)(mono_ms() - start) / 1000.0;
        struct unit_identity now;
        int r = unit_active(ctx, svc, err);
        if (r < 0)
            return baton_err_prefix(err, "%.1f s after it turned healthy", after);
        if ((r = unit_identity(ctx, &now, err)) < 0)
            return r;
        if (now.main_pid != first->main_pid || now.restarts != first->restarts)
            return baton_err_set(err, -EIO,
                                 "%.1f s after it turned healthy, %s restarted (main pid %u -> "
                                 "%u, %u restarts)",
                                 after, svc->unit, first->main_pid, now.main_pid, now.restarts);
        if (probe(svc, why, sizeof(why)) < 0)
            return baton_err_set(err, -EIO,
                                 "unstable: %.1f s after it turned healthy (probe %llu): %s", after,
                                 (unsigned long long)probes + 1, why);
        probes++;
    }
    step_progress(ctx, "stayed healthy for %llu ms (%llu probes)",
                  (unsigned long long)ctx->min_healthy_ms, (unsigned long long)probes);
    return 0;
}

int verify_running(step_ctx_t *ctx, const char *version, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    struct unit_identity first;
    int r = unit_active(ctx, svc, err);
    if (r < 0 || (r = unit_identity(ctx, &first, err)) < 0 || (r = first_healthy(ctx, err)) < 0)
        return r;
    char *reported = NULL;
    if ((r = command_version(ctx, svc, svc->binary, &reported, err)) < 0)
        return r;
    snprintf(ctx->out.version, sizeof(ctx->out.version), "%s", reported);
    if (version && *version && !version_matches(reported, version))
        r = baton_err_set(err, -EINVAL, "%s reports version %s, expected %s", svc->binary, reported,
                          version);
    free(reported);
    if (r < 0)
        return r;
    /* The identity is taken before the first probe: a restart while we waited counts too. */
    if (ctx->min_healthy_ms && (r = stays_healthy(ctx, &first, err)) < 0)
        return r;
    return unit_active(ctx, svc, err);
}

/* Verified, the node goes back into service (balancer.c). Its failure fails the step (a node
 * out of the load balancer is not done), and the rollback puts it back again. */
int step_verify(step_ctx_t *ctx, baton_err_t *err)
{
    int r = verify_running(ctx, ctx->st->target_version, err);
    return r < 0 ? r : balancer_in(ctx, err);
}
