/* engine: the coordinator's one event loop. Every agent has one socket; one epoll set of their
 * descriptors waits on all of them at once (wait_ready), with a timeout that is the nearest of
 * the timers of the nodes with a call in flight (ask again, liveness, deadline) and of the
 * scheduler's own (a pause polls for `baton resume` twice a second). No thread per node: a node
 * is a small state machine (node.c) moved along by the answers this loop hands out. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <zmq.h>

#include "envelope.h"
#include "interrupt.h"
#include "live.h"
#include "run.h"
#include "events.h"
#include "engine.h"

#define ENGINE_TICK_MS 500 /* how often a waiting scheduler looks again */

uint64_t now_ms(void)
{
    return client_now_ms();
}

size_t engine_busy(const struct run *run)
{
    return run->busy;
}

void node_set_call(struct run *run, node_t *nd, node_call_t call)
{
    run->busy += (call != CALL_NONE) - (nd->call != CALL_NONE);
    nd->call = call;
}

int node_send(struct run *run, node_t *nd, node_call_t call, Baton__Envelope *req,
              uint64_t timeout_ms, const engine_ops_t *ops)
{
    baton_err_t err = {0};
    node_set_call(run, nd, call);
    nd->call_t0 = now_ms();
    int r = client_send(nd->client, run->id, req, timeout_ms, &err);
    if (r < 0) {
        node_set_call(run, nd, CALL_NONE);
        nd->ended = call;
        ops->on_result(run, nd, r, NULL, &err);
    }
    return r;
}

/* Hands a finished call to the scheduler: the node is idle again before on_result runs, so
 * on_result may start its next call. */
static void deliver(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err,
                    const engine_ops_t *ops)
{
    nd->ended = nd->call;
    node_set_call(run, nd, CALL_NONE);
    ops->on_result(run, nd, r, env, err);
}

/* One heartbeat a second per node in flight up to ENGINE_HEARTBEATS_MAX nodes that may be in a
 * call at once; beyond, spaced out so that the whole fleet sends about that many a second (Nomad's
 * servers bound their clients' heartbeats the same way, max_heartbeats_per_second), at most 10 s
 * apart (the agent's bound) and at most a quarter of `liveness`. Each heartbeat wakes two of the
 * coordinator's threads: 250 nodes in their stability windows at one a second kept 1.7% of a core
 * busy here, which carried to 1,000 is about 7% (BENCHMARKS.md section 10). */
#define ENGINE_HEARTBEATS_MAX 100
static uint64_t heartbeat_ms(const struct run *run)
{
    /* the nodes that may be in a call at once */
    size_t n = run->rf->strategy.max_in_flight && run->rf->strategy.max_in_flight < run->n
                   ? run->rf->strategy.max_in_flight
                   : run->n;
    uint64_t ms = (uint64_t)n * 1000 / ENGINE_HEARTBEATS_MAX;
    if (ms > 10000)
        ms = 10000;
    if (ms > run->rf->liveness_ms / 4)
        ms = run->rf->liveness_ms / 4;
    return ms < 1000 ? 1000 : ms;
}

int run_connect(struct run *run, baton_err_t *err)
{
    run->zctx = zmq_ctx_new();
    if (!run->zctx)
        return baton_err_set(err, -ENOMEM, "out of memory");
    /* One socket per node (libzmq's default cap is 1023), and two descriptors for each (its
     * connection and its mailbox): a fleet of 1,000 needs more than the usual soft limit of
     * 1024 open files, so raise it to the hard limit, as systemd advises for such programs. */
    struct rlimit rl;
    uint64_t want = 2 * (uint64_t)run->n + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        return baton_err_set(err, -EMFILE,
                             "%zu nodes need about %llu open files; the limit is %llu (ulimit -n)",
                             run->n, (unsigned long long)want, (unsigned long long)rl.rlim_cur);
    zmq_ctx_set(run->zctx, ZMQ_MAX_SOCKETS, (int)run->n + 16);
    /* Staging encrypts the artifact once per node (CURVE) in libzmq's I/O threads: one more
     * thread lets a second core share that work. */
    zmq_ctx_set(run->zctx, ZMQ_IO_THREADS, 2);
    for (size_t i = 0; i < run->n; i++) {
        node_t *nd = &run->nodes[i];
        const rollout_file_t *rf = run->rf;
        int r = rf->insecure
                    ? client_new(run->zctx, nd->def->name, nd->def->endpoint, NULL, NULL, NULL,
                                 &nd->client, err)
                    : client_new(run->zctx, nd->def->name, nd->def->endpoint, &nd->def->public_key,
                                 &rf->secret_key, &rf->public_key, &nd->client, err);
        if (r < 0)
            return r;
        client_set_liveness(nd->client, run->rf->liveness_ms);
        client_set_heartbeat(nd->client, heartbeat_ms(run));
    }
    return 0;
}

void run_disconnect(struct run *run)
{
    journal_close(&run->journal);
    for (size_t i = 0; run->nodes && i < run->n; i++) {
        client_destroy(&run->nodes[i].client);
        envelope_free(&run->nodes[i].asked);
        free(run->nodes[i].why);
        free(run->nodes[i].restore_why);
        free(run->nodes[i].database_id);
        free(run->nodes[i].from_version);
        free(run->nodes[i].an.why);
        run->nodes[i].an.why = NULL;
        run->nodes[i].why = run->nodes[i].restore_why = run->nodes[i].database_id = NULL;
        run->nodes[i].from_version = NULL;
        for (size_t k = 0; k < run->nodes[i].n_mig_ids; k++)
            free(run->nodes[i].mig_ids[k]);
        free(run->nodes[i].mig_ids);
        run->nodes[i].mig_ids = NULL;
        run->nodes[i].n_mig_ids = 0;
    }
    group_free_all(run);
    if (run->prom_curl)
        curl_easy_cleanup(run->prom_curl);
    run->prom_curl = NULL;
    /* A signal (a second Ctrl-C) interrupts the wait with EINTR and leaves the I/O threads
     * running: wait again, since chunks sent as frames point into the artifact, which the
     * caller frees right after (client.h). */
    while (run->zctx && zmq_ctx_term(run->zctx) < 0 && errno == EINTR)
        ;
    run->zctx = NULL;
}

/* The loop's wait: one epoll set of every node's descriptor (client_fd), made once, so that
 * a turn costs the sockets that have news, not the fleet. zmq_poll asks each of its sockets
 * every time: ~0.3 ms a call over 1,000 sockets here, and a 1,000-node plan makes thousands of
 * turns (BENCHMARKS.md section 5). */
struct waiter {
    int ep;
    size_t *ready; /* the nodes in a call whose socket holds a message */
    bool *queued;  /* in ready */
    size_t n_ready;
    size_t *read; /* the nodes read in the last turn */
    size_t n_read;
};

static void ready_add(struct waiter *w, size_t i)
{
    if (!w->queued[i]) {
        w->queued[i] = true;
        w->ready[w->n_ready++] = i;
    }
}

/* A socket used since it was last asked may hold a message that set nothing off: asked before
 * the loop sleeps. After a turn that only read heartbeats, those are the sockets it read; after
 * any other (a send, a tick, a Result), any socket may be. */
static void ask_touched(struct run *run, struct waiter *w, bool all, bool first)
{
    size_t n = all ? run->n : w->n_read;
    for (size_t k = 0; k < n; k++) {
        size_t i = all ? k : w->read[k];
        node_t *nd = &run->nodes[i];
        if (nd->call != CALL_NONE && (first || client_touched(nd->client)) &&
            client_readable(nd->client))
            ready_add(w, i);
    }
}

/* Fills w->ready, sleeping up to `timeout` ms when no socket has news. 1 when the interrupt's
 * pipe or a signal woke it, -EINTR for a second Ctrl-C. */
static int wait_ready(struct run *run, struct waiter *w, long timeout)
{
    struct epoll_event evs[256];
    int n = epoll_wait(w->ep, evs, 256, w->n_ready ? 0 : (int)timeout), woke = 0;
    if (n < 0 && errno == EINTR) {
        woke = 1;
        if (interrupt_drain() >= 2)
            return -EINTR;
    }
    for (int j = 0; j < n; j++) {
        size_t i = evs[j].data.u64;
        if (i == run->n) { /* the interrupt's pipe */
            if (interrupt_drain() >= 2)
                return -EINTR;
            woke = 1;
            continue;
        }
        /* Asked even when idle: that takes the news off its descriptor (a late answer, dropped
         * at its next call), which would otherwise end every wait at once. */
        if (client_readable(run->nodes[i].client) && run->nodes[i].call != CALL_NONE)
            ready_add(w, i);
    }
    return woke;
}

/* Progress to its event, and word for the loop that the turn was more than heartbeats. */
struct heard {
    struct run *run;
    bool progress;
};

static void heard_progress(const char *node, const Baton__Progress *p, void *userdata)
{
    struct heard *h = userdata;
    h->progress = true;
    on_progress(node, p, h->run);
}

/* Reads the sockets that have news and hands over every call that ended: true when one did or
 * an agent said more than a heartbeat (the scheduler has something new to look at). */
static bool read_ready(struct run *run, struct waiter *w, const engine_ops_t *ops)
{
    struct heard h = {.run = run};
    bool ended = false;
    w->n_read = 0;
    for (size_t j = 0; j < w->n_ready; j++) {
        size_t i = w->ready[j];
        node_t *nd = &run->nodes[i];
        w->queued[i] = false;
        if (nd->call == CALL_NONE)
            continue;
        w->read[w->n_read++] = i;
        Baton__Envelope *env = NULL;
        baton_err_t err = {0};
        int r = client_recv(nd->client, heard_progress, &h, &env, &err);
        ended |= r == CLIENT_RESULT || r < 0;
        if (r == CLIENT_RESULT)
            deliver(run, nd, 0, env, &err, ops);
        else if (r < 0)
            deliver(run, nd, r, NULL, &err, ops);
    }
    w->n_ready = 0;
    return ended || h.progress;
}

/* `baton abort` from another shell: as a first Ctrl-C. Looked for twice a second at most (with
 * a shared journal it is a query); the journal's own upkeep at the same pace. True when the
 * journal failed just now (the scheduler stops after the steps in flight). */
static bool look_at_journal(struct run *run, uint64_t *next_look)
{
    if (!run->journal || now_ms() < *next_look)
        return false;
    *next_look = now_ms() + ENGINE_TICK_MS;
    if (journal_take(run->opts->store, run->id, "abort"))
        interrupt_request("baton abort");
    baton_err_t jerr = {0};
    if (!run->journal_failed && journal_tick(run->journal, &jerr) < 0) {
        /* As an append that failed: settle the nodes in flight, then stop. */
        fprintf(stderr, "baton: journal: %s; stopping after the steps in flight\n", jerr.msg);
        run->journal_failed = true;
        return true;
    }
    return false;
}

/* The nearest time at which something is due: a node's timer (ask again, liveness, deadline),
 * the scheduler's look while it waits, a pull's next ask, the live view's clock. UINT64_MAX for
 * none; *ret_busy the nodes with a call in flight. */
static uint64_t next_wake(const struct run *run, bool waiting, uint64_t now, size_t *ret_busy)
{
    uint64_t wake = waiting ? now + ENGINE_TICK_MS : UINT64_MAX;
    if (waiting && run->stage_wake && run->stage_wake < wake)
        wake = run->stage_wake; /* a pull's next ask (node_stage_pump) */
    size_t busy = 0;
    for (size_t i = 0; i < run->n; i++) {
        const node_t *nd = &run->nodes[i];
        if (nd->call == CALL_NONE)
            continue;
        busy++;
        uint64_t w = client_wake(nd->client);
        if (w < wake)
            wake = w;
    }
    if (run->live && wake > now + LIVE_TICK_MS)
        wake = now + LIVE_TICK_MS; /* the times on screen move */
    /* progress_deadline: the scheduler halts the rollout once no node finished for that long */
    uint64_t deadline = run->rf && run->rf->progress_deadline_ms
                            ? run->progress_at + run->rf->progress_deadline_ms + 1
                            : UINT64_MAX;
    if (busy && deadline < wake)
        wake = deadline > now ? deadline : now + ENGINE_TICK_MS;
    *ret_busy = busy;
    return wake;
}

/* A turn of the loop looks at every node (the scheduler, the timers) only when something may
 * have changed: a call ended, an agent said more than a heartbeat, a timer came due, a signal.
 * A turn that only read heartbeats (1,000 nodes in their stability windows send 1,000 a
 * second) costs the sockets it read: a heartbeat only moves a node's timers later, so the
 * nearest one, as computed, is still a time to look again (early at worst). */
int engine_run(struct run *run, const engine_ops_t *ops)
{
    struct waiter w = {.ep = epoll_create1(EPOLL_CLOEXEC)};
    int ret = w.ep < 0 ? -errno : 0;
    if (ret < 0)
        goto out;
    size_t n = run->n ? run->n : 1;
    w.ready = calloc(n, sizeof(*w.ready));
    w.read = calloc(n, sizeof(*w.read));
    w.queued = calloc(n, sizeof(*w.queued));
    if (!w.ready || !w.read || !w.queued) {
        ret = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i <= run->n; i++) {
        int fd = i < run->n ? client_fd(run->nodes[i].client) : interrupt_fd();
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        if (fd >= 0 && epoll_ctl(w.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            ret = -errno;
            goto out;
        }
    }
    uint64_t next_look = 0, wake = 0;
    int interrupts = interrupt_count();
    bool look = true; /* at every node this turn */
    for (bool first = true;; first = false) {
        /* A second Ctrl-C leaves now, whenever it came (the pipe below ends a wait for it). */
        if (interrupt_count() >= 2) {
            ret = -EINTR; /* the caller names what was left in flight */
            goto out;
        }
        look |= look_at_journal(run, &next_look);
        uint64_t now = now_ms();
        look |= now >= wake || interrupt_count() != interrupts;
        interrupts = interrupt_count();
        if (look) {
            size_t busy = 0;
            bool waiting = ops->schedule(run);
            now = now_ms(); /* the scheduler may have waited (a Prometheus query, a webhook) */
            wake = next_wake(run, waiting, now, &busy);
            if (busy != run->busy) { /* node_set_call() is the only writer of nd->call */
                fprintf(stderr, "baton: internal: %zu calls in flight were counted as %zu\n", busy,
                        run->busy);
                run->busy = busy;
            }
            if (busy == 0 && !waiting)
                break;
        }
        ask_touched(run, &w, look, first);
        long timeout = wake == UINT64_MAX ? -1 : wake > now ? (long)(wake - now) : 0;
        if (timeout > INT32_MAX)
            timeout = INT32_MAX;
        int woke = wait_ready(run, &w, timeout);
        if (woke < 0) {
            ret = woke; /* the caller names what was left in flight */
            goto out;
        }
        look = read_ready(run, &w, ops) || woke;
        now = now_ms();
        live_tick(run->live, run, now);
        if (now < wake)
            continue; /* no timer is due */
        look = true;
        for (size_t i = 0; i < run->n; i++) {
            node_t *nd = &run->nodes[i];
            baton_err_t err = {0};
            if (nd->call == CALL_NONE || client_wake(nd->client) > now)
                continue;
            int r = client_tick(nd->client, now, &err);
            if (r < 0)
                deliver(run, nd, r, NULL, &err, ops);
        }
    }
out:
    if (w.ep >= 0)
        close(w.ep);
    free(w.ready);
    free(w.read);
    free(w.queued);
    return ret;
}
