/* engine: the coordinator's one event loop. Every agent has one socket; one epoll set of their
 * descriptors waits on all of them at once (wait_ready), with a timeout that is the nearest of
 * the timers of the nodes with a call in flight (ask again, liveness, deadline) and of the
 * scheduler's own (a pause polls for `baton resume` twice a second). No thread per node: a node
 * is a small state machine (node.c) moved along by the answers this loop hands out. */
#include <assert.h>
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
};

static void ready_add(struct waiter *w, size_t i)
{
    if (!w->queued[i]) {
        w->queued[i] = true;
        w->ready[w->n_ready++] = i;
    }
}

/* Fills w->ready, sleeping up to `timeout` ms when no socket has news; -EINTR for a second
 * Ctrl-C. */
static int wait_ready(struct run *run, struct waiter *w, bool first, long timeout)
{
    /* A socket used since it was last asked may hold a message that set nothing off. */
    for (size_t i = 0; i < run->n; i++) {
        node_t *nd = &run->nodes[i];
        if (nd->call != CALL_NONE && (first || client_touched(nd->client)) &&
            client_readable(nd->client))
            ready_add(w, i);
    }
    struct epoll_event evs[256];
    int n = epoll_wait(w->ep, evs, 256, w->n_ready ? 0 : (int)timeout);
    if (n < 0 && errno == EINTR && interrupt_drain() >= 2)
        return -EINTR;
    for (int j = 0; j < n; j++) {
        size_t i = evs[j].data.u64;
        if (i == run->n) { /* the interrupt's pipe */
            if (interrupt_drain() >= 2)
                return -EINTR;
            continue;
        }
        /* Asked even when idle: that takes the news off its descriptor (a late answer, dropped
         * at its next call), which would otherwise end every wait at once. */
        if (client_readable(run->nodes[i].client) && run->nodes[i].call != CALL_NONE)
            ready_add(w, i);
    }
    return 0;
}

int engine_run(struct run *run, const engine_ops_t *ops)
{
    struct waiter w = {.ep = epoll_create1(EPOLL_CLOEXEC)};
    int ret = w.ep < 0 ? -errno : 0;
    if (ret < 0)
        goto out;
    w.ready = calloc(run->n ? run->n : 1, sizeof(*w.ready));
    w.queued = calloc(run->n ? run->n : 1, sizeof(*w.queued));
    if (!w.ready || !w.queued) {
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
    uint64_t next_look = 0;
    for (bool first = true;; first = false) {
        /* A second Ctrl-C leaves now, whenever it came (the pipe below ends a wait for it). */
        if (interrupt_count() >= 2) {
            ret = -EINTR; /* the caller names what was left in flight */
            goto out;
        }
        /* `baton abort` from another shell: as a first Ctrl-C. Looked for twice a second at
         * most (with a shared journal it is a query). */
        if (run->journal && now_ms() >= next_look) {
            next_look = now_ms() + ENGINE_TICK_MS;
            if (journal_take(run->opts->store, run->id, "abort"))
                interrupt_request("baton abort");
            baton_err_t jerr = {0};
            if (!run->journal_failed && journal_tick(run->journal, &jerr) < 0) {
                /* As an append that failed: settle the nodes in flight, then stop. */
                fprintf(stderr, "baton: journal: %s; stopping after the steps in flight\n",
                        jerr.msg);
                run->journal_failed = true;
            }
        }
        bool waiting = ops->schedule(run);
        size_t busy = 0;
        uint64_t now = now_ms(), wake = waiting ? now + ENGINE_TICK_MS : UINT64_MAX;
        if (waiting && run->stage_wake && run->stage_wake < wake)
            wake = run->stage_wake; /* a pull's next ask (node_stage_pump) */
        for (size_t i = 0; i < run->n; i++) {
            node_t *nd = &run->nodes[i];
            if (nd->call == CALL_NONE)
                continue;
            busy++;
            uint64_t w = client_wake(nd->client);
            if (w < wake)
                wake = w;
        }
        assert(busy == run->busy); /* node_set_call() is the only writer of nd->call */
        if (busy == 0 && !waiting)
            break;
        if (run->live && wake > now + LIVE_TICK_MS)
            wake = now + LIVE_TICK_MS; /* the times on screen move */
        long timeout = wake == UINT64_MAX ? -1 : wake > now ? (long)(wake - now) : 0;
        if (timeout > INT32_MAX)
            timeout = INT32_MAX;
        if ((ret = wait_ready(run, &w, first, timeout)) < 0)
            goto out; /* the caller names what was left in flight */
        for (size_t j = 0; j < w.n_ready; j++) {
            node_t *nd = &run->nodes[w.ready[j]];
            w.queued[w.ready[j]] = false;
            if (nd->call == CALL_NONE)
                continue;
            Baton__Envelope *env = NULL;
            baton_err_t err = {0};
            int r = client_recv(nd->client, on_progress, run, &env, &err);
            if (r == CLIENT_RESULT)
                deliver(run, nd, 0, env, &err, ops);
            else if (r < 0)
                deliver(run, nd, r, NULL, &err, ops);
        }
        w.n_ready = 0;
        now = now_ms();
        live_tick(run->live, run, now);
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
    free(w.queued);
    return ret;
}
