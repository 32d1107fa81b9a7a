/* worker: see worker.h. */
#include "worker.h"
#include "clock.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "db_lock.h"
#include "envelope.h"
#include "log.h"
#include "metrics.h"
#include "step.h"
#include "thread.h"
#include "unit.h"

struct worker {
    const agent_config_t *cfg;                    /* configuration (read-only, shared) */
    agent_thread_t t;                             /* its thread and PAIR (thread.h) */
    _Atomic uint64_t last_sign;                   /* monotonic ms of the last tick */
    sd_bus *bus;                                  /* the worker's own connection to systemd */
    char pidfile[PATH_MAX];                       /* STATE_DIR/running-SERVICE.pid */
    struct pg_conn *locks[AGENT_SERVICES_MAX];    /* per service: its migration lock while held */
    struct pg_conn *sessions[AGENT_SERVICES_MAX]; /* per service: that connection after the
                                                   * migration, unlocked (step.h) */
    metrics_steps_t steps[AGENT_SERVICES_MAX]; /* per service: its steps' last runs (metrics.h) */
};

void worker_job_free(struct worker_job **job_p)
{
    if (!job_p || !*job_p)
        return;
    svc_state_destroy(&(*job_p)->st);
    envelope_free(&(*job_p)->req);
    free(*job_p);
    *job_p = NULL;
}

/* Sends one Envelope to the main loop. The PAIR is inproc and never full for long: block. */
static void to_main(worker_t *w, Baton__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    if (envelope_pack(env, &buf, &len, &err) < 0) {
        log_event(NULL, NULL, NULL, 3, "worker: %s", err.msg);
        return;
    }
    if (zmq_send(w->t.thread_end, buf, len, 0) < 0)
        log_event(NULL, NULL, NULL, 3, "worker: send to main loop: %s", zmq_strerror(errno));
    free(buf);
}

struct progress_sink {
    worker_t *w;         /* for the socket */
    const char *step;    /* the step's name */
    const char *rollout; /* its rollout */
};

static void on_progress(void *userdata, const char *msg)
{
    struct progress_sink *p = userdata;
    atomic_store(&p->w->last_sign, mono_ms());
    Baton__Progress pr = BATON__PROGRESS__INIT;
    pr.step = (char *)p->step;
    pr.message = (char *)msg;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.rollout_id = (char *)p->rollout;
    env.body_case = BATON__ENVELOPE__BODY_PROGRESS;
    env.progress = &pr;
    to_main(p->w, &env);
}

static void on_tick(void *userdata)
{
    struct progress_sink *p = userdata;
    atomic_store(&p->w->last_sign, mono_ms());
}

/* plan: read-only, outside the state and its record. */
static void run_plan(worker_t *w, step_ctx_t *ctx, const step_def_t *def)
{
    baton_err_t err = {0};
    int pr = step_plan(ctx, &err);
    Baton__Result res = BATON__RESULT__INIT;
    res.status = pr == 0 ? BATON__STATUS__STATUS_OK : BATON__STATUS__STATUS_FAILED;
    res.message = err.msg;
    res.step = (char *)def->name;
    res.plan = ctx->out.plan;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;
    to_main(w, &env);
    step_out_clear(&ctx->out);
}

/* The step's Result from what it left in ctx->out and the record (pointers into both). */
static void result_of(step_ctx_t *ctx, const step_def_t *def, int r, const baton_err_t *err,
                      Baton__Result *res, Baton__DumpInfo *dump)
{
    svc_state_t *st = ctx->st;
    res->status = r == 0 ? BATON__STATUS__STATUS_OK : BATON__STATUS__STATUS_FAILED;
    res->message = (char *)err->msg;
    res->step = (char *)def->name;
    res->version = ctx->out.version;
    res->restored_dump = ctx->out.restored_dump;
    res->schema = ctx->out.schema;
    res->n_applied = ctx->out.n_applied;
    res->applied = ctx->out.applied;
    res->n_removed = ctx->out.n_removed;
    res->removed = ctx->out.removed;
    res->n_ids = ctx->out.n_ids;
    res->ids = ctx->out.ids;
    res->shared = ctx->out.shared;
    res->restore_needed = ctx->out.restore_needed;
    res->n_unit_log = ctx->out.n_unit_log;
    res->unit_log = ctx->out.unit_log;
    if (def->id == STEP_PREFLIGHT && r == 0) {
        res->database_id = st->database_id;
        res->down_limit = (uint32_t)st->down_limit;
        res->rehearse_ms = ctx->out.rehearse_ms;
    }
    if (def->id == STEP_DUMP && r == 0 && !ctx->out.shared) {
        dump->path = st->dump_path;
        dump->size = st->dump_size;
        dump->sha256 = st->dump_sha256;
        res->dump = dump;
    }
}

/* The step's end on its record: the last step (or rollback_failed), nothing in progress, a
 * failed pre-flight's reservation given back. Returns r, or a failure when memory ran out. */
static int record_end(svc_state_t *st, const step_def_t *def, int r, baton_err_t *err)
{
    bool rollback = def->id == STEP_ROLLBACK;
    int e = 0;
    if (r == 0 || rollback)
        e = svc_state_set(&st->step, rollback && r < 0 ? "rollback_failed" : def->done);
    if (e == 0)
        e = svc_state_set(&st->in_progress, "");
    /* A failed pre-flight changed nothing live: the record it replaced comes back, so a
     * refused rollout leaves every node as it found it. */
    if (e == 0 && def->id == STEP_PREFLIGHT && r < 0)
        e = svc_state_release(st);
    if (e < 0 && r == 0)
        r = baton_err_set(err, -ENOMEM, "out of memory");
    return r;
}

/* The Result goes on record with the state, in one atomic write: whoever asks again for this
 * step (a coordinator that lost the answer) gets it, and the step never runs twice. A step
 * whose Result cannot be recorded fails: asked again, it would answer "done" without the dump,
 * the ids or the versions the coordinator needs. `step_before` is the record's last step before
 * this one's end. Returns r, or the failure; res follows. */
static int record_result(worker_t *w, step_ctx_t *ctx, const step_def_t *def, uint64_t request_id,
                         const char *step_before, int r, baton_err_t *err, Baton__Result *res)
{
    svc_state_t *st = ctx->st;
    size_t len = baton__result__get_packed_size(res);
    uint8_t *packed = malloc(len ? len : 1);
    int rr = packed ? 0 : -ENOMEM;
    if (packed) {
        baton__result__pack(res, packed);
        if (!(def->id == STEP_PREFLIGHT && r < 0))
            rr = svc_state_set_result(st, def->id, request_id, packed, len);
    }
    free(packed);
    if (rr < 0 && r == 0) {
        r = baton_err_set(err, rr, "%s: its Result (%zu bytes) could not be recorded: %s",
                          def->name, len, strerror(-rr));
        res->status = BATON__STATUS__STATUS_FAILED;
        res->message = err->msg;
        /* On record as cut short, not as done: whoever asks again (or rolls back) treats it
         * as a step interrupted by a crash, which every rule already settles. */
        if (step_before && svc_state_set(&st->step, step_before) == 0)
            svc_state_set(&st->in_progress, def->name);
    }
    baton_err_t serr = {0};
    if (svc_state_save(w->cfg->state_dir, st, &serr) < 0) {
        step_log(ctx, 3, "%s", serr.msg);
        if (r == 0) {
            r = baton_err_set(err, serr.code, "%s", serr.msg);
            res->status = BATON__STATUS__STATUS_FAILED;
        }
    }
    return r;
}

/* The migration lock spans stop (when asked to take it there), dump, swap and migrate: it goes
 * once the migration's Result (or any other step's) is on record, at once when the stop, the
 * dump or the swap failed, and after a shared dump (the schema is another node's: this one
 * migrates nothing). */
static void settle_lock(step_ctx_t *ctx, const step_def_t *def, int r)
{
    struct pg_conn **lock = ctx->db_lock, **session = ctx->db_session;
    bool keep = r == 0 && (def->id == STEP_STOP || (def->id == STEP_DUMP && !ctx->out.shared) ||
                           def->id == STEP_SWAP);
    if (*lock && !keep) {
        /* After a migration its connection stays, unlocked, for the start's schema check: a
         * connection fewer to set up inside the downtime. */
        if (r == 0 && def->id == STEP_MIGRATE && !*session &&
            db_lock_unlock_keep(lock, session) == 0)
            step_log(ctx, 6,
                     "migration lock released (its connection kept for the start's schema check)");
        else {
            db_lock_release(lock);
            step_log(ctx, 6, "migration lock released");
        }
    }
    /* The kept connection lives from the migration to the step after it (the start, or a
     * rollback), whatever its end: an idle session is not left on the database for long. */
    if (*session && def->id != STEP_MIGRATE) {
        db_lock_release(session);
        step_log(ctx, 7, "kept database connection closed");
    }
}

/* Runs one job to its end: the step, the state saved with its Result on record, the Result
 * sent to the main loop. */
static void run_job(worker_t *w, struct worker_job *job)
{
    const step_def_t *def = job->def;
    svc_state_t *st = job->st;
    size_t i = (size_t)(job->svc - w->cfg->services);
    struct progress_sink sink = {.w = w, .step = def->name, .rollout = job->req->rollout_id};
    step_ctx_t ctx = {.cfg = w->cfg,
                      .svc = job->svc,
                      .st = st,
                      .req = job->req,
                      .rollout_id = job->req->rollout_id,
                      .step = def->name,
                      .pidfile = w->pidfile,
                      .bus = &w->bus,
                      .db_lock = def->id == STEP_NONE ? NULL : &w->locks[i],
                      .db_session = def->id == STEP_NONE ? NULL : &w->sessions[i],
                      .on_progress = on_progress,
                      .on_tick = on_tick,
                      .userdata = &sink,
                      .min_healthy_ms = job->min_healthy_ms,
                      .healthy_deadline_ms = job->healthy_deadline_ms};
    if (def->id == STEP_NONE) {
        run_plan(w, &ctx, def);
        return;
    }
    baton_err_t err = {0};
    /* The service and step in the message too: `journalctl -u baton-agent` shows only it. */
    step_log(&ctx, 6, "%s %s: begin", job->svc->name, def->name);
    metrics_steps_t *m = &w->steps[i];
    baton_err_t merr = {0};
    if (metrics_write(w->cfg, job->svc, st, m, &merr) < 0) /* in_progress: this step */
        step_log(&ctx, 4, "metrics: %s", merr.msg);
    uint64_t t0 = mono_ms();
    int r = step_function(def->id)(&ctx, &err);
    uint64_t took_ms = mono_ms() - t0;
    /* A start, verify or rollback that failed: the service says why in its journal, not in
     * "failed (exit-code)". Its last lines go with the Result. */
    sd_bus *bus = NULL;
    baton_err_t berr = {0};
    if (r < 0 && (def->id == STEP_START || def->id == STEP_VERIFY || def->id == STEP_ROLLBACK) &&
        step_bus(&ctx, &bus, &berr) == 0)
        unit_journal_tail(bus, job->svc->unit, st->unit_started_usec, UNIT_LOG_LINES,
                          &ctx.out.unit_log, &ctx.out.n_unit_log);

    char *step_before = strdup(st->step); /* put back if the Result cannot be recorded */
    r = record_end(st, def, r, &err);
    Baton__Result res = BATON__RESULT__INIT;
    Baton__DumpInfo dump = BATON__DUMP_INFO__INIT;
    result_of(&ctx, def, r, &err, &res, &dump);
    r = record_result(w, &ctx, def, job->req->request_id, step_before, r, &err, &res);
    free(step_before);
    step_log(&ctx, r == 0 ? 6 : 3, "%s %s: %s%s", job->svc->name, def->name,
             r == 0 ? "done" : "failed: ", r == 0 ? "" : err.msg);
    metrics_steps_record(m, def->id, took_ms, r == 0);
    baton_err_clear(&merr);
    if (metrics_write(w->cfg, job->svc, st, m, &merr) < 0)
        step_log(&ctx, 4, "metrics: %s", merr.msg);
    settle_lock(&ctx, def, r);

    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.rollout_id = job->req->rollout_id;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;
    to_main(w, &env);
    step_out_clear(&ctx.out);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    struct worker_job *job;
    atomic_store(&w->last_sign, mono_ms());
    while ((job = agent_thread_next(&w->t))) {
        run_job(w, job);
        worker_job_free(&job);
        atomic_store(&w->last_sign, mono_ms());
    }
    return NULL;
}

int worker_new(void *zctx, const agent_config_t *cfg, const svc_config_t *svc, worker_t **ret,
               baton_err_t *err)
{
    worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return baton_err_set(err, -ENOMEM, "out of memory");
    w->cfg = cfg;
    for (size_t i = 0; i < AGENT_SERVICES_MAX; i++)
        metrics_steps_init(&w->steps[i]);
    atomic_store(&w->last_sign, mono_ms());
    if (snprintf(w->pidfile, sizeof(w->pidfile), "%s/running-%s.pid", cfg->state_dir, svc->name) >=
        (int)sizeof(w->pidfile)) {
        free(w);
        return baton_err_set(err, -ENAMETOOLONG, "%s: state_dir too long", cfg->state_dir);
    }
    /* The worker takes no signals: SIGTERM is the main loop's to handle (thread.c). */
    int r = agent_thread_start(&w->t, zctx, w, worker_main, w, "worker", err);
    if (r < 0) {
        worker_destroy(&w);
        return r;
    }
    *ret = w;
    return 0;
}

void worker_destroy(worker_t **w_p)
{
    if (!w_p || !*w_p)
        return;
    worker_t *w = *w_p;
    agent_thread_stop(&w->t);
    sd_bus_flush_close_unref(w->bus);
    for (size_t i = 0; i < AGENT_SERVICES_MAX; i++) {
        db_lock_release(&w->locks[i]);
        db_lock_release(&w->sessions[i]);
    }
    free(w);
    *w_p = NULL;
}

void *worker_socket(worker_t *w)
{
    return w->t.main_end;
}

int worker_submit(worker_t *w, struct worker_job *job, baton_err_t *err)
{
    if (zmq_send(w->t.main_end, &job, sizeof(job), 0) != sizeof(job))
        return baton_err_set(err, -errno, "hand the step to the worker: %s", zmq_strerror(errno));
    atomic_store(&w->last_sign, mono_ms());
    return 0;
}

uint64_t worker_last_sign(worker_t *w)
{
    return atomic_load(&w->last_sign);
}
