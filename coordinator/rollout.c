/* rollout: the coordinator's side of an upgrade.
 *
 * Nothing is stopped anywhere until every node answered Hello, received the binary intact, and
 * passed its pre-flight checks. Then nodes go one at a time: stop, dump, swap, migrate up,
 * start, verify, commit. The first failure rolls that node back and ends the rollout; nodes
 * already upgraded stay upgraded (they passed their checks) and later ones are untouched.
 *
 * Every event is one JSON object (jansson); --json prints them as they are, one per line, and
 * the text mode renders the same objects for a terminal, so both say exactly the same things. */
#include "rollout.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "client.h"
#include "digest.h"
#include "envelope.h"
#include "interrupt.h"
#include "journal.h"
#include "steps.h"

/* Rollback may stop, down-migrate or restore, start and verify: give it the step deadline
 * several times over before calling a node lost. */
#define ROLLBACK_STEPS 5

struct run {
    const rollout_file_t *rf;        /* the rollout file */
    const struct rollout_opts *opts; /* output mode */
    char id[64];                     /* rollout id */
    void *zctx;                      /* ZeroMQ context */
    client_t **clients;              /* one per node, in file order */
    uint64_t start_ms;               /* when the rollout began */
    journal_t *journal;              /* every event, for baton resume; NULL for status */
    bool journal_failed;             /* an event could not be made durable: stop after the step */
    int *start_at;                   /* resume: per node, index of its first step, -1 = anew */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void render_text(json_t *e)
{
    const char *ev = str(e, "event"), *node = str(e, "node"), *msg = str(e, "message");
    bool ok = json_is_true(json_object_get(e, "ok"));
    long long ms = json_integer_value(json_object_get(e, "ms"));
    if (!strcmp(ev, "start")) {
        printf("baton: %s %s: %s -> %s on %zu nodes\n",
               json_is_true(json_object_get(e, "resumed")) ? "resuming rollout" : "rollout",
               str(e, "rollout"), str(e, "service"), str(e, "version"),
               json_array_size(json_object_get(e, "nodes")));
        printf("  artifact %s (%lld bytes, sha256 %.16s…)\n", str(e, "artifact"),
               json_integer_value(json_object_get(e, "size")), str(e, "sha256"));
    } else if (!strcmp(ev, "check")) {
        printf("  %-10s %-8s %-4s %6lld ms  %s\n", str(e, "phase"), node, ok ? "ok" : "FAIL", ms,
               msg);
    } else if (!strcmp(ev, "node")) {
        printf("[%lld/%lld] %s (%s)\n", json_integer_value(json_object_get(e, "index")),
               json_integer_value(json_object_get(e, "of")), node, msg);
    } else if (!strcmp(ev, "progress")) {
        if (isatty(STDOUT_FILENO))
            printf("             %s\n", msg);
    } else if (!strcmp(ev, "step") || !strcmp(ev, "rollback")) {
        printf("  %-10s %-4s %6lld ms  %s\n", str(e, "step"), ok ? "ok" : "FAIL", ms, msg);
    } else if (!strcmp(ev, "summary")) {
        printf("%s\n", msg);
    } else if (!strcmp(ev, "error")) {
        fprintf(stderr, "baton: %s\n", msg);
    } else if (!strcmp(ev, "status")) {
        printf("%-10s %-24s %-10s %-10s %-12s %s\n", node, str(e, "endpoint"), str(e, "version"),
               str(e, "unit_state"), str(e, "step"), msg);
    }
    fflush(stdout);
}

/* Takes ownership of `e`. */
static void emit(struct run *run, json_t *e)
{
    json_object_set_new(e, "rollout", json_string(run->id));
    if (run->journal && !run->journal_failed) {
        char *line = json_dumps(e, JSON_COMPACT);
        baton_err_t jerr = {0};
        if (!line || journal_append(run->journal, line, &jerr) < 0) {
            /* Without a durable journal there is no resume: settle the node, then stop. */
            fprintf(stderr, "baton: journal: %s; stopping after the step in flight\n",
                    line ? jerr.msg : "out of memory");
            run->journal_failed = true;
        }
        free(line);
    }
    if (run->opts->json) {
        char *line = json_dumps(e, JSON_COMPACT);
        if (line)
            printf("%s\n", line);
        free(line);
        fflush(stdout);
    } else {
        render_text(e);
    }
    json_decref(e);
}

static void on_progress(const char *node, const Baton__Progress *p, void *userdata)
{
    emit(userdata, json_pack("{s:s, s:s, s:s, s:s}", "event", "progress", "node", node, "step",
                             p->step, "message", p->message));
}

/* Calls one command on one node; *ret_env holds the Result whatever its status. */
static int call(struct run *run, size_t i, Baton__Envelope *req, uint64_t timeout_ms,
                Baton__Envelope **ret_env, baton_err_t *err)
{
    return client_call(run->clients[i], run->id, req, timeout_ms, on_progress, run, ret_env, err);
}

static bool result_ok(const Baton__Envelope *env)
{
    return env && env->result->status == BATON__STATUS__STATUS_OK;
}

static json_t *string_list(char **items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

/* What a successful step says in one line. */
static void describe(const Baton__Result *res, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    if (res->dump)
        used += (size_t)snprintf(buf + used, len - used, "%s (%llu bytes, sha256 %.16s…) ",
                                 res->dump->path, (unsigned long long)res->dump->size,
                                 res->dump->sha256);
    for (size_t i = 0; i < res->n_applied && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "applied ",
                                 res->applied[i]);
    for (size_t i = 0; i < res->n_removed && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : " removed ",
                                 res->removed[i]);
    if (*res->version && used < len)
        snprintf(buf + used, len - used, "%srunning %s", used ? " " : "", res->version);
}

/* A Step for this rollout; sha256 "" and version NULL for a rollback, which names neither. */
static void init_step(Baton__Step *s, const struct run *run, const char *sha256)
{
    baton__step__init(s);
    s->service = run->rf->service;
    s->version = *sha256 ? run->rf->version : "";
    s->sha256 = (char *)sha256;
    s->min_healthy_set = run->rf->min_healthy_set;
    s->min_healthy_ms = run->rf->min_healthy_ms;
}

/* ---- before any change ------------------------------------------------------------------- */

/* Asks node i for its Hello; returns the entry for the rollout's service (borrowed from
 * *ret_res, which the caller frees), or NULL with err saying why. */
static const Baton__ServiceInfo *ask_service(struct run *run, size_t i, Baton__Envelope **ret_res,
                                             baton_err_t *err)
{
    Baton__Hello hello = BATON__HELLO__INIT;
    Baton__Envelope req = BATON__ENVELOPE__INIT;
    req.body_case = BATON__ENVELOPE__BODY_HELLO;
    req.hello = &hello;
    *ret_res = NULL;
    if (call(run, i, &req, run->rf->connect_timeout_ms, ret_res, err) < 0)
        return NULL;
    const Baton__Result *r = (*ret_res)->result;
    if (r->status != BATON__STATUS__STATUS_OK || !r->hello) {
        baton_err_set(err, -EIO, "%s", r->message);
        return NULL;
    }
    for (size_t j = 0; j < r->hello->n_services; j++)
        if (!strcmp(r->hello->services[j]->name, run->rf->service))
            return r->hello->services[j];
    baton_err_set(err, -ENOENT, "service %s not managed by this agent", run->rf->service);
    return NULL;
}

/* Resuming: where this rollout left node i, from the agent's own record. */
static int resume_point(struct run *run, size_t i, const Baton__ServiceInfo *svc, bool *ret_skip,
                        char *msg, size_t len)
{
    size_t n = 0;
    const step_def_t *const *seq = step_upgrade_sequence(&n);
    if (!svc->in_progress && !strcmp(svc->step, "committed")) {
        ret_skip[i] = true;
        snprintf(msg, len, "upgraded by this rollout (committed)");
        return 0;
    }
    for (size_t s = 0; s < n; s++)
        if (!strcmp(svc->step, seq[s]->name)) {
            /* A step cut short runs again; after a completed one, the next. */
            run->start_at[i] = (int)(svc->in_progress ? s : s + 1);
            snprintf(msg, len, "resumes at %s (last step %s%s)", seq[run->start_at[i]]->name,
                     svc->step, svc->in_progress ? ", interrupted" : "");
            return 0;
        }
    if (!strcmp(svc->step, "preflight") || !*svc->step) {
        snprintf(msg, len, "reserved by this rollout: pre-flight again");
        return 0;
    }
    snprintf(msg, len, "this rollout failed here (%s): start a new rollout", svc->step);
    return -EPERM;
}

/* Says Hello to every node; all must answer and manage the service. */
static int hello_all(struct run *run, bool *ret_skip)
{
    int failures = 0;
    for (size_t i = 0; i < run->rf->n_nodes; i++) {
        Baton__Envelope *res = NULL;
        baton_err_t err = {0};
        uint64_t t0 = now_ms();
        const Baton__ServiceInfo *svc = ask_service(run, i, &res, &err);
        const Baton__Hello *h = res ? res->result->hello : NULL;
        char msg[600] = "";
        const char *version = "";
        int r = 0;
        if (h && strcmp(h->node_name, run->rf->nodes[i].name)) {
            snprintf(msg, sizeof(msg), "the agent at %s is node '%s', not '%s'",
                     run->rf->nodes[i].endpoint, h->node_name, run->rf->nodes[i].name);
            r = -EINVAL;
        } else if (!svc) {
            snprintf(msg, sizeof(msg), "%s", err.msg);
            r = -EIO;
        } else if (svc->running) {
            snprintf(msg, sizeof(msg), "busy: rollout %s is running %s (%.0f s): %s",
                     svc->rollout_id, svc->step, (double)svc->running_ms / 1000.0, svc->progress);
            r = -EBUSY;
        } else if (run->start_at && !strcmp(svc->rollout_id, run->id)) {
            r = resume_point(run, i, svc, ret_skip, msg, sizeof(msg));
            version = svc->version;
        } else {
            version = svc->version;
            ret_skip[i] = !strcmp(svc->version, run->rf->version) &&
                          !strcmp(svc->active_state, "active") && !svc->in_progress &&
                          step_finished(svc->step, "");
            snprintf(msg, sizeof(msg), "%s %s, %s%s%s", svc->unit, svc->version, svc->active_state,
                     *svc->step ? ", last step " : "", svc->step);
        }
        emit(run, json_pack("{s:s, s:s, s:s, s:b, s:I, s:s, s:s}", "event", "check", "phase",
                            "hello", "node", run->rf->nodes[i].name, "ok", r == 0, "ms",
                            (json_int_t)(now_ms() - t0), "message", msg, "version", version));
        failures += r < 0;
        envelope_free(&res);
    }
    return failures;
}

/* Sends the artifact to one node in chunks; the agent checks the digest at the end. */
static int stage_one(struct run *run, size_t i, const uint8_t *data, uint64_t size,
                     const char *sha256, baton_err_t *err)
{
    uint64_t off = 0;
    do {
        size_t n = size - off > BATON_CHUNK_MAX ? BATON_CHUNK_MAX : (size_t)(size - off);
        Baton__Stage st = BATON__STAGE__INIT;
        st.service = run->rf->service;
        st.version = run->rf->version;
        st.sha256 = (char *)sha256;
        st.size = size;
        st.offset = off;
        st.data.data = (uint8_t *)data + off;
        st.data.len = n;
        Baton__Envelope req = BATON__ENVELOPE__INIT, *res = NULL;
        req.body_case = BATON__ENVELOPE__BODY_STAGE;
        req.stage = &st;
        int r = call(run, i, &req, run->rf->step_timeout_ms, &res, err);
        if (r == 0 && !result_ok(res))
            r = baton_err_set(err, -EIO, "%s", res->result->message);
        envelope_free(&res);
        if (r < 0)
            return r;
        off += n;
    } while (off < size);
    return 0;
}

static int preflight_one(struct run *run, size_t i, const char *sha256, baton_err_t *err)
{
    Baton__Step step;
    init_step(&step, run, sha256);
    Baton__Envelope req = BATON__ENVELOPE__INIT, *res = NULL;
    req.body_case = BATON__ENVELOPE__BODY_PREFLIGHT;
    req.preflight = &step;
    int r = call(run, i, &req, run->rf->step_timeout_ms, &res, err);
    if (r == 0 && !result_ok(res))
        r = baton_err_set(err, res->result->status == BATON__STATUS__STATUS_BUSY ? -EBUSY : -EIO,
                          "%s", res->result->message);
    envelope_free(&res);
    return r;
}

/* ---- the upgrade of one node -------------------------------------------------------------- */

/* Runs one step; emits its event. Returns 0, or < 0 with the reason in err. */
static int run_step(struct run *run, size_t i, const char *name, Baton__Envelope__BodyCase body,
                    const char *sha256, baton_err_t *err)
{
    Baton__Step step;
    Baton__Migrate mig = BATON__MIGRATE__INIT;
    init_step(&step, run, sha256);
    Baton__Envelope req = BATON__ENVELOPE__INIT, *res = NULL;
    req.body_case = body;
    if (body == BATON__ENVELOPE__BODY_MIGRATE) {
        mig.service = run->rf->service;
        mig.direction = BATON__DIRECTION__DIRECTION_UP;
        req.migrate = &mig;
    } else {
        req.preflight = &step; /* every Step-shaped command shares the union's slot */
    }
    uint64_t t0 = now_ms();
    int r = call(run, i, &req, run->rf->step_timeout_ms, &res, err);
    char msg[1024] = "";
    json_t *e =
        json_pack("{s:s, s:s, s:s}", "event", "step", "node", run->rf->nodes[i].name, "step", name);
    if (r == 0) {
        if (result_ok(res)) {
            describe(res->result, msg, sizeof(msg));
            if (body == BATON__ENVELOPE__BODY_MIGRATE && !res->result->n_applied)
                snprintf(msg, sizeof(msg), "nothing to apply (the database is already there)");
        } else
            r = baton_err_set(err, -EIO, "%s", res->result->message);
        json_object_set_new(e, "applied",
                            string_list(res->result->applied, res->result->n_applied));
        if (res->result->dump)
            json_object_set_new(e, "dump",
                                json_pack("{s:s, s:I, s:s}", "path", res->result->dump->path,
                                          "size", (json_int_t)res->result->dump->size, "sha256",
                                          res->result->dump->sha256));
    }
    if (r < 0)
        snprintf(msg, sizeof(msg), "%s", err->msg);
    json_object_set_new(e, "ok", json_boolean(r == 0));
    json_object_set_new(e, "ms", json_integer((json_int_t)(now_ms() - t0)));
    json_object_set_new(e, "message", json_string(msg));
    emit(run, e);
    envelope_free(&res);
    return r;
}

/* Sends a rollback for this run's rollout to node i; 0 when the agent answered OK. */
static int send_rollback(struct run *run, size_t i, uint64_t timeout_ms, Baton__Envelope **ret_res,
                         baton_err_t *err)
{
    Baton__Step step;
    init_step(&step, run, "");
    Baton__Envelope req = BATON__ENVELOPE__INIT;
    req.body_case = BATON__ENVELOPE__BODY_ROLLBACK;
    req.rollback = &step;
    int r = call(run, i, &req, timeout_ms, ret_res, err);
    if (r == 0 && !result_ok(*ret_res))
        r = baton_err_set(err, -EIO, "%s", (*ret_res)->result->message);
    return r;
}

/* Undoes the pre-flight of node i: the agent puts back the record it replaced. A refused
 * rollout leaves every node as it found it. */
static void release_one(struct run *run, size_t i)
{
    Baton__Envelope *res = NULL;
    baton_err_t err = {0};
    uint64_t t0 = now_ms();
    int r = send_rollback(run, i, run->rf->step_timeout_ms, &res, &err);
    emit(run,
         json_pack("{s:s, s:s, s:s, s:b, s:I, s:s}", "event", "check", "phase", "release", "node",
                   run->rf->nodes[i].name, "ok", r == 0, "ms", (json_int_t)(now_ms() - t0),
                   "message", r == 0 ? res->result->message : err.msg));
    envelope_free(&res);
}

/* Rolls node i back; true when the agent says it is back where it was. */
static bool rollback_one(struct run *run, size_t i)
{
    Baton__Envelope *res = NULL;
    baton_err_t err = {0};
    uint64_t t0 = now_ms();
    int r = send_rollback(run, i, run->rf->step_timeout_ms * ROLLBACK_STEPS, &res, &err);
    char msg[1024];
    bool restored = false;
    if (r == 0 && result_ok(res)) {
        restored = res->result->restored_dump;
        if (*res->result->version)
            snprintf(msg, sizeof(msg), "back on %s%s", res->result->version,
                     restored ? " (database restored from the dump)" : "");
        else /* a release: nothing had changed */
            snprintf(msg, sizeof(msg), "%s", res->result->message);
    } else {
        snprintf(msg, sizeof(msg), "%s", err.msg);
    }
    emit(run, json_pack("{s:s, s:s, s:s, s:b, s:I, s:s, s:b}", "event", "rollback", "node",
                        run->rf->nodes[i].name, "step", "rollback", "ok", r == 0, "ms",
                        (json_int_t)(now_ms() - t0), "message", msg, "restored_dump", restored));
    envelope_free(&res);
    return r == 0;
}

/* Test-only fault injection, like the fixture's faults: BATON_FAILPOINT=kill-after:NODE:STEP
 * makes the coordinator SIGKILL itself right after NODE's STEP succeeded, so that tests can
 * kill it at every step of a node, deterministically. */
static void failpoint(const char *node, const char *step)
{
    const char *fp = getenv("BATON_FAILPOINT");
    char want[256];
    snprintf(want, sizeof(want), "kill-after:%s:%s", node, step);
    if (fp && !strcmp(fp, want))
        raise(SIGKILL);
}

/* Upgrades node i, from step `first` of the sequence (0 = stop; more when resuming). */
static int upgrade_one(struct run *run, size_t i, const char *sha256, size_t first,
                       baton_err_t *err)
{
    size_t n = 0;
    const step_def_t *const *seq = step_upgrade_sequence(&n);
    for (size_t s = first; s < n; s++) {
        int r = run_step(run, i, seq[s]->name, seq[s]->body, sha256, err);
        if (r < 0)
            return r;
        failpoint(run->rf->nodes[i].name, seq[s]->name);
        /* Ctrl-C: the step in flight is done; a node not yet committed is rolled back. */
        if (interrupt_count() && s + 1 < n)
            return baton_err_set(err, -ECANCELED, "%s after its %s step", interrupt_name(),
                                 seq[s]->name);
        if (run->journal_failed && s + 1 < n)
            return baton_err_set(err, -ECANCELED,
                                 "the journal could not be written after its %s "
                                 "step",
                                 seq[s]->name);
    }
    return 0;
}

/* ---- the whole rollout -------------------------------------------------------------------- */

static int read_artifact(const char *path, uint8_t **ret_data, uint64_t *ret_size,
                         char hex[DIGEST_HEX_LEN + 1], baton_err_t *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return baton_err_set(err, -errno, "artifact %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size <= 0 || size > (2L << 30)) {
        fclose(f);
        return baton_err_set(err, -EINVAL, "artifact %s: size %ld not in 1 byte..2 GiB", path,
                             size);
    }
    uint8_t *data = malloc((size_t)size);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        fclose(f);
        return baton_err_set(err, -EIO, "artifact %s: read failed", path);
    }
    fclose(f);
    digest_t d;
    digest_init(&d);
    digest_update(&d, data, (size_t)size);
    digest_final_hex(&d, hex);
    *ret_data = data;
    *ret_size = (uint64_t)size;
    return 0;
}

static void make_id(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    unsigned char rnd[3] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, rnd, sizeof(rnd)) < 0)
            rnd[0] = (unsigned char)getpid();
        close(fd);
    }
    snprintf(buf, len, "r%04d%02d%02dT%02d%02d%02d-%02x%02x%02x", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rnd[0], rnd[1], rnd[2]);
}

static int connect_all(struct run *run, baton_err_t *err)
{
    run->zctx = zmq_ctx_new();
    run->clients = calloc(run->rf->n_nodes, sizeof(*run->clients));
    if (!run->zctx || !run->clients)
        return baton_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < run->rf->n_nodes; i++) {
        int r = client_new(run->zctx, run->rf->nodes[i].name, run->rf->nodes[i].endpoint,
                           &run->clients[i], err);
        if (r < 0)
            return r;
        client_set_liveness(run->clients[i], run->rf->liveness_ms);
    }
    return 0;
}

static void disconnect_all(struct run *run)
{
    journal_close(&run->journal);
    free(run->start_at);
    run->start_at = NULL;
    for (size_t i = 0; run->clients && i < run->rf->n_nodes; i++)
        client_destroy(&run->clients[i]);
    free(run->clients);
    if (run->zctx)
        zmq_ctx_term(run->zctx);
}

static int finish(struct run *run, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Releases every node still reserved from `from` on (after a refused or stopped rollout). A
 * second Ctrl-C skips this: the reservations stay for baton rollback to release. */
static void release_from(struct run *run, bool *reserved, size_t from)
{
    for (size_t i = from; i < run->rf->n_nodes; i++)
        if (reserved[i] && interrupt_count() < 2) {
            release_one(run, i);
            reserved[i] = false;
        }
}
static int vfinish(struct run *run, int code, const char *fmt, va_list ap)
{
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    emit(run, json_pack("{s:s, s:b, s:i, s:I, s:s, s:b}", "event", "summary", "ok", code == 0,
                        "exit", code, "ms", (json_int_t)(now_ms() - run->start_ms), "message",
                        msg ? msg : "out of memory", "interrupted", interrupt_count() > 0));
    free(msg);
    disconnect_all(run);
    return code;
}

static int finish(struct run *run, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = vfinish(run, code, fmt, ap);
    va_end(ap);
    return code;
}

/* "a, b, c" of the nodes picked (from `from` on), or "none"; the caller's. No fixed buffer: a
 * fleet of 1,000 nodes is listed whole. */
static char *names(const rollout_file_t *rf, const bool *pick, size_t from)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    bool any = false;
    for (size_t i = from; i < rf->n_nodes; i++)
        if (pick[i]) {
            fprintf(f, "%s%s", any ? ", " : "", rf->nodes[i].name);
            any = true;
        }
    if (!any)
        fputs("none", f);
    fclose(f);
    return buf;
}

/* The summary of a rollout that stopped early: the message, then which nodes this run
 * upgraded and which it left untouched (released). */
static int finish_names(struct run *run, int code, const bool *upgraded, const bool *untouched,
                        size_t untouched_from, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int finish_names(struct run *run, int code, const bool *upgraded, const bool *untouched,
                        size_t untouched_from, const char *fmt, ...)
{
    bool *later = calloc(run->rf->n_nodes, sizeof(bool));
    for (size_t i = untouched_from; later && i < run->rf->n_nodes; i++)
        later[i] = untouched[i] || !upgraded[i];
    char *head = NULL, *up = names(run->rf, upgraded, 0),
         *rest = later ? names(run->rf, later, untouched_from) : NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&head, fmt, ap) < 0)
        head = NULL;
    va_end(ap);
    code =
        finish(run, code, "%s\n  upgraded to %s: %s\n  untouched: %s",
               head ? head : "out of memory", run->rf->version, up ? up : "?", rest ? rest : "?");
    free(head);
    free(up);
    free(rest);
    free(later);
    return code;
}

int rollout_run(const rollout_file_t *rf, const struct rollout_opts *opts)
{
    struct run run = {.rf = rf, .opts = opts, .start_ms = now_ms()};
    if (opts->resume_id)
        snprintf(run.id, sizeof(run.id), "%s", opts->resume_id);
    else
        make_id(run.id, sizeof(run.id));
    baton_err_t err = {0};
    uint8_t *data = NULL;
    uint64_t size = 0;
    char sha[DIGEST_HEX_LEN + 1];
    bool *skip = calloc(rf->n_nodes, sizeof(bool));
    bool *reserved = NULL; /* pre-flight passed and not yet upgraded or released */
    bool *upgraded = NULL; /* committed by this run */
    size_t n = rf->n_nodes;

    if (!skip || digest_global_init(&err) < 0 ||
        read_artifact(rf->artifact, &data, &size, sha, &err) < 0) {
        free(skip);
        emit(&run, json_pack("{s:s, s:s}", "event", "error", "message", err.msg));
        return EXIT_REFUSED;
    }
    if (opts->expect_sha256 && strcmp(opts->expect_sha256, sha)) {
        emit(&run, json_pack("{s:s, s:s}", "event", "error", "message",
                             "refused: the artifact changed since the rollout began (its sha256 "
                             "differs from the journal's); nothing was changed"));
        free(skip);
        free(data);
        return EXIT_REFUSED;
    }
    /* The journal first: a rollout that cannot be resumed does not start. */
    char *file = realpath(rf->path, NULL);
    if (!file || journal_open(opts->state_dir, run.id, &run.journal, &err) < 0 ||
        (opts->resume_id && !(run.start_at = malloc(n * sizeof(int))))) {
        emit(&run, json_pack("{s:s, s:s}", "event", "error", "message",
                             file ? err.msg : "rollout file: cannot resolve its path"));
        journal_close(&run.journal);
        free(file);
        free(skip);
        free(data);
        return EXIT_REFUSED;
    }
    for (size_t i = 0; run.start_at && i < n; i++)
        run.start_at[i] = -1;
    json_t *node_list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(node_list, json_string(rf->nodes[i].name));
    emit(&run, json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:s, s:s, s:b}", "event", "start",
                         "service", rf->service, "version", rf->version, "nodes", node_list,
                         "artifact", rf->artifact, "size", (json_int_t)size, "sha256", sha, "file",
                         file, "resumed", opts->resume_id != NULL));
    free(file);
    int code = EXIT_REFUSED;
    if (rf->sha256 && strcmp(rf->sha256, sha)) {
        code = finish(&run, EXIT_REFUSED,
                      "refused: artifact %s has sha256 %s but the rollout file says %s; "
                      "nothing was changed",
                      rf->artifact, sha, rf->sha256);
        goto out;
    }
    if (connect_all(&run, &err) < 0) {
        code = finish(&run, EXIT_REFUSED, "refused: %s; nothing was changed", err.msg);
        goto out;
    }
    int failed = hello_all(&run, skip);
    if (failed || interrupt_count()) {
        code = interrupt_count() ? finish(&run, EXIT_REFUSED,
                                          "interrupted (%s): nothing was changed", interrupt_name())
                                 : finish(&run, EXIT_REFUSED,
                                          "refused: %d of %zu nodes not ready; nothing was "
                                          "changed",
                                          failed, n);
        goto out;
    }
    /* Stage and preflight on every node that needs the upgrade, before stopping anything. */
    for (size_t i = 0; i < n && !interrupt_count(); i++) {
        if (skip[i] || (run.start_at && run.start_at[i] >= 0))
            continue;
        uint64_t t0 = now_ms();
        int r = stage_one(&run, i, data, size, sha, &err);
        emit(&run,
             json_pack("{s:s, s:s, s:s, s:b, s:I, s:s}", "event", "check", "phase", "stage", "node",
                       rf->nodes[i].name, "ok", r == 0, "ms", (json_int_t)(now_ms() - t0),
                       "message", r == 0 ? "binary received, sha256 verified" : err.msg));
        failed += r < 0;
    }
    if (failed || interrupt_count()) {
        code = interrupt_count() ? finish(&run, EXIT_REFUSED,
                                          "interrupted (%s): nothing was changed", interrupt_name())
                                 : finish(&run, EXIT_REFUSED,
                                          "refused: staging failed on %d nodes; nothing "
                                          "was changed",
                                          failed);
        goto out;
    }
    /* Pre-flight in file order. A node held by another rollout ends it at once: two operators
     * starting the same file race for the first node, and exactly one goes on. */
    if (!(reserved = calloc(n, sizeof(bool)))) {
        code = finish(&run, EXIT_REFUSED, "refused: out of memory; nothing was changed");
        goto out;
    }
    bool busy = false;
    for (size_t i = 0; i < n && !busy && !interrupt_count(); i++) {
        if (skip[i] || (run.start_at && run.start_at[i] >= 0))
            continue; /* resuming: that node is past its pre-flight */
        uint64_t t0 = now_ms();
        int r = preflight_one(&run, i, sha, &err);
        emit(&run,
             json_pack("{s:s, s:s, s:s, s:b, s:I, s:s}", "event", "check", "phase", "preflight",
                       "node", rf->nodes[i].name, "ok", r == 0, "ms", (json_int_t)(now_ms() - t0),
                       "message", r == 0 ? "all checks passed" : err.msg));
        failed += r < 0;
        reserved[i] = r == 0;
        busy = r == -EBUSY;
    }
    if (failed || interrupt_count()) {
        release_from(&run, reserved, 0);
        code = interrupt_count()
                   ? finish(&run, EXIT_REFUSED,
                            "interrupted (%s): nothing was stopped, nothing is left reserved",
                            interrupt_name())
                   : finish(&run, EXIT_REFUSED,
                            "refused: pre-flight failed on %d of %zu nodes%s; nothing was "
                            "stopped, nothing is left reserved",
                            failed, n, busy ? " (held by another rollout)" : "");
        goto out;
    }

    if (!(upgraded = calloc(n, sizeof(bool)))) {
        release_from(&run, reserved, 0);
        code = finish(&run, EXIT_REFUSED, "refused: out of memory; nothing was stopped");
        goto out;
    }
    size_t n_upgraded = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip[i]) {
            emit(&run, json_pack("{s:s, s:s, s:I, s:I, s:s}", "event", "node", "node",
                                 rf->nodes[i].name, "index", (json_int_t)(i + 1), "of",
                                 (json_int_t)n, "message", "already on the target version"));
            continue;
        }
        /* Ctrl-C between nodes: every node is settled; stop here. */
        if (interrupt_count()) {
            release_from(&run, reserved, i);
            code = finish_names(&run, EXIT_NEEDS_CARE, upgraded, reserved, i,
                                "INTERRUPTED (%s) before %s: every node is settled, the fleet is "
                                "mixed\n  to continue: baton rollout %s (upgraded nodes are "
                                "skipped)",
                                interrupt_name(), rf->nodes[i].name, rf->path);
            goto out;
        }
        emit(&run,
             json_pack("{s:s, s:s, s:I, s:I, s:s}", "event", "node", "node", rf->nodes[i].name,
                       "index", (json_int_t)(i + 1), "of", (json_int_t)n, "message", "upgrading"));
        size_t first = run.start_at && run.start_at[i] >= 0 ? (size_t)run.start_at[i] : 0;
        if (upgrade_one(&run, i, sha, first, &err) == 0) {
            upgraded[i] = true;
            reserved[i] = false;
            n_upgraded++;
            continue;
        }
        reserved[i] = false;
        if (err.code == -EINTR) {
            /* Ctrl-C twice: leave now. The agent finishes its step and records it. */
            code = finish_names(&run, EXIT_NEEDS_CARE, upgraded, reserved, i + 1,
                                "INTERRUPTED twice: %s is left in the middle of its upgrade (%s); "
                                "its agent finishes the step and records it\n  next: baton "
                                "status %s, then baton rollback %s",
                                rf->nodes[i].name, err.msg, rf->path, rf->path);
            goto out;
        }
        /* The nodes after this one were reserved by their pre-flight and never changed:
         * release them, so the fleet holds no record of a rollout that ended here. */
        release_from(&run, reserved, i + 1);
        if (err.code == -EHOSTDOWN) {
            /* Its agent finishes or records the step on its own; a rollback sent now would
             * only wait for the same silence. */
            code = finish_names(&run, EXIT_NEEDS_CARE, upgraded, reserved, i + 1,
                                "LOST %s: %s\n  %s: its agent records how the step ended; see "
                                "baton status, then baton rollback",
                                rf->nodes[i].name, err.msg, rf->nodes[i].name);
            goto out;
        }
        bool back = rollback_one(&run, i);
        bool stopped = err.code == -ECANCELED;
        code =
            finish_names(&run, back ? EXIT_ROLLED_BACK : EXIT_NEEDS_CARE, upgraded, reserved, i + 1,
                         "%s %s: %s\n  %s: %s%s%s", stopped ? "INTERRUPTED" : "FAILED on",
                         rf->nodes[i].name, err.msg, rf->nodes[i].name,
                         back ? "rolled back to where it was"
                              : "ROLLBACK FAILED: the node needs attention (baton status)",
                         stopped ? "\n  to continue: baton rollout " : "", stopped ? rf->path : "");
        goto out;
    }
    code =
        finish(&run, EXIT_DONE, "done: %zu of %zu nodes on %s %s (%zu upgraded now) in %.1f s", n,
               n, rf->service, rf->version, n_upgraded, (double)(now_ms() - run.start_ms) / 1000.0);
out:
    free(reserved);
    free(upgraded);
    free(skip);
    free(data);
    return code;
}

int rollout_status(const rollout_file_t *rf, const struct rollout_opts *opts)
{
    struct run run = {.rf = rf, .opts = opts, .start_ms = now_ms()};
    baton_err_t err = {0};
    int unreachable = 0;
    if (connect_all(&run, &err) < 0) {
        emit(&run, json_pack("{s:s, s:s}", "event", "error", "message", err.msg));
        disconnect_all(&run);
        return EXIT_REFUSED;
    }
    if (!opts->json)
        printf("%-10s %-24s %-10s %-10s %-12s %s\n", "NODE", "ENDPOINT", "VERSION", "UNIT",
               "LAST STEP", "ROLLOUT");
    for (size_t i = 0; i < rf->n_nodes; i++) {
        Baton__Envelope *res = NULL;
        baton_err_clear(&err);
        const Baton__ServiceInfo *svc = ask_service(&run, i, &res, &err);
        json_t *e = json_pack("{s:s, s:s, s:s}", "event", "status", "node", rf->nodes[i].name,
                              "endpoint", rf->nodes[i].endpoint);
        if (svc) {
            char step[160];
            if (svc->running)
                snprintf(step, sizeof(step), "%s (running %.0f s)", svc->step,
                         (double)svc->running_ms / 1000.0);
            else
                snprintf(step, sizeof(step), "%s%s", svc->step,
                         svc->in_progress ? " (interrupted)" : "");
            json_object_set_new(e, "running", json_boolean(svc->running));
            json_object_set_new(e, "progress", json_string(svc->progress));
            json_object_set_new(e, "version", json_string(svc->version));
            json_object_set_new(e, "unit_state", json_string(svc->active_state));
            json_object_set_new(e, "step", json_string(*step ? step : "-"));
            json_object_set_new(e, "in_progress", json_boolean(svc->in_progress));
            json_object_set_new(e, "message",
                                json_string(*svc->rollout_id ? svc->rollout_id : "-"));
        } else {
            unreachable++;
            json_object_set_new(e, "version", json_string("?"));
            json_object_set_new(e, "unit_state", json_string("?"));
            json_object_set_new(e, "step", json_string("?"));
            json_object_set_new(e, "message", json_string(err.msg));
        }
        emit(&run, e);
        envelope_free(&res);
    }
    disconnect_all(&run);
    return unreachable ? EXIT_REFUSED : EXIT_DONE;
}

/* True when a service's record holds something to undo or release: an unfinished rollout, or
 * a reservation by a pre-flight (even one a crash cut short). */
static bool unfinished(const Baton__ServiceInfo *svc)
{
    return *svc->rollout_id &&
           !step_finished(svc->in_progress ? "" : svc->step, svc->in_progress ? svc->step : "");
}

int rollout_rollback(const rollout_file_t *rf, const struct rollout_opts *opts)
{
    struct run run = {.rf = rf, .opts = opts, .start_ms = now_ms()};
    baton_err_t err = {0};
    if (connect_all(&run, &err) < 0)
        return finish(&run, EXIT_REFUSED, "refused: %s", err.msg);
    int failed = 0, done = 0, unreachable = 0;
    for (size_t i = 0; i < rf->n_nodes; i++) {
        Baton__Envelope *res = NULL;
        const Baton__ServiceInfo *svc = ask_service(&run, i, &res, &err);
        if (!svc) {
            unreachable++;
            emit(&run, json_pack("{s:s, s:s, s:s, s:b, s:I, s:s}", "event", "check", "phase",
                                 "hello", "node", rf->nodes[i].name, "ok", 0, "ms", (json_int_t)0,
                                 "message", err.msg));
        } else if (svc->running) {
            unreachable++;
            emit(&run, json_pack("{s:s, s:s, s:s, s:b, s:I, s:s}", "event", "check", "phase",
                                 "hello", "node", rf->nodes[i].name, "ok", 0, "ms", (json_int_t)0,
                                 "message", "busy: a step is running; wait for it"));
        } else if (!unfinished(svc)) {
            emit(&run, json_pack("{s:s, s:s, s:I, s:I, s:s}", "event", "node", "node",
                                 rf->nodes[i].name, "index", (json_int_t)(i + 1), "of",
                                 (json_int_t)rf->n_nodes, "message", "nothing to roll back"));
        } else {
            char msg[256];
            if (!strcmp(svc->step, "preflight"))
                snprintf(msg, sizeof(msg), "releasing %s (pre-flight only%s, nothing to undo)",
                         svc->rollout_id, svc->in_progress ? ", interrupted" : "");
            else
                snprintf(msg, sizeof(msg), "rolling back %s (%s%s)", svc->rollout_id, svc->step,
                         svc->in_progress ? ", interrupted" : "");
            emit(&run, json_pack("{s:s, s:s, s:I, s:I, s:s}", "event", "node", "node",
                                 rf->nodes[i].name, "index", (json_int_t)(i + 1), "of",
                                 (json_int_t)rf->n_nodes, "message", msg));
            /* The rollback names that node's own rollout, whatever run started it. */
            snprintf(run.id, sizeof(run.id), "%s", svc->rollout_id);
            if (rollback_one(&run, i))
                done++;
            else
                failed++;
        }
        envelope_free(&res);
        baton_err_clear(&err);
    }
    if (failed || unreachable)
        return finish(&run, EXIT_NEEDS_CARE, "rollback: %d rolled back, %d FAILED, %d unreachable",
                      done, failed, unreachable);
    return finish(&run, EXIT_DONE, "rollback: %d nodes rolled back, the others had nothing to undo",
                  done);
}
