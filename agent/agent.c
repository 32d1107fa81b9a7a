/* agent: see agent.h. Every command is decided by step_decide() from the service's state file
 * and the step running now; the only writes here are the ones that must happen before a step
 * starts (its rollout id and in_progress, in one atomic save) or instead of it (a release). */
#include "semver.h"
#include "clock.h"
#include "agent.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "envelope.h"
#include "log.h"
#include "state.h"
#include "version.h"

/* Sends one Envelope to `peer`. Progress may be dropped when the peer is slow or gone
 * (ZMQ_DONTWAIT); a lost Result is logged: it stays on record for the asker to ask again. */
static int send_env(agent_t *a, zmq_msg_t *peer, Baton__Envelope *env, bool may_drop)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    env->protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    if (envelope_pack(env, &buf, &len, &err) < 0) {
        log_event(NULL, env->rollout_id, NULL, 3, "cannot send: %s", err.msg);
        return err.code;
    }
    zmq_msg_t id;
    zmq_msg_init(&id);
    int r = zmq_msg_copy(&id, peer) < 0 ? -errno : 0;
    if (r == 0 && (zmq_msg_send(&id, a->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
                   zmq_send(a->router, buf, len, ZMQ_DONTWAIT) < 0)) {
        r = -errno;
        if (!may_drop)
            log_event(NULL, env->rollout_id, NULL, 4,
                      "answer to request %llu lost (%s); it stays on record",
                      (unsigned long long)env->request_id, zmq_strerror(errno));
    }
    zmq_msg_close(&id);
    free(buf);
    return r;
}

static void reply(agent_t *a, zmq_msg_t *peer, uint64_t request_id, const char *rollout_id,
                  Baton__Result *res)
{
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.request_id = request_id;
    env.rollout_id = (char *)(rollout_id ? rollout_id : "");
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = res;
    send_env(a, peer, &env, false);
}

static void reply_status(agent_t *a, zmq_msg_t *peer, const Baton__Envelope *req,
                         Baton__Status status, const char *step, const char *msg)
{
    Baton__Result res = BATON__RESULT__INIT;
    res.status = status;
    res.message = (char *)msg;
    res.step = (char *)step;
    reply(a, peer, req->request_id, req->rollout_id, &res);
}

void agent_reply_error(agent_t *a, zmq_msg_t *peer, uint64_t request_id, Baton__Status status,
                       const char *msg)
{
    Baton__Result res = BATON__RESULT__INIT;
    res.status = status;
    res.message = (char *)msg;
    reply(a, peer, request_id, "", &res);
}

struct lane *agent_lane(agent_t *a, const svc_config_t *svc)
{
    return &a->lanes[svc - a->cfg->services];
}

bool agent_busy(const agent_t *a)
{
    for (size_t i = 0; i < a->cfg->n_services; i++)
        if (a->lanes[i].run.on)
            return true;
    return false;
}

int agent_lanes_start(agent_t *a, baton_err_t *err)
{
    if (front_new(a->zctx, a->cfg, FRONT_HELLO, &a->hello_front, err) < 0 ||
        front_new(a->zctx, a->cfg, FRONT_STAGE, &a->stage_front, err) < 0) {
        agent_lanes_stop(a);
        return err->code;
    }
    for (size_t i = 0; i < a->cfg->n_services; i++) {
        int r = worker_new(a->zctx, a->cfg, &a->cfg->services[i], &a->lanes[i].worker, err);
        if (r < 0) {
            agent_lanes_stop(a);
            return r;
        }
    }
    return 0;
}

void agent_lanes_stop(agent_t *a)
{
    front_destroy(&a->hello_front);
    front_destroy(&a->stage_front);
    for (size_t i = 0; i < a->cfg->n_services; i++) {
        struct lane *l = &a->lanes[i];
        worker_destroy(&l->worker);
        if (l->run.have_peer)
            zmq_msg_close(&l->run.peer);
        l->run.have_peer = false;
        stage_reset(&l->stage, NULL);
    }
}

/* Progress to whoever waits for the running step. */
static void progress_to_asker(agent_t *a, struct running *run, const char *msg, bool heartbeat)
{
    if (!run->have_peer)
        return;
    Baton__Progress p = BATON__PROGRESS__INIT;
    p.step = (char *)run->def->name;
    p.message = (char *)msg;
    p.heartbeat = heartbeat;
    p.elapsed_ms = mono_ms() - run->started_ms;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.request_id = run->request_id;
    env.rollout_id = run->rollout_id;
    env.body_case = BATON__ENVELOPE__BODY_PROGRESS;
    env.progress = &p;
    send_env(a, &run->peer, &env, true);
    run->last_beat_ms = mono_ms();
}

/* The asker of the running step is now `peer` (a coordinator that reconnected, or asked
 * again after a silence): progress and the Result go there. */
static void set_asker(struct running *run, zmq_msg_t *peer, const Baton__Envelope *req)
{
    if (run->have_peer)
        zmq_msg_close(&run->peer);
    zmq_msg_init(&run->peer);
    run->have_peer = zmq_msg_copy(&run->peer, peer) == 0;
    run->request_id = req->request_id;
    /* The asker's pace for heartbeats, within 1-10 s: a coordinator before heartbeat_ms says 0
     * and gets one a second, as it always did. */
    run->beat_ms = req->heartbeat_ms < 1000    ? 1000
                   : req->heartbeat_ms > 10000 ? 10000
                                               : req->heartbeat_ms;
}

/* What Hello says of the running steps: a copy, for the Hello front's thread. */
static void run_views(const agent_t *a, struct run_view *views)
{
    memset(views, 0, sizeof(struct run_view) * AGENT_SERVICES_MAX);
    for (size_t i = 0; i < a->cfg->n_services; i++) {
        const struct running *run = &a->lanes[i].run;
        views[i].on = run->on && run->def->id != STEP_NONE;
        if (!views[i].on)
            continue;
        snprintf(views[i].step, sizeof(views[i].step), "%s", run->def->name);
        views[i].started_ms = run->started_ms;
        snprintf(views[i].progress, sizeof(views[i].progress), "%s", run->progress);
    }
}

void agent_from_front(agent_t *a, front_t *f)
{
    zmq_msg_t peer, reply;
    if (front_take(f, &peer, &reply) < 0)
        return;
    if (zmq_msg_send(&peer, a->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(&reply, a->router, ZMQ_DONTWAIT) < 0)
        log_event(NULL, NULL, NULL, 4, "an answer was lost (%s); its asker asks again",
                  zmq_strerror(errno));
    zmq_msg_close(&peer);
    zmq_msg_close(&reply);
}

static void serve_hello(agent_t *a, zmq_msg_t *peer, Baton__Envelope **req_p)
{
    const Baton__Envelope *req = *req_p;
    Baton__Hello *hello = NULL;
    baton_err_t err = {0};
    Baton__Result res = BATON__RESULT__INIT;
    /* A coordinator outside the version window is refused here, at its first word: before it
     * stages or stops anything (its Hello is always first). */
    int r = version_skew_check(req->hello->coordinator_version, "the coordinator", "agent", &err);
    if (r < 0) {
        log_event(NULL, req->rollout_id, "hello", 4, "refused: %s", err.msg);
        res.status = BATON__STATUS__STATUS_UNSUPPORTED;
        res.message = err.msg;
        res.step = "hello";
        reply(a, peer, req->request_id, req->rollout_id, &res);
        return;
    }
    struct run_view views[AGENT_SERVICES_MAX];
    run_views(a, views);
    /* Off the main loop when there is a front: systemd and a version command may take a while. */
    if (a->hello_front) {
        if (front_submit(a->hello_front, peer, req_p, views, &err) < 0)
            reply_status(a, peer, req, BATON__STATUS__STATUS_FAILED, "hello", err.msg);
        return;
    }
    r = hello_build(a->cfg, &a->bus, views, &hello, &err);
    res.status = r == 0 ? BATON__STATUS__STATUS_OK : BATON__STATUS__STATUS_FAILED;
    res.message = err.msg;
    res.step = "hello";
    res.hello = hello;
    reply(a, peer, req->request_id, req->rollout_id, &res);
    hello_free(&hello);
}

static void serve_stage(agent_t *a, zmq_msg_t *peer, Baton__Envelope **req_p)
{
    const Baton__Envelope *req = *req_p;
    baton_err_t err = {0};
    /* Off the main loop when there is a front: a partial file is hashed again there. */
    if (a->stage_front) {
        if (front_submit(a->stage_front, peer, req_p, NULL, &err) < 0)
            reply_status(a, peer, req, BATON__STATUS__STATUS_FAILED, "stage", err.msg);
        return;
    }
    uint64_t held = 0;
    const svc_config_t *svc = agent_config_service(a->cfg, req->stage->service);
    int r = !svc ? baton_err_set(&err, -ENOENT, "unknown service '%.64s'", req->stage->service)
            : *req->stage->url
                ? baton_err_set(&err, -ENOTSUP, "stage: pulls run on the Stage front only")
                : stage_chunk(&agent_lane(a, svc)->stage, a->cfg, req->stage, &held, &err);
    if (r < 0)
        log_event(req->stage->service, req->rollout_id, "stage", 4, "%s", err.msg);
    Baton__Result res = BATON__RESULT__INIT;
    res.status = r == 0 ? BATON__STATUS__STATUS_OK : BATON__STATUS__STATUS_FAILED;
    res.message = err.msg;
    res.step = "stage";
    res.staged_bytes = held;
    res.stage_resume = r == -EPROTO;
    reply(a, peer, req->request_id, req->rollout_id, &res);
}

/* Answers with the Result on record for this step of this rollout. */
static void replay(agent_t *a, zmq_msg_t *peer, const Baton__Envelope *req, const svc_state_t *st,
                   const step_def_t *def)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    Baton__Result *res = NULL;
    if (svc_state_get_result(st, def->id, &buf, &len) == 0)
        res = baton__result__unpack(NULL, len, buf);
    free(buf);
    if (!res) { /* completed by an agent too old to keep Results */
        char msg[160];
        snprintf(msg, sizeof(msg), "%s of rollout %s already done", def->name, req->rollout_id);
        reply_status(a, peer, req, BATON__STATUS__STATUS_OK, def->name, msg);
        return;
    }
    log_event(st->service, req->rollout_id, def->name, 6, "answered again from the record");
    reply(a, peer, req->request_id, req->rollout_id, res);
    baton__result__free_unpacked(res, NULL);
}

/* The service named by a step command (every Step-shaped body shares the union's slot). */
static const char *step_service(const Baton__Envelope *req)
{
    if (req->body_case == BATON__ENVELOPE__BODY_MIGRATE)
        return req->migrate->service;
    return req->preflight->service;
}

/* A later step that names a version or digest must name the ones its pre-flight recorded. */
static bool matches_record(const Baton__Envelope *req, const step_def_t *def, const svc_state_t *st,
                           char *why, size_t len)
{
    if (def->id == STEP_PREFLIGHT || def->id == STEP_ROLLBACK || def->id == STEP_MIGRATE)
        return true;
    const Baton__Step *s = req->preflight;
    if (*s->version && !version_same(s->version, st->target_version)) {
        snprintf(why, len, "%s names version %s, but rollout %s installs %s", def->name, s->version,
                 st->rollout_id, st->target_version);
        return false;
    }
    if (*s->sha256 && strcmp(s->sha256, st->target_sha256)) {
        snprintf(why, len, "%s names sha256 %.12s…, but rollout %s staged %.12s…", def->name,
                 s->sha256, st->rollout_id, st->target_sha256);
        return false;
    }
    return true;
}

/* Room for a service's records in the state folder: twice its state file (written anew beside
 * the old one) and a margin for the Result and the logs. */
#define STATE_ROOM_MARGIN (4 * 1024 * 1024)
static int state_room(const agent_config_t *cfg, const svc_config_t *svc, baton_err_t *err)
{
    char path[PATH_MAX];
    struct stat sb;
    struct statvfs vfs;
    snprintf(path, sizeof(path), "%s/%s.json", cfg->state_dir, svc->name);
    uint64_t need = STATE_ROOM_MARGIN + (stat(path, &sb) == 0 ? 2 * (uint64_t)sb.st_size : 0);
    if (statvfs(cfg->state_dir, &vfs) < 0)
        return 0; /* unknown: the save itself will say */
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (avail >= need)
        return 0;
    return baton_err_set(err, -ENOSPC,
                         "the state folder %s has %llu KiB free; the agent's records need %llu KiB "
                         "to run a step: nothing was done",
                         cfg->state_dir, (unsigned long long)(avail >> 10),
                         (unsigned long long)(need >> 10));
}

/* STEP_RELEASE: a rollout that changed nothing live ends here, its record back to the one
 * before it. */
static void release_record(agent_t *a, zmq_msg_t *peer, const Baton__Envelope *req,
                           const svc_config_t *svc, svc_state_t *st, const step_def_t *def)
{
    baton_err_t err = {0};
    char why[512];
    char prior[160];
    snprintf(prior, sizeof(prior), "%s%s%s", *st->prior_rollout_id ? st->prior_rollout_id : "",
             *st->prior_step ? " " : "", st->prior_step);
    if (svc_state_release(st) < 0 || svc_state_save(a->cfg->state_dir, st, &err) < 0) {
        reply_status(a, peer, req, BATON__STATUS__STATUS_FAILED, def->name,
                     *err.msg ? err.msg : "out of memory");
        return;
    }
    /* To a rollback: done. To a pre-flight cut short by a restart: it failed. */
    bool cut_short = def->id == STEP_PREFLIGHT;
    snprintf(why, sizeof(why), "%s%s changed nothing here (pre-flight only): released%s%s",
             cut_short ? "the pre-flight was interrupted (the agent restarted while it ran); "
                       : "rollout ",
             cut_short ? "it" : req->rollout_id, *prior ? "; record back to " : "", prior);
    log_event(svc->name, req->rollout_id, def->name, 6, "%s", why);
    reply_status(a, peer, req, cut_short ? BATON__STATUS__STATUS_FAILED : BATON__STATUS__STATUS_OK,
                 def->name, why);
}

/* STEP_RUN: the step on record as in progress (one atomic save), then on its service's worker,
 * which takes *st_p and *req_p (both set to NULL then). */
static void run_step(agent_t *a, zmq_msg_t *peer, Baton__Envelope **req_p, svc_state_t **st_p,
                     struct lane *lane, const step_def_t *def, const svc_config_t *svc)
{
    Baton__Envelope *req = *req_p;
    struct running *run = &lane->run;
    baton_err_t err = {0};
    /* The rollout id and the step go on record in one atomic save before anything runs: a
     * crash from here on is reported as this rollout's, never as the previous one's. */
    int r = 0;
    /* The records need room, as the dump does: a step whose Result could not be saved
     * would leave, say, a started version unverified. Checked before it runs (a rollback
     * is tried whatever: it is what puts a node back). */
    if (def->id != STEP_ROLLBACK && (r = state_room(a->cfg, svc, &err)) < 0) {
        log_event(svc->name, req->rollout_id, def->name, 4, "refused: %s", err.msg);
        reply_status(a, peer, req, BATON__STATUS__STATUS_FAILED, def->name, err.msg);
        return;
    }
    if (def->id == STEP_PREFLIGHT && svc_state_begin(*st_p, req->rollout_id) < 0)
        r = baton_err_set(&err, -ENOMEM, "out of memory");
    if (r == 0 && svc_state_set(&(*st_p)->in_progress, def->name) < 0)
        r = baton_err_set(&err, -ENOMEM, "out of memory");
    (*st_p)->in_progress_request = req->request_id;
    if (r == 0)
        r = svc_state_save(a->cfg->state_dir, *st_p, &err);
    struct worker_job *job = r == 0 ? calloc(1, sizeof(*job)) : NULL;
    if (r == 0 && !job)
        r = baton_err_set(&err, -ENOMEM, "out of memory");
    if (r < 0) {
        reply_status(a, peer, req, BATON__STATUS__STATUS_FAILED, def->name, err.msg);
        return;
    }
    job->def = def;
    job->svc = svc;
    job->st = *st_p;
    job->req = req;
    job->min_healthy_ms = svc->min_healthy_ms;
    if (def->id == STEP_VERIFY && req->verify->min_healthy_set)
        job->min_healthy_ms = req->verify->min_healthy_ms;
    /* The rollout's healthy_deadline, within the bounds the coordinator checked. */
    job->healthy_deadline_ms = svc->timeout_verify_ms;
    if ((def->id == STEP_VERIFY || def->id == STEP_ROLLBACK) && req->verify->healthy_deadline_set &&
        req->verify->healthy_deadline_ms >= 1000 && req->verify->healthy_deadline_ms <= 3600 * 1000)
        job->healthy_deadline_ms = req->verify->healthy_deadline_ms;
    run->on = true;
    run->def = def;
    run->svc = svc;
    snprintf(run->rollout_id, sizeof(run->rollout_id), "%s", req->rollout_id);
    run->started_ms = mono_ms();
    snprintf(run->progress, sizeof(run->progress), "started");
    set_asker(run, peer, req);
    if (worker_submit(lane->worker, job, &err) < 0) {
        /* The state says in_progress: a retry or a rollback sorts it out, as after a crash. */
        run->on = false;
        job->st = NULL, job->req = NULL;
        worker_job_free(&job);
        reply_status(a, peer, req, BATON__STATUS__STATUS_FAILED, def->name, err.msg);
        return;
    }
    *st_p = NULL;  /* the worker's now */
    *req_p = NULL; /* likewise */
    progress_to_asker(a, run, "started", false);
}

static void serve_step(agent_t *a, zmq_msg_t *peer, Baton__Envelope **req_p)
{
    Baton__Envelope *req = *req_p;
    const step_def_t *def = step_by_body(req->body_case);
    const svc_config_t *svc = agent_config_service(a->cfg, step_service(req));
    svc_state_t *st = NULL;
    baton_err_t err = {0};
    char why[512] = "";
    if (!svc) {
        snprintf(why, sizeof(why), "unknown service '%.64s'", step_service(req));
        reply_status(a, peer, req, BATON__STATUS__STATUS_BAD_REQUEST, def->name, why);
        return;
    }
    if (!rollout_id_valid(req->rollout_id)) {
        reply_status(a, peer, req, BATON__STATUS__STATUS_BAD_REQUEST, def->name,
                     "rollout id must be 1-64 of [A-Za-z0-9_.-]");
        return;
    }
    /* One step at a time per service; other services' steps run beside it in their lanes. */
    struct lane *lane = agent_lane(a, svc);
    struct running *run = &lane->run;
    if (svc_state_load(a->cfg->state_dir, svc->name, &st, &err) < 0) {
        reply_status(a, peer, req, BATON__STATUS__STATUS_FAILED, def->name, err.msg);
        return;
    }
    step_state_t ss = {.rollout_id = st->rollout_id,
                       .step = st->step,
                       .in_progress = st->in_progress,
                       .running = run->on ? run->def->name : "",
                       .recorded = svc_state_recorded(st, req->request_id),
                       .asker_started_it = st->in_progress_request == req->request_id,
                       .undo_committed = def->id == STEP_ROLLBACK && req->rollback->undo_committed,
                       .stop_asked = st->stop_asked,
                       .asks_down = def->id == STEP_MIGRATE &&
                                    req->migrate->direction == BATON__DIRECTION__DIRECTION_DOWN};
    bool busy = false;
    step_verdict_t v = step_decide(&ss, def->id, req->rollout_id, &busy, why, sizeof(why));
    if ((v == STEP_RUN || v == STEP_REPLAY || v == STEP_ATTACH) &&
        !matches_record(req, def, st, why, sizeof(why)))
        v = STEP_REFUSE;

    switch (v) {
    case STEP_REFUSE:
        log_event(svc->name, req->rollout_id, def->name, 4, "refused: %s", why);
        reply_status(a, peer, req, busy ? BATON__STATUS__STATUS_BUSY : BATON__STATUS__STATUS_FAILED,
                     def->name, why);
        break;
    case STEP_ATTACH:
        log_event(svc->name, req->rollout_id, def->name, 6,
                  "asked again while running: the Result goes to the new asker");
        set_asker(run, peer, req);
        snprintf(why, sizeof(why), "still running (%llu s): %s",
                 (unsigned long long)((mono_ms() - run->started_ms) / 1000), run->progress);
        progress_to_asker(a, run, why, false);
        break;
    case STEP_REPLAY:
        replay(a, peer, req, st, def);
        break;
    case STEP_RELEASE:
        release_record(a, peer, req, svc, st, def);
        break;
    case STEP_RUN:
        run_step(a, peer, req_p, &st, lane, def, svc);
        break;
    }
    svc_state_destroy(&st);
}

/* `baton plan`: a read-only pre-flight on the worker. It holds the worker for its few hundred
 * milliseconds (a step asked meanwhile gets BUSY) but no state: Hello does not report it. */
const step_def_t agent_plan_def = {STEP_NONE, "plan", BATON__ENVELOPE__BODY_PLAN, "", false};

static void serve_plan(agent_t *a, zmq_msg_t *peer, Baton__Envelope **req_p)
{
    Baton__Envelope *req = *req_p;
    const svc_config_t *svc = agent_config_service(a->cfg, req->plan->service);
    baton_err_t err = {0};
    char why[256];
    if (!svc) {
        snprintf(why, sizeof(why), "unknown service '%.64s'", req->plan->service);
        reply_status(a, peer, req, BATON__STATUS__STATUS_BAD_REQUEST, "plan", why);
        return;
    }
    struct lane *lane = agent_lane(a, svc);
    struct running *run = &lane->run;
    if (run->on) {
        snprintf(why, sizeof(why), "busy: rollout %s is running %s of %s", run->rollout_id,
                 run->def->name, run->svc->name);
        reply_status(a, peer, req, BATON__STATUS__STATUS_BUSY, "plan", why);
        return;
    }
    struct worker_job *job = calloc(1, sizeof(*job));
    if (!job) {
        reply_status(a, peer, req, BATON__STATUS__STATUS_FAILED, "plan", "out of memory");
        return;
    }
    job->def = &agent_plan_def;
    job->svc = svc;
    job->req = req;
    run->on = true;
    run->def = &agent_plan_def;
    run->svc = svc;
    run->rollout_id[0] = '\0';
    run->started_ms = mono_ms();
    snprintf(run->progress, sizeof(run->progress), "started");
    set_asker(run, peer, req);
    if (worker_submit(lane->worker, job, &err) < 0) {
        run->on = false;
        job->req = NULL;
        worker_job_free(&job);
        reply_status(a, peer, req, BATON__STATUS__STATUS_FAILED, "plan", err.msg);
        return;
    }
    *req_p = NULL; /* the worker's now */
}

void agent_serve(agent_t *a, zmq_msg_t *peer, Baton__Envelope **req_p)
{
    Baton__Envelope *req = *req_p;
    switch (req->body_case) {
    case BATON__ENVELOPE__BODY_HELLO:
        serve_hello(a, peer, req_p);
        break;
    case BATON__ENVELOPE__BODY_STAGE:
        serve_stage(a, peer, req_p);
        break;
    case BATON__ENVELOPE__BODY_PLAN:
        serve_plan(a, peer, req_p);
        break;
    default:
        if (step_by_body(req->body_case)) {
            serve_step(a, peer, req_p);
            break;
        }
        char msg[128];
        snprintf(msg, sizeof(msg), "%s is not a command an agent runs",
                 envelope_body_name(req->body_case));
        reply_status(a, peer, req, BATON__STATUS__STATUS_BAD_REQUEST, "", msg);
        break;
    }
}

void agent_from_worker(agent_t *a, struct lane *lane)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, worker_socket(lane->worker), ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return;
    }
    Baton__Envelope *env = NULL;
    baton_err_t err = {0};
    int r = envelope_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg), &env, &err);
    zmq_msg_close(&msg);
    if (r < 0) {
        log_event(NULL, NULL, NULL, 3, "from worker: %s", err.msg);
        return;
    }
    struct running *run = &lane->run;
    if (env->body_case == BATON__ENVELOPE__BODY_PROGRESS && run->on) {
        snprintf(run->progress, sizeof(run->progress), "%s", env->progress->message);
        utf8_trim_partial(run->progress);
        progress_to_asker(a, run, env->progress->message, false);
    } else if (env->body_case == BATON__ENVELOPE__BODY_RESULT && run->on) {
        if (run->have_peer) {
            env->request_id = run->request_id;
            send_env(a, &run->peer, env, false);
            zmq_msg_close(&run->peer);
            run->have_peer = false;
        }
        run->on = false;
    }
    envelope_free(&env);
}

void agent_tick(agent_t *a)
{
    uint64_t now = mono_ms();
    /* A heartbeat each second, or as the asker said: the coordinator tells a slow step from a
     * lost node by it. */
    for (size_t i = 0; i < a->cfg->n_services; i++) {
        struct running *run = &a->lanes[i].run;
        if (run->on && now - run->last_beat_ms >= (run->beat_ms ? run->beat_ms : 1000))
            progress_to_asker(a, run, run->progress, true);
    }
    if (!a->watchdog_usec)
        return;
    /* Ping only while every worker is idle or shows signs of life: a wedged step gets the
     * agent restarted by systemd, and its Hello then reports the step as interrupted. */
    uint64_t half_ms = a->watchdog_usec / 2000;
    bool alive = true;
    for (size_t i = 0; i < a->cfg->n_services; i++)
        alive =
            alive && (!a->lanes[i].run.on || now - worker_last_sign(a->lanes[i].worker) < half_ms);
    if (alive && now * 1000 - a->last_ping >= a->watchdog_usec / 4) {
        sd_notify(0, "WATCHDOG=1");
        a->last_ping = now * 1000;
    }
}
