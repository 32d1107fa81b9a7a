/* Unit tests for the coordinator's rollout engine (coordinator/rollout/rollout.c, engine.c, node.c,
 * group.c, the journal) below the cluster: `rollout_run()` drives fake agents that live in a
 * thread of this process, one ZeroMQ ROUTER per node on ipc:// in a temporary folder. They
 * speak the real protocol (Hello, Stage, pre-flight .. commit, rollback) from a script: which
 * step fails, whether its rollback fails too. Each agent logs the commands it got, in the order
 * the whole fleet got them, and the tests assert what an operator checks after a rollout: the
 * exit code, which nodes were stopped, which rolled back, which committed, and in what order.
 *
 * The coordinator's crash is a SIGKILL of a child running it, then `rollout_run()` resumes from
 * the journal it left. BATON_UNIT_SHOW=1 prints each rollout's events (for a test that fails).
 *
 * The cluster tests run the same rules on real systemd and PostgreSQL; these run in seconds,
 * without root, and say which rule broke. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zmq.h>

#include "envelope.h"
#include "fsutil.h"
#include "journal.h"
#include "rollout.h"
#include "rollout_file.h"
#include "steps.h"
#include "version.h"

#define NODES_MAX 6
#define LOG_MAX 64

/* One fake agent: what it runs, what it records, and its script. */
typedef struct fake {
    char name[32];
    void *sock;
    char version[32];   /* what the service runs */
    char rollout[64];   /* its record: the rollout, "" when none */
    char step[32];      /* and its last completed step's word */
    char database[64];  /* the database it says it uses */
    const char *fails;  /* the step that answers FAILED, or NULL */
    const char *silent; /* the step it never answers (a frozen agent), or NULL */
    const char *crash;  /* the step at which the coordinator is killed (it still runs), or NULL */
    bool rollback_fails;
    char shared_from[32]; /* what its dump request said: the node that dumped its database */
    bool down_needs_dump; /* its rollback's down-migration fails: only its dump brings the
                           * schema back, refused (restore_needed) while told no_restore */
    int stop_lock;        /* its last stop request's `lock` (take the migration lock), -1 none */
    uint64_t staged;      /* artifact bytes it holds */
    bool burst;           /* answers artifact chunks in bursts: held until four are, or the last */
    struct held {
        uint8_t id[256];
        size_t id_len;
        uint8_t *buf;
        size_t len;
    } held[8];
    size_t n_held;
    const char *log[LOG_MAX]; /* the commands it got: "hello", "stage", "preflight", ... */
    unsigned at[LOG_MAX];     /* and when, counted across the whole fleet */
    size_t n_log;
    const char *broken; /* what went wrong in the agents' thread (asserted after it ends) */
} fake_t;

struct fixture {
    char dir[64];
    void *zctx;
    void *stop_tx, *stop_rx; /* inproc pair: tells the agents' thread to end */
    pthread_t thread;
    bool running;           /* the agents' thread */
    _Atomic pid_t child;    /* the coordinator, when it runs in a child to be killed */
    journal_store_t *store; /* the rollout's journal, while it runs */
    bool op_resumes;        /* an operator runs `baton resume` once the rollout paused */
    pthread_t op_thread;
    bool op_running;             /* that thread */
    _Atomic bool op_stop;        /* the test ended: the operator gives up */
    const char *op_broken;       /* what went wrong in its thread */
    _Atomic unsigned resumed_at; /* the fleet's counter when it did */
    fake_t nodes[NODES_MAX];
    size_t n;
    size_t art_pad;         /* bytes added to the artifact (one chunk is 1 MiB) */
    long art_size;          /* and its size */
    _Atomic unsigned clock; /* the fleet's command counter */
    char out[96];           /* the rollout's JSON output */
};

/* ---- the fake agents ------------------------------------------------------------------------ */

static void fake_log(struct fixture *f, fake_t *a, const char *what)
{
    if (a->n_log < LOG_MAX) {
        a->at[a->n_log] = ++f->clock;
        a->log[a->n_log++] = what;
    }
}

static void fake_send(fake_t *a, const void *id, size_t id_len, Baton__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    env->protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    if (envelope_pack(env, &buf, &len, &err) < 0) {
        a->broken = "could not pack an answer";
        return;
    }
    zmq_send(a->sock, id, id_len, ZMQ_SNDMORE);
    zmq_send(a->sock, buf, len, 0);
    free(buf);
}

/* An answer kept back (fake_t.burst), packed as fake_send() would; then all of them at once. */
static void fake_hold(fake_t *a, const void *id, size_t id_len, Baton__Envelope *env)
{
    struct held *h = &a->held[a->n_held];
    baton_err_t err = {0};
    env->protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    if (a->n_held >= 8 || id_len > sizeof(h->id) ||
        envelope_pack(env, &h->buf, &h->len, &err) < 0) {
        a->broken = "could not hold an answer";
        return;
    }
    memcpy(h->id, id, id_len);
    h->id_len = id_len;
    a->n_held++;
}

static void fake_flush(fake_t *a)
{
    for (size_t i = 0; i < a->n_held; i++) {
        zmq_send(a->sock, a->held[i].id, a->held[i].id_len, ZMQ_SNDMORE);
        zmq_send(a->sock, a->held[i].buf, a->held[i].len, 0);
        free(a->held[i].buf);
    }
    a->n_held = 0;
}

/* Answers one request the way the real agent's worker would, from the script. */
static void fake_answer(struct fixture *f, fake_t *a, const void *id, size_t id_len,
                        const Baton__Envelope *req)
{
    Baton__Result res = BATON__RESULT__INIT;
    Baton__Hello hello = BATON__HELLO__INIT;
    Baton__ServiceInfo svc = BATON__SERVICE_INFO__INIT;
    Baton__ServiceInfo *svcs[1] = {&svc};
    Baton__DumpInfo dump = BATON__DUMP_INFO__INIT;
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.request_id = req->request_id;
    env.rollout_id = req->rollout_id;
    env.body_case = BATON__ENVELOPE__BODY_RESULT;
    env.result = &res;

    if (req->body_case == BATON__ENVELOPE__BODY_HELLO) {
        fake_log(f, a, "hello");
        hello.agent_version = BATON_VERSION;
        hello.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
        hello.node_name = a->name;
        svc.name = "gamesrv";
        svc.unit = "gamesrv.service";
        svc.active_state = "active";
        svc.version = a->version;
        svc.rollout_id = a->rollout;
        svc.step = a->step;
        svc.database_id = *a->rollout ? a->database : ""; /* as its last pre-flight found */
        svc.dumped = !strcmp(a->step, "dump") || !strcmp(a->step, "swap") ||
                     !strcmp(a->step, "migrate"); /* enough for these tests' resumes */
        hello.n_services = 1;
        hello.services = svcs;
        res.hello = &hello;
        fake_send(a, id, id_len, &env);
        return;
    }
    if (req->body_case == BATON__ENVELOPE__BODY_STAGE) {
        fake_log(f, a, "stage");
        const Baton__Stage *s = req->stage;
        if (s->offset == a->staged)
            a->staged += s->data.len;
        res.staged_bytes = a->staged;
        if (!a->burst || !s->data.len) { /* the first question (what do you hold?) at once */
            fake_send(a, id, id_len, &env);
            return;
        }
        fake_hold(a, id, id_len, &env);
        if (a->n_held == 4 || s->offset + s->data.len >= s->size)
            fake_flush(a);
        return;
    }
    const step_def_t *def = step_by_body(req->body_case);
    if (!def) {
        a->broken = "a request that is no step";
        return;
    }
    fake_log(f, a, def->name);
    res.step = (char *)def->name;
    if (a->silent && !strcmp(a->silent, def->name))
        return;
    if (def->id == STEP_STOP && f->op_resumes && !f->resumed_at && a != &f->nodes[0])
        a->broken = "stopped while the rollout was paused";
    pid_t child = f->child; /* read once: 0 would be this whole process group */
    if (a->crash && !strcmp(a->crash, def->name) && child > 0)
        kill(child, SIGKILL);
    bool fail =
        def->id == STEP_ROLLBACK ? a->rollback_fails : a->fails && !strcmp(a->fails, def->name);
    if (fail) {
        res.status = BATON__STATUS__STATUS_FAILED;
        res.message = "the script says this step fails";
        fake_send(a, id, id_len, &env);
        return;
    }
    const Baton__Step *step = req->preflight; /* every Step-shaped body shares the slot */
    if (def->id == STEP_STOP)
        a->stop_lock = step->lock;
    if (def->id == STEP_ROLLBACK && a->down_needs_dump && step->no_restore) {
        res.status = BATON__STATUS__STATUS_FAILED;
        res.message = "migrate down failed: only the dump brings the schema back, and other "
                      "nodes serve from this database";
        res.restore_needed = true;
        fake_send(a, id, id_len, &env);
        return;
    }
    switch (def->id) {
    case STEP_PREFLIGHT:
        res.database_id = a->database;
        break;
    case STEP_DUMP:
        snprintf(a->shared_from, sizeof(a->shared_from), "%s", step->shared_from);
        if (*step->shared_from) {
            res.shared = true;
            break;
        }
        dump.path = "/var/backups/gamesrv+r.dump";
        dump.size = 1234;
        dump.sha256 = "00";
        res.dump = &dump;
        break;
    case STEP_MIGRATE:
        res.shared = *a->shared_from != '\0';
        break;
    case STEP_START:
    case STEP_VERIFY:
        snprintf(a->version, sizeof(a->version), "%s", step->version);
        res.version = a->version;
        break;
    case STEP_ROLLBACK:
        snprintf(a->version, sizeof(a->version), "1.0.0");
        res.version = a->version;
        res.schema = "unchanged";
        res.restored_dump = a->down_needs_dump;
        break;
    default:
        break;
    }
    snprintf(a->rollout, sizeof(a->rollout), "%s", req->rollout_id);
    snprintf(a->step, sizeof(a->step), "%s", def->done);
    fake_send(a, id, id_len, &env);
}

static void *fake_agents(void *arg)
{
    struct fixture *f = arg;
    zmq_pollitem_t items[NODES_MAX + 1];
    for (size_t i = 0; i < f->n; i++)
        items[i] = (zmq_pollitem_t){.socket = f->nodes[i].sock, .events = ZMQ_POLLIN};
    items[f->n] = (zmq_pollitem_t){.socket = f->stop_rx, .events = ZMQ_POLLIN};
    for (;;) {
        if (zmq_poll(items, (int)f->n + 1, -1) < 0 && errno != EINTR)
            break;
        if (items[f->n].revents & ZMQ_POLLIN) {
            char b;
            zmq_recv(f->stop_rx, &b, 1, 0); /* taken, so that the next run's thread waits */
            break;
        }
        for (size_t i = 0; i < f->n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            fake_t *a = &f->nodes[i];
            uint8_t id[256];
            int id_len = zmq_recv(a->sock, id, sizeof(id), 0);
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            if (id_len <= 0 || zmq_msg_recv(&msg, a->sock, 0) < 0) {
                zmq_msg_close(&msg);
                continue;
            }
            Baton__Envelope *req = NULL;
            baton_err_t err = {0};
            if (envelope_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg), &req, &err) == 0)
                fake_answer(f, a, id, (size_t)id_len, req);
            envelope_free(&req);
            zmq_msg_close(&msg);
        }
    }
    return NULL;
}

/* ---- the fixture: a fleet of n fake agents on 1.0.0, and a rollout to 1.1.0 ---------------- */

static struct fixture *fleet_new(void **state, size_t n)
{
    struct fixture *f = *state = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/baton-unit-rollout-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->zctx = zmq_ctx_new();
    f->n = n;
    assert_true(n <= NODES_MAX);
    for (size_t i = 0; i < n; i++) {
        fake_t *a = &f->nodes[i];
        snprintf(a->name, sizeof(a->name), "node%zu", i + 1);
        snprintf(a->version, sizeof(a->version), "1.0.0");
        snprintf(a->database, sizeof(a->database), "7000000000000000%zu/game%zu", i + 1, i + 1);
        a->stop_lock = -1;
        a->sock = zmq_socket(f->zctx, ZMQ_ROUTER);
        char ep[128];
        snprintf(ep, sizeof(ep), "ipc://%s/%s", f->dir, a->name);
        assert_int_equal(zmq_bind(a->sock, ep), 0);
    }
    f->stop_rx = zmq_socket(f->zctx, ZMQ_PAIR);
    f->stop_tx = zmq_socket(f->zctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(f->stop_rx, "inproc://stop"), 0);
    assert_int_equal(zmq_connect(f->stop_tx, "inproc://stop"), 0);
    return f;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    pid_t child = f->child;
    if (child > 0) { /* a test that failed midway */
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    if (f->op_running) {
        f->op_stop = true;
        pthread_join(f->op_thread, NULL);
    }
    if (f->running) {
        zmq_send(f->stop_tx, "", 0, 0);
        pthread_join(f->thread, NULL);
    }
    int linger = 0;
    for (size_t i = 0; i < f->n; i++) {
        zmq_setsockopt(f->nodes[i].sock, ZMQ_LINGER, &linger, sizeof(linger));
        zmq_close(f->nodes[i].sock);
        for (size_t k = 0; k < f->nodes[i].n_held; k++)
            free(f->nodes[i].held[k].buf);
    }
    zmq_close(f->stop_tx);
    zmq_close(f->stop_rx);
    zmq_ctx_term(f->zctx);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Writes the rollout file (its strategy lines as given), runs the rollout against the fleet and
 * returns its exit code; its events are in f->out, one JSON object per line. */
/* The rollout in the state folder (its journal's name: id) waits in a pause, as `baton resume`
 * reads its journal (journal_record_t.waiting). */
static bool journal_paused(const struct fixture *f, const char *dir, char *id, size_t len)
{
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        size_t n = strlen(de->d_name);
        if (n > 6 && !strcmp(de->d_name + n - 6, ".jsonl"))
            snprintf(id, len, "%.*s", (int)(n - 6), de->d_name);
    }
    if (d)
        closedir(d);
    journal_record_t rec;
    memset(&rec, 0, sizeof(rec));
    baton_err_t err = {0};
    bool paused = *id && journal_read(f->store, id, &rec, &err) == 0 && rec.waiting;
    journal_record_clear(&rec);
    return paused;
}

/* The operator: waits (inotify on the journal's folder, or every 50 ms where inotify is not
 * to be had) until the rollout says it paused, then does what `baton resume` does to a paused
 * rollout: a request through the journal. Whatever goes wrong, it still asks the rollout to go
 * on once it knows its id (a paused rollout waits for ever) and says what went wrong in
 * f->op_broken; it gives up after 30 s, or when the test ends (f->op_stop). */
static void *operator_main(void *arg)
{
    struct fixture *f = arg;
    char dir[128], id[64] = "";
    snprintf(dir, sizeof(dir), "%s/state/rollouts", f->dir);
    int in = inotify_init1(IN_CLOEXEC);
    if (in >= 0 && inotify_add_watch(in, dir, IN_MODIFY | IN_CREATE) < 0) {
        close(in);
        in = -1;
    }
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool paused = false;
    while (!(paused = journal_paused(f, dir, id, sizeof(id))) && !f->op_stop) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 30)
            break;
        struct pollfd p = {.fd = in, .events = POLLIN};
        char buf[4096];
        if (poll(&p, in >= 0 ? 1 : 0, in >= 0 ? 200 : 50) > 0 && read(in, buf, sizeof(buf)) < 0)
            break;
    }
    if (in >= 0)
        close(in);
    if (!paused)
        f->op_broken = "the rollout never paused";
    else if (!f->op_stop)
        /* That it waits is an absence: a window in which no node may be stopped (the agents'
         * thread says so if one is), then the request. 700 ms: longer than the engine's tick
         * (500 ms), at which a paused rollout looks at its journal again. */
        nanosleep(&(struct timespec){.tv_nsec = 700 * 1000 * 1000}, NULL);
    f->resumed_at = f->clock;
    baton_err_t err = {0};
    if (*id && journal_request(f->store, id, "continue", &err) < 0 && !f->op_broken)
        f->op_broken = "baton resume's request could not be made";
    return NULL;
}

static int fleet_run(struct fixture *f, const char *strategy, const char *resume_id, bool crash)
{
    char path[128], art[128];
    snprintf(art, sizeof(art), "%s/gamesrv-1.1.0", f->dir);
    FILE *a = fopen(art, "w");
    assert_non_null(a);
    fputs("#!/bin/sh\necho 1.1.0\n#", a);
    for (size_t i = 0; i < f->art_pad; i++)
        fputc('x', a);
    fputc('\n', a);
    f->art_size = ftell(a);
    fclose(a);
    snprintf(path, sizeof(path), "%s/rollout.yml", f->dir);
    FILE *y = fopen(path, "w");
    assert_non_null(y);
    fprintf(y,
            "service: gamesrv\nversion: 1.1.0\nartifact: ./gamesrv-1.1.0\ninsecure: true\n"
            "timeouts:\n  connect: 5s\n  step: 30s\n%snodes:\n",
            strategy ? strategy : "");
    for (size_t i = 0; i < f->n; i++)
        fprintf(y, "  - name: %s\n    endpoint: ipc://%s/%s\n", f->nodes[i].name, f->dir,
                f->nodes[i].name);
    fclose(y);

    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    if (rollout_file_load(path, &rf, &err) < 0)
        fail_msg("%s", err.msg);
    char state[128];
    snprintf(state, sizeof(state), "%s/state", f->dir);
    struct rollout_opts opts = {.json = true, .resume_id = resume_id};
    assert_int_equal(journal_store_new(state, NULL, &opts.store, &err), 0);
    f->store = opts.store;
    if (f->op_resumes) {
        char dir[160];
        snprintf(dir, sizeof(dir), "%s/rollouts", state);
        assert_int_equal(fs_mkdir_p(dir, 0700, &err), 0);
        assert_int_equal(pthread_create(&f->op_thread, NULL, operator_main, f), 0);
        f->op_running = true;
    }

    /* Its output goes to a file of the test's, read back by the assertions. */
    snprintf(f->out, sizeof(f->out), "%s/out.json", f->dir);
    fflush(stdout);
    fflush(stderr);
    int code = -1;
    pid_t pid = 0;
    if (crash) {
        /* The coordinator in a child of its own, which the script kills (SIGKILL: a crash).
         * Forked before the agents' thread starts; it inherits the parent's ZeroMQ context and
         * sockets but never touches them (its own context is rollout_run's), and dies with the
         * parent (a test that aborts leaves no coordinator behind). */
        pid_t parent = getpid();
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(98);
            if (!freopen(f->out, "w", stdout))
                _exit(99);
            int r = rollout_run(rf, &opts);
            fflush(stdout);
            _exit(r);
        }
        f->child = pid;
    }
    assert_int_equal(pthread_create(&f->thread, NULL, fake_agents, f), 0);
    f->running = true;
    if (crash) {
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        f->child = 0;
        code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    } else {
        int saved = dup(STDOUT_FILENO);
        assert_non_null(freopen(f->out, "w", stdout));
        code = rollout_run(rf, &opts);
        fflush(stdout);
        dup2(saved, STDOUT_FILENO);
        close(saved);
    }
    assert_int_equal(zmq_send(f->stop_tx, "", 0, 0), 0);
    pthread_join(f->thread, NULL);
    f->running = false;
    if (f->op_running) {
        pthread_join(f->op_thread, NULL);
        f->op_running = false;
    }
    if (f->op_broken)
        fail_msg("the operator: %s", f->op_broken);
    for (size_t i = 0; i < f->n; i++)
        if (f->nodes[i].broken)
            fail_msg("%s: %s", f->nodes[i].name, f->nodes[i].broken);

    f->store = NULL;
    journal_store_destroy(&opts.store);
    rollout_file_destroy(&rf);
    if (getenv("BATON_UNIT_SHOW")) { /* the rollout's events, for a test that fails */
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "cat '%s' >&2", f->out);
        (void)!system(cmd);
    }
    return code;
}

static int fleet_rollout(struct fixture *f, const char *strategy)
{
    return fleet_run(f, strategy, NULL, false);
}

/* Forgets what the agents got so far (their records stay). */
static void fleet_forget(struct fixture *f)
{
    for (size_t i = 0; i < f->n; i++)
        f->nodes[i].n_log = 0;
}

/* ---- what the fleet saw -------------------------------------------------------------------- */

/* When node `a` got `what` (the fleet's counter), 0 when never. */
static unsigned got(const fake_t *a, const char *what)
{
    for (size_t i = 0; i < a->n_log; i++)
        if (!strcmp(a->log[i], what))
            return a->at[i];
    return 0;
}

/* Its commands after the Hellos and the staging, space-separated. */
static const char *steps_of(const fake_t *a, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t off = 0;
    for (size_t i = 0; i < a->n_log; i++) {
        if (!strcmp(a->log[i], "hello") || !strcmp(a->log[i], "stage"))
            continue;
        off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? " " : "", a->log[i]);
        if (off >= len)
            break;
    }
    return buf;
}

static void assert_steps(const fake_t *a, const char *want)
{
    char buf[512];
    if (strcmp(steps_of(a, buf, sizeof(buf)), want))
        fail_msg("%s got \"%s\", expected \"%s\"", a->name, buf, want);
}

/* Every event the rollout printed (`--json`: one object per line), in order; the caller's. */
static json_t *events_of(const struct fixture *f)
{
    json_t *all = json_array();
    FILE *in = fopen(f->out, "r");
    assert_non_null(in);
    char line[65536];
    json_error_t jerr;
    while (fgets(line, sizeof(line), in)) {
        json_t *e = json_loads(line, 0, &jerr);
        if (e)
            json_array_append_new(all, e);
    }
    fclose(in);
    return all;
}

/* What the summary event says of a node ("done", "rolled_back", ...), or its message and
 * details (node NULL), as `baton rollout --json` prints it last; the caller's. */
static char *summary_of(const struct fixture *f, const char *node)
{
    json_t *all = events_of(f), *e, *last = NULL;
    size_t k;
    json_array_foreach(all, k, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "event")) ?: "", "summary"))
            last = e; /* the last one */
    }
    assert_non_null(last);
    json_incref(last);
    json_decref(all);
    char *ret = NULL;
    if (node) {
        const char *v = json_string_value(json_object_get(json_object_get(last, "nodes"), node));
        ret = strdup(v ? v : "(none)");
    } else { /* its message, then its details, one per line */
        size_t len = 0;
        FILE *m = open_memstream(&ret, &len);
        assert_non_null(m);
        fputs(json_string_value(json_object_get(last, "message")) ?: "", m);
        json_t *d;
        size_t i;
        json_array_foreach(json_object_get(last, "details"), i, d)
            fprintf(m, "\n%s", json_string_value(d) ?: "");
        fclose(m);
    }
    json_decref(last);
    return ret;
}

/* The summary's message holds `want` (its text as the operator reads it). */
static void assert_summary_says(const struct fixture *f, const char *want)
{
    char *msg = summary_of(f, NULL);
    if (!strstr(msg, want))
        fail_msg("the summary says \"%s\", not \"%s\"", msg, want);
    free(msg);
}

static void assert_summary(const struct fixture *f, const char *node, const char *want)
{
    char *got = summary_of(f, node);
    if (strcmp(got, want))
        fail_msg("the summary says %s is %s, expected %s", node, got, want);
    free(got);
}

#define UPGRADED "preflight stop dump swap migrate start verify commit"

/* ---- the tests ----------------------------------------------------------------------------- */

/* One node at a time: every node goes pre-flight .. commit, all pre-flights before any stop,
 * and a node is stopped only after the one before it committed. */
static void test_one_at_a_time(void **state)
{
    struct fixture *f = fleet_new(state, 3);
    assert_int_equal(fleet_rollout(f, NULL), EXIT_DONE);
    for (size_t i = 0; i < 3; i++) {
        assert_steps(&f->nodes[i], UPGRADED);
        assert_string_equal(f->nodes[i].version, "1.1.0");
        assert_true(got(&f->nodes[i], "preflight") < got(&f->nodes[0], "stop"));
    }
    assert_true(got(&f->nodes[0], "commit") < got(&f->nodes[1], "stop"));
    assert_true(got(&f->nodes[1], "commit") < got(&f->nodes[2], "stop"));
    for (size_t i = 0; i < 3; i++)
        assert_summary(f, f->nodes[i].name, "done");
}

/* Answers that arrive together on one socket: each agent answers the artifact's chunks four at
 * a time. The socket signals once for all four; the loop reads up to the first, and must ask the
 * socket again before it sleeps (engine.c, client_touched). Missed, a transfer would wait for its
 * chunk's deadline and fail. */
static void test_chunk_answers_in_bursts(void **state)
{
    struct fixture *f = fleet_new(state, 2);
    f->art_pad = 5 * BATON_CHUNK_MAX; /* 6 chunks: a window of 4, then 2 */
    for (size_t i = 0; i < 2; i++)
        f->nodes[i].burst = true;
    assert_int_equal(fleet_rollout(f, NULL), EXIT_DONE);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(f->nodes[i].staged, (uint64_t)f->art_size);
        assert_int_equal(f->nodes[i].n_held, 0);
        /* The question what it holds, then each chunk once: a transfer that stalled is asked
         * again where it stands after its deadline and would count more. */
        size_t asked = 0;
        for (size_t k = 0; k < f->nodes[i].n_log; k++)
            asked += !strcmp(f->nodes[i].log[k], "stage");
        assert_int_equal(asked, 1 + 6);
        assert_steps(&f->nodes[i], UPGRADED);
        assert_summary(f, f->nodes[i].name, "done");
    }
}

/* Nothing is stopped before every pre-flight passed: one refusal, and the nodes that passed are
 * released, none stopped. */
static void test_preflight_refused_stops_nothing(void **state)
{
    struct fixture *f = fleet_new(state, 3);
    f->nodes[2].fails = "preflight";
    assert_int_equal(fleet_rollout(f, NULL), EXIT_REFUSED);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(got(&f->nodes[i], "stop"), 0);
        assert_string_equal(f->nodes[i].version, "1.0.0");
    }
    assert_steps(&f->nodes[0], "preflight rollback");
    assert_steps(&f->nodes[1], "preflight rollback");
    assert_steps(&f->nodes[2], "preflight");
}

/* halt (the default): the node whose verify failed is rolled back, the one before it stays
 * committed, the one after it is released and never stopped. */
static void test_verify_fails_halts(void **state)
{
    struct fixture *f = fleet_new(state, 3);
    f->nodes[1].fails = "verify";
    assert_int_equal(fleet_rollout(f, NULL), EXIT_ROLLED_BACK);
    assert_steps(&f->nodes[0], UPGRADED);
    assert_steps(&f->nodes[1], "preflight stop dump swap migrate start verify rollback");
    assert_steps(&f->nodes[2], "preflight rollback");
    assert_string_equal(f->nodes[0].version, "1.1.0");
    assert_string_equal(f->nodes[1].version, "1.0.0");
    assert_summary(f, "node1", "done");
    assert_summary(f, "node2", "rolled_back");
    assert_summary_says(f, "FAILED on node2: ");
    assert_summary_says(f, "next: fix the cause");
}

/* continue with max_failures 1: the failed node is rolled back and the rollout goes on. */
static void test_continue_within_max_failures(void **state)
{
    struct fixture *f = fleet_new(state, 3);
    f->nodes[0].fails = "start";
    assert_int_equal(fleet_rollout(f, "on_failure: continue\nmax_failures: 1\n"), EXIT_ROLLED_BACK);
    assert_steps(&f->nodes[0], "preflight stop dump swap migrate start rollback");
    assert_steps(&f->nodes[1], UPGRADED);
    assert_steps(&f->nodes[2], UPGRADED);
    assert_true(got(&f->nodes[0], "rollback") < got(&f->nodes[1], "stop"));
}

/* rollback-all: commits wait for the whole rollout; a failure rolls back every node this
 * rollout upgraded, newest first, and none is committed. */
static void test_rollback_all_newest_first(void **state)
{
    struct fixture *f = fleet_new(state, 3);
    f->nodes[2].fails = "verify";
    assert_int_equal(fleet_rollout(f, "on_failure: rollback-all\n"), EXIT_ROLLED_BACK);
    for (size_t i = 0; i < 3; i++) {
        assert_steps(&f->nodes[i], "preflight stop dump swap migrate start verify rollback");
        assert_string_equal(f->nodes[i].version, "1.0.0");
        assert_summary(f, f->nodes[i].name, "rolled_back");
    }
    assert_true(got(&f->nodes[2], "rollback") < got(&f->nodes[1], "rollback"));
    assert_true(got(&f->nodes[1], "rollback") < got(&f->nodes[0], "rollback"));
}

/* A rollback that fails needs the operator: exit 4, and no further node is touched. */
static void test_rollback_fails_needs_care(void **state)
{
    struct fixture *f = fleet_new(state, 3);
    f->nodes[0].fails = "migrate";
    f->nodes[0].rollback_fails = true;
    assert_int_equal(fleet_rollout(f, NULL), EXIT_NEEDS_CARE);
    assert_steps(&f->nodes[0], "preflight stop dump swap migrate rollback");
    assert_int_equal(got(&f->nodes[1], "stop"), 0);
    assert_int_equal(got(&f->nodes[2], "stop"), 0);
    assert_summary(f, "node1", "rollback_failed");
    assert_summary_says(f, "ROLLBACK FAILED: the node needs attention");
}

/* Batches of 2 with max_unavailable 2: both nodes of a batch are down together, the next batch
 * waits for both to commit. */
static void test_batches_side_by_side(void **state)
{
    struct fixture *f = fleet_new(state, 4);
    assert_int_equal(fleet_rollout(f, "batches: 2\nmax_unavailable: 2\n"), EXIT_DONE);
    for (size_t i = 0; i < 4; i++)
        assert_steps(&f->nodes[i], UPGRADED);
    assert_true(got(&f->nodes[1], "stop") < got(&f->nodes[0], "commit"));
    assert_true(got(&f->nodes[0], "stop") < got(&f->nodes[1], "commit"));
    for (size_t i = 2; i < 4; i++) {
        assert_true(got(&f->nodes[0], "commit") < got(&f->nodes[i], "stop"));
        assert_true(got(&f->nodes[1], "commit") < got(&f->nodes[i], "stop"));
    }
}

/* Two nodes on one database: the first dumps and migrates it, the second is told so (its dump
 * and migration are skipped). */
static void test_shared_database_dumped_once(void **state)
{
    struct fixture *f = fleet_new(state, 3);
    snprintf(f->nodes[1].database, sizeof(f->nodes[1].database), "%s", f->nodes[0].database);
    assert_int_equal(fleet_rollout(f, NULL), EXIT_DONE);
    assert_string_equal(f->nodes[0].shared_from, "");
    assert_string_equal(f->nodes[1].shared_from, "node1");
    assert_string_equal(f->nodes[2].shared_from, "");
}

/* An agent that goes silent in a step (frozen) is LOST after `liveness`: exit 4, its state is
 * unknown, nothing else is started. */
static void test_silent_agent_is_lost(void **state)
{
    struct fixture *f = fleet_new(state, 3);
    f->nodes[1].silent = "migrate";
    assert_int_equal(fleet_rollout(f, "liveness: 2s\n"), EXIT_NEEDS_CARE);
    assert_int_equal(got(&f->nodes[1], "rollback"), 0);
    assert_int_equal(got(&f->nodes[2], "stop"), 0);
    assert_summary(f, "node1", "done");
    assert_summary(f, "node2", "lost");
    assert_summary_says(f, "LOST node2: ");
}

/* Events of the rollout's output named `name`, in order, as one string ("paused continued"). */
static void assert_events(const struct fixture *f, const char *names, const char *want)
{
    char got[256] = "";
    size_t off = 0;
    char list[128];
    snprintf(list, sizeof(list), " %s ", names);
    json_t *all = events_of(f), *e;
    size_t k;
    json_array_foreach(all, k, e)
    {
        const char *ev = json_string_value(json_object_get(e, "event"));
        char word[40];
        snprintf(word, sizeof(word), " %s ", ev ? ev : "");
        if (ev && strstr(list, word) && off < sizeof(got))
            off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s", off ? " " : "", ev);
    }
    json_decref(all);
    if (strcmp(got, want))
        fail_msg("events \"%s\", expected \"%s\"", got, want);
}

/* pause_after: canary: the rollout waits after the first batch, its nodes committed, until
 * `baton resume` asks it to go on (a request through the journal, as the CLI makes it): no
 * node of the next batch is stopped before. */
static void test_pause_after_canary(void **state)
{
    struct fixture *f = fleet_new(state, 3);
    f->op_resumes = true;
    assert_int_equal(fleet_rollout(f, "pause_after: canary\n"), EXIT_DONE);
    assert_events(f, "paused continued", "paused continued");
    for (size_t i = 0; i < 3; i++)
        assert_steps(&f->nodes[i], UPGRADED);
    assert_true(f->resumed_at >= got(&f->nodes[0], "commit"));
    assert_true(f->resumed_at < got(&f->nodes[1], "stop"));
}

/* The coordinator killed (SIGKILL) while node2 migrates; its agent finishes the step on its own.
 * `baton resume` goes on from the journal and the agents' records: node1 is left alone, node2
 * goes on after its migration (never a step twice), node3 is upgraded. */
static void test_resume_after_coordinator_crash(void **state)
{
    struct fixture *f = fleet_new(state, 3);
    f->nodes[1].crash = "migrate";
    assert_int_equal(fleet_run(f, NULL, NULL, true), -SIGKILL);
    char id[64];
    snprintf(id, sizeof(id), "%s", f->nodes[1].rollout);
    assert_string_equal(f->nodes[1].step, "migrate");
    assert_steps(&f->nodes[1], "preflight stop dump swap migrate");
    assert_int_equal(got(&f->nodes[2], "stop"), 0);
    fleet_forget(f);
    assert_int_equal(fleet_run(f, NULL, id, false), EXIT_DONE);
    assert_steps(&f->nodes[0], "");
    assert_steps(&f->nodes[1], "start verify commit");
    assert_steps(&f->nodes[2], UPGRADED); /* reserved, so its pre-flight runs again */
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(f->nodes[i].version, "1.1.0");
    assert_summary(f, "node1", "skipped"); /* committed by the run that died */
    assert_summary(f, "node2", "done");
    assert_summary(f, "node3", "done");
}

/* restore_shared: stop-group. node1 and node2 share a database; node1 dumped and migrated it,
 * its migration failed, and its rollback's down-migration too: only the dump brings the schema
 * back, refused while node2 could serve from it. The rollout stops node2 (without taking the
 * migration lock: node1's restore needs it), restores through node1's rollback, then brings
 * node2 back. */
static void test_stop_group_restores_shared_database(void **state)
{
    struct fixture *f = fleet_new(state, 2);
    snprintf(f->nodes[1].database, sizeof(f->nodes[1].database), "%s", f->nodes[0].database);
    f->nodes[0].fails = "migrate";
    f->nodes[0].down_needs_dump = true;
    assert_int_equal(fleet_rollout(f, "restore_shared: stop-group\n"), EXIT_ROLLED_BACK);
    assert_steps(&f->nodes[0], "preflight stop dump swap migrate rollback rollback");
    assert_steps(&f->nodes[1], "preflight stop rollback");
    assert_int_equal(f->nodes[0].stop_lock, 1); /* its own dump: the lock from the stop */
    assert_int_equal(f->nodes[1].stop_lock, 0); /* stopped for the restore: never the lock */
    /* node2 stopped after node1's refused rollback, before its restore; back after it */
    unsigned refused = 0, restore = 0;
    for (size_t i = 0; i < f->nodes[0].n_log; i++)
        if (!strcmp(f->nodes[0].log[i], "rollback"))
            *(refused ? &restore : &refused) = f->nodes[0].at[i];
    assert_true(refused < got(&f->nodes[1], "stop"));
    assert_true(got(&f->nodes[1], "stop") < restore);
    assert_true(restore < got(&f->nodes[1], "rollback"));
    assert_events(f, "group", "group");
    assert_summary(f, "node1", "rolled_back");
    assert_summary(f, "node2", "rolled_back");
}

/* The same without stop-group (the default, refuse): node2 is never stopped, node1 is left
 * stopped and not restored, and the summary says how to restore it. */
static void test_shared_restore_refused_by_default(void **state)
{
    struct fixture *f = fleet_new(state, 2);
    snprintf(f->nodes[1].database, sizeof(f->nodes[1].database), "%s", f->nodes[0].database);
    f->nodes[0].fails = "migrate";
    f->nodes[0].down_needs_dump = true;
    assert_int_equal(fleet_rollout(f, NULL), EXIT_NEEDS_CARE);
    assert_steps(&f->nodes[0], "preflight stop dump swap migrate rollback");
    assert_int_equal(got(&f->nodes[1], "stop"), 0);
    assert_summary_says(f, "STOPPED, NOT RESTORED: other nodes serve from its database");
    assert_summary_says(f, "--restore-shared");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_one_at_a_time, teardown),
        cmocka_unit_test_teardown(test_chunk_answers_in_bursts, teardown),
        cmocka_unit_test_teardown(test_preflight_refused_stops_nothing, teardown),
        cmocka_unit_test_teardown(test_verify_fails_halts, teardown),
        cmocka_unit_test_teardown(test_continue_within_max_failures, teardown),
        cmocka_unit_test_teardown(test_rollback_all_newest_first, teardown),
        cmocka_unit_test_teardown(test_rollback_fails_needs_care, teardown),
        cmocka_unit_test_teardown(test_batches_side_by_side, teardown),
        cmocka_unit_test_teardown(test_shared_database_dumped_once, teardown),
        cmocka_unit_test_teardown(test_stop_group_restores_shared_database, teardown),
        cmocka_unit_test_teardown(test_shared_restore_refused_by_default, teardown),
        cmocka_unit_test_teardown(test_silent_agent_is_lost, teardown),
        cmocka_unit_test_teardown(test_resume_after_coordinator_crash, teardown),
        cmocka_unit_test_teardown(test_pause_after_canary, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
