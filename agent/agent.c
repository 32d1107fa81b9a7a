/* agent: checks each command, runs its step with the service's state persisted before and
 * after, streams Progress, and answers with exactly one Result. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "agent.h"
#include "agent_loop.h"
#include "envelope.h"
#include "unit.h"

/* The order of a rollout's steps on a node. A step may run when the previous one is the last
 * completed (or again, when it is itself: a coordinator retrying after a lost answer). */
static const char *const step_order[] = {"preflight", "stop",  "dump",   "swap",
                                         "migrate",   "start", "verify", "commit"};
#define N_STEPS (sizeof(step_order) / sizeof(step_order[0]))

static int step_index(const char *name)
{
    for (size_t i = 0; i < N_STEPS; i++)
        if (!strcmp(step_order[i], name))
            return (int)i;
    return -1;
}

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void agent_tick(void *agent)
{
    agent_t *a = agent;
    if (!a->watchdog_usec)
        return;
    uint64_t now = now_usec();
    if (now - a->last_ping >= a->watchdog_usec / 2) {
        sd_notify(0, "WATCHDOG=1");
        a->last_ping = now;
    }
}

int agent_bus(agent_t *a, sd_bus **ret_bus, baton_err_t *err)
{
    if (!a->bus) {
        int r = unit_bus_open(&a->bus, err);
        if (r < 0)
            return r;
    }
    *ret_bus = a->bus;
    return 0;
}

const char *agent_pidfile(const agent_t *a)
{
    static char path[4200];
    snprintf(path, sizeof(path), "%s/running.pid", a->cfg->state_dir);
    return path;
}

void agent_log(agent_t *a, int priority, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Under systemd, structured fields let `journalctl BATON_ROLLOUT_ID=...` find a rollout. */
    if (getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID")) {
        sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority, "SYSLOG_IDENTIFIER=baton-agent",
                        "BATON_SERVICE=%s", a && a->service ? a->service : "",
                        "BATON_ROLLOUT_ID=%s", a && a->rollout_id ? a->rollout_id : "",
                        "BATON_STEP=%s", a && a->step ? a->step : "", NULL);
    } else {
        fprintf(stderr, "baton-agent: %s%s%s%s%s\n", a && a->service ? a->service : "",
                a && a->service ? " " : "", a && a->step ? a->step : "",
                a && (a->service || a->step) ? ": " : "", msg);
    }
}

/* Sends one Envelope to the peer being served. Progress may be dropped when the peer is slow
 * (ZMQ_DONTWAIT); a Result may not. */
static int send_to_peer(agent_t *a, Baton__Envelope *env, bool may_drop)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    if (!a->have_peer)
        return -ENOTCONN;
    if (envelope_pack(env, &buf, &len, &err) < 0) {
        agent_log(a, 3, "cannot send: %s", err.msg);
        return err.code;
    }
    zmq_msg_t id;
    zmq_msg_init(&id);
    zmq_msg_copy(&id, &a->peer);
    int flags = may_drop ? ZMQ_DONTWAIT : 0;
    int r = 0;
    if (zmq_msg_send(&id, a->router, ZMQ_SNDMORE | flags) < 0 ||
        zmq_send(a->router, buf, len, flags) < 0) {
        r = -errno;
        if (!may_drop)
            agent_log(a, 4, "answer to request %llu lost: %s", (unsigned long long)a->request_id,
                      zmq_strerror(errno));
    }
    zmq_msg_close(&id);
    free(buf);
    return r;
}

void agent_progress(agent_t *a, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    agent_log(a, 6, "%s", msg);
    Baton__Progress p = BATON__PROGRESS__INIT;
    p.step = (char *)(a->step ? a->step : "");
    p.message = msg;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.request_id = a->request_id;
    env.rollout_id = (char *)(a->rollout_id ? a->rollout_id : "");
    env.body_case = BATON__ENVELOPE__BODY_PROGRESS;
    env.progress = &p;
    send_to_peer(a, &env, true);
    agent_tick(a);
}

static bool rollout_id_valid(const char *id)
{
    size_t n = strlen(id);
    return n >= 1 && n <= 64 &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n &&
           id[0] != '.';
}

/* Runs one of the rollout steps (or rollback) for a service. `*ret_st` is kept for the Result. */
static int run_step(agent_t *a, const Baton__Envelope *req, const char *cmd, const char *service,
                    struct step_out *out, svc_state_t **ret_st, Baton__Status *status,
                    baton_err_t *err)
{
    const svc_config_t *svc = agent_config_service(a->cfg, service);
    const char *rid = req->rollout_id;
    *status = BATON__STATUS__STATUS_BAD_REQUEST;
    if (!svc)
        return baton_err_set(err, -ENOENT, "unknown service '%s'", service);
    if (!rollout_id_valid(rid))
        return baton_err_set(err, -EINVAL, "rollout id must be 1-64 of [A-Za-z0-9_.-]");
    a->service = svc->name;
    *status = BATON__STATUS__STATUS_FAILED;
    svc_state_t *st = NULL;
    int r = svc_state_load(a->cfg->state_dir, svc->name, &st, err);
    if (r < 0)
        return r;
    *ret_st = st;

    bool is_rollback = !strcmp(cmd, "rollback");
    if (!strcmp(cmd, "preflight")) {
        if (!svc_state_idle(st) && strcmp(st->rollout_id, rid)) {
            *status = BATON__STATUS__STATUS_BUSY;
            return baton_err_set(err, -EBUSY, "%s is in rollout %s (%s%s); roll it back first",
                                 svc->name, st->rollout_id,
                                 *st->in_progress ? "interrupted in " : "at ",
                                 *st->in_progress ? st->in_progress : st->step);
        }
    } else if (is_rollback) {
        if (strcmp(st->rollout_id, rid))
            return baton_err_set(err, -ENOENT, "%s has no rollout %s to roll back (last: %s)",
                                 svc->name, rid, *st->rollout_id ? st->rollout_id : "none");
        if (!strcmp(st->step, "rolled_back") && !*st->in_progress)
            return 0; /* already done */
        if (!strcmp(st->step, "committed") && !*st->in_progress)
            return baton_err_set(err, -EPERM, "rollout %s of %s is committed", rid, svc->name);
    } else {
        if (strcmp(st->rollout_id, rid))
            return baton_err_set(err, -EPROTO, "%s: no preflight for rollout %s", svc->name, rid);
        int want = step_index(cmd), have = step_index(st->step);
        if (*st->in_progress && strcmp(st->in_progress, cmd))
            return baton_err_set(err, -EPROTO, "%s: step %s was interrupted; roll back", svc->name,
                                 st->in_progress);
        if (have < 0 || !(have == want - 1 || have == want))
            return baton_err_set(err, -EPROTO, "%s: %s cannot follow %s", svc->name, cmd,
                                 *st->step ? st->step : "nothing");
    }

    if (svc_state_set(&st->in_progress, cmd) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    if ((r = svc_state_save(a->cfg->state_dir, st, err)) < 0)
        return r;
    agent_log(a, 6, "begin");

    if (!strcmp(cmd, "preflight"))
        r = step_preflight(a, svc, st, req->preflight, err);
    else if (!strcmp(cmd, "stop"))
        r = step_stop(a, svc, st, err);
    else if (!strcmp(cmd, "dump"))
        r = step_dump(a, svc, st, err);
    else if (!strcmp(cmd, "swap"))
        r = step_swap(a, svc, st, err);
    else if (!strcmp(cmd, "migrate"))
        r = step_migrate(a, svc, st, req->migrate, out, err);
    else if (!strcmp(cmd, "start"))
        r = step_start(a, svc, st, err);
    else if (!strcmp(cmd, "verify"))
        r = step_verify(a, svc, st, st->target_version, out, err);
    else if (!strcmp(cmd, "commit"))
        r = step_commit(a, svc, st, err);
    else
        r = step_rollback(a, svc, st, out, err);

    baton_err_t serr = {0};
    const char *done = is_rollback ? (r == 0 ? "rolled_back" : "rollback_failed")
                                   : (!strcmp(cmd, "commit") ? "committed" : cmd);
    if ((r == 0 || is_rollback) && svc_state_set(&st->step, done) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    svc_state_set(&st->in_progress, "");
    /* The state is saved on failure too: a failed migrate records what it applied. */
    if (svc_state_save(a->cfg->state_dir, st, &serr) < 0) {
        agent_log(a, 3, "%s", serr.msg);
        if (r == 0)
            r = baton_err_set(err, serr.code, "%s", serr.msg);
    }
    agent_log(a, r == 0 ? 6 : 3, "%s%s", r == 0 ? "done" : "failed: ", r == 0 ? "" : err->msg);
    out->have_dump = !strcmp(cmd, "dump") && r == 0;
    if (r == 0)
        *status = BATON__STATUS__STATUS_OK;
    return r;
}

void agent_serve(agent_t *a, const Baton__Envelope *req)
{
    Baton__Result res = BATON__RESULT__INIT;
    Baton__DumpInfo dump = BATON__DUMP_INFO__INIT;
    Baton__Hello *hello = NULL;
    struct step_out out = {0};
    svc_state_t *st = NULL;
    baton_err_t err = {0};
    Baton__Status status = BATON__STATUS__STATUS_FAILED;
    const char *cmd = envelope_body_name(req->body_case);
    int r;

    a->request_id = req->request_id;
    a->rollout_id = req->rollout_id;
    a->step = cmd;
    a->service = NULL;
    switch (req->body_case) {
    case BATON__ENVELOPE__BODY_HELLO:
        r = hello_build(a, &hello, &err);
        res.hello = hello;
        status = r == 0 ? BATON__STATUS__STATUS_OK : BATON__STATUS__STATUS_FAILED;
        break;
    case BATON__ENVELOPE__BODY_STAGE:
        a->service = req->stage->service;
        r = step_stage(a, req->stage, &err);
        status = r == 0 ? BATON__STATUS__STATUS_OK : BATON__STATUS__STATUS_FAILED;
        break;
    case BATON__ENVELOPE__BODY_MIGRATE:
        r = run_step(a, req, cmd, req->migrate->service, &out, &st, &status, &err);
        break;
    case BATON__ENVELOPE__BODY_PREFLIGHT:
    case BATON__ENVELOPE__BODY_STOP:
    case BATON__ENVELOPE__BODY_DUMP:
    case BATON__ENVELOPE__BODY_SWAP:
    case BATON__ENVELOPE__BODY_START:
    case BATON__ENVELOPE__BODY_VERIFY:
    case BATON__ENVELOPE__BODY_ROLLBACK:
    case BATON__ENVELOPE__BODY_COMMIT: {
        /* Every Step-shaped command sits in the same place of the oneof union. */
        const Baton__Step *step = req->preflight;
        r = run_step(a, req, cmd, step->service, &out, &st, &status, &err);
        break;
    }
    default:
        r = baton_err_set(&err, -EPROTO, "%s is not a command an agent runs", cmd);
        status = BATON__STATUS__STATUS_BAD_REQUEST;
        break;
    }
    (void)r;
    res.status = status;
    res.message = err.msg;
    res.step = (char *)cmd;
    res.version = out.version;
    res.restored_dump = out.restored_dump;
    res.n_applied = out.n_applied;
    res.applied = out.applied;
    res.n_removed = out.n_removed;
    res.removed = out.removed;
    if (st && out.have_dump) {
        dump.path = st->dump_path;
        dump.size = st->dump_size;
        dump.sha256 = st->dump_sha256;
        res.dump = &dump;
    }
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.request_id = req->request_id;
    env.rollout_id = req->rollout_id;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;
    send_to_peer(a, &env, false);

    hello_free(&hello);
    svc_state_clear_list(&out.applied, &out.n_applied);
    svc_state_clear_list(&out.removed, &out.n_removed);
    svc_state_destroy(&st);
    a->service = NULL;
    a->step = NULL;
    a->rollout_id = NULL;
}

void agent_reply_error(agent_t *a, uint64_t request_id, Baton__Status status, const char *msg)
{
    Baton__Result res = BATON__RESULT__INIT;
    res.status = status;
    res.message = (char *)msg;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.request_id = request_id;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;
    send_to_peer(a, &env, false);
}
