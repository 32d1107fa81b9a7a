/* front: see front.h. */
#include "front.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "pull.h"
#include "stage.h"
#include "thread.h"

struct front {
    const agent_config_t *cfg;                 /* configuration (read-only, shared) */
    front_kind_t kind;                         /* what it answers */
    agent_thread_t t;                          /* its thread and PAIR (thread.h) */
    sd_bus *bus;                               /* Hello: its own connection to systemd */
    struct staging stages[AGENT_SERVICES_MAX]; /* Stage: one transfer per service */
    pull_t *pulls[AGENT_SERVICES_MAX];         /* Stage: one pull per service (pull.h) */
};

struct front_job {
    zmq_msg_t peer;                            /* who asked (ROUTER identity) */
    Baton__Envelope *req;                      /* the request (owned) */
    struct run_view views[AGENT_SERVICES_MAX]; /* Hello: the running steps, as handed over */
    bool have_views;                           /* views were given */
};

static void job_free(struct front_job **job_p)
{
    if (!job_p || !*job_p)
        return;
    zmq_msg_close(&(*job_p)->peer);
    envelope_free(&(*job_p)->req);
    free(*job_p);
    *job_p = NULL;
}

static void answer_hello(front_t *f, struct front_job *job, Baton__Result *res, baton_err_t *err)
{
    Baton__Hello *hello = NULL;
    int r = hello_build(f->cfg, &f->bus, job->have_views ? job->views : NULL, &hello, err);
    res->status = r == 0 ? BATON__STATUS__STATUS_OK : BATON__STATUS__STATUS_FAILED;
    res->step = "hello";
    res->hello = hello;
}

/* A chunk of a pushed artifact, or (with a url) where the pull of one stands. */
static void answer_stage(front_t *f, struct front_job *job, Baton__Result *res, char *line,
                         size_t len, baton_err_t *err)
{
    const Baton__Envelope *req = job->req;
    const svc_config_t *svc = agent_config_service(f->cfg, req->stage->service);
    uint64_t held = 0;
    int r;
    size_t i = svc ? (size_t)(svc - f->cfg->services) : 0;
    if (!svc)
        r = baton_err_set(err, -ENOENT, "unknown service '%.64s'", req->stage->service);
    else if (*req->stage->url)
        r = pull_ask(&f->pulls[i], f->cfg, svc, req->stage, res, line, len, err);
    else {
        r = stage_chunk(&f->stages[i], f->cfg, req->stage, &held, err);
        res->staged_bytes = held;
    }
    if (r < 0 && !*req->stage->url) /* a pull's end is logged by the pull */
        log_event(req->stage->service, req->rollout_id, "stage", 4, "%s", err->msg);
    res->status = r == 0 ? BATON__STATUS__STATUS_OK : BATON__STATUS__STATUS_FAILED;
    res->step = "stage";
    res->stage_resume = r == -EPROTO;
}

/* Answers one job and sends [peer][packed Envelope] to the main loop. */
static void answer(front_t *f, struct front_job *job)
{
    baton_err_t err = {0};
    Baton__Result res = BATON__RESULT__INIT;
    char line[BATON_ERR_MSG_MAX] = "";
    if (f->kind == FRONT_HELLO)
        answer_hello(f, job, &res, &err);
    else
        answer_stage(f, job, &res, line, sizeof(line), &err);
    res.message = err.code ? err.msg : line;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.request_id = job->req->request_id;
    env.rollout_id = job->req->rollout_id;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;
    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t perr = {0};
    if (envelope_pack(&env, &buf, &len, &perr) < 0) {
        log_event(NULL, job->req->rollout_id, NULL, 3, "front: %s", perr.msg);
    } else if (zmq_msg_send(&job->peer, f->t.thread_end, ZMQ_SNDMORE) < 0 ||
               zmq_send(f->t.thread_end, buf, len, 0) < 0) {
        log_event(NULL, job->req->rollout_id, NULL, 3, "front: send to main loop: %s",
                  zmq_strerror(errno));
    }
    free(buf);
    if (res.hello)
        hello_free(&res.hello);
}

static void *front_main(void *arg)
{
    front_t *f = arg;
    struct front_job *job;
    while ((job = agent_thread_next(&f->t))) {
        answer(f, job);
        job_free(&job);
    }
    return NULL;
}

int front_new(void *zctx, const agent_config_t *cfg, front_kind_t kind, front_t **ret,
              baton_err_t *err)
{
    front_t *f = calloc(1, sizeof(*f));
    if (!f)
        return baton_err_set(err, -ENOMEM, "out of memory");
    f->cfg = cfg;
    f->kind = kind;
    for (size_t i = 0; i < AGENT_SERVICES_MAX; i++)
        f->stages[i].fd = -1;
    int r = agent_thread_start(&f->t, zctx, f, front_main, f, "front", err);
    if (r < 0) {
        front_destroy(&f);
        return r;
    }
    *ret = f;
    return 0;
}

void front_destroy(front_t **f_p)
{
    if (!f_p || !*f_p)
        return;
    front_t *f = *f_p;
    /* Jobs handed over but never taken (the thread stopped first) are left to the context:
     * the agent is exiting. */
    agent_thread_stop(&f->t);
    sd_bus_flush_close_unref(f->bus);
    for (size_t i = 0; i < AGENT_SERVICES_MAX; i++) {
        stage_reset(&f->stages[i], NULL);
        pull_destroy(&f->pulls[i]); /* what it got stays for the next start */
    }
    free(f);
    *f_p = NULL;
}

void *front_socket(front_t *f)
{
    return f->t.main_end;
}

int front_submit(front_t *f, zmq_msg_t *peer, Baton__Envelope **req_p, const struct run_view *views,
                 baton_err_t *err)
{
    struct front_job *job = calloc(1, sizeof(*job));
    if (!job)
        return baton_err_set(err, -ENOMEM, "out of memory");
    zmq_msg_init(&job->peer);
    if (zmq_msg_copy(&job->peer, peer) < 0) {
        int e = errno;
        job_free(&job);
        return baton_err_set(err, -e, "front: %s", zmq_strerror(e));
    }
    if (views) {
        memcpy(job->views, views, sizeof(job->views));
        job->have_views = true;
    }
    job->req = *req_p;
    if (zmq_send(f->t.main_end, &job, sizeof(job), 0) != sizeof(job)) {
        int e = errno;
        job->req = NULL; /* still the caller's */
        job_free(&job);
        return baton_err_set(err, -e, "front: %s", zmq_strerror(e));
    }
    *req_p = NULL;
    return 0;
}

int front_take(front_t *f, zmq_msg_t *ret_peer, zmq_msg_t *ret_reply)
{
    zmq_msg_init(ret_peer);
    zmq_msg_init(ret_reply);
    int more = 0;
    size_t more_len = sizeof(more);
    if (zmq_msg_recv(ret_peer, f->t.main_end, ZMQ_DONTWAIT) < 0 ||
        zmq_getsockopt(f->t.main_end, ZMQ_RCVMORE, &more, &more_len) < 0 || !more ||
        zmq_msg_recv(ret_reply, f->t.main_end, 0) < 0) {
        zmq_msg_close(ret_peer);
        zmq_msg_close(ret_reply);
        return -EAGAIN;
    }
    return 0;
}
