/* engine: the coordinator's event loop (engine.c) and one connection per node: it wakes only
 * for an answer, a due timer or a signal, and hands each call's end to the phase running. */
#ifndef BATON_ENGINE_H
#define BATON_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "run.h"

/* engine.c: the event loop. `schedule` starts calls (through node_send) and returns true
 * while it waits for something other than an answer (a pause); `on_result` gets each call's
 * end: r < 0 (err says why) or the Result envelope (then owned by on_result). Returns 0 when
 * nothing is in flight and schedule has nothing more to start, -EINTR at a second Ctrl-C. */
typedef struct engine_ops {
    bool (*schedule)(struct run *run);
    void (*on_result)(struct run *run, node_t *nd, int r, Baton__Envelope *env, baton_err_t *err);
} engine_ops_t;
int engine_run(struct run *run, const engine_ops_t *ops);
/* Calls in flight: a count, not a walk over the nodes (the schedulers ask it for every node
 * they look at: a walk was a quarter of a 1,000-node plan's CPU). */
size_t engine_busy(const struct run *run);
/* Sets nd->call, keeping that count: every change of a node's call goes through here. */
void node_set_call(struct run *run, node_t *nd, node_call_t call);
/* Starts `req` on a node's client; a failure to send is handed to on_result at once. */
int node_send(struct run *run, node_t *nd, node_call_t call, Baton__Envelope *req,
              uint64_t timeout_ms, const engine_ops_t *ops);
uint64_t now_ms(void);
/* One client per node (run->nodes must be set); and their end, with the journal's. */
int run_connect(struct run *run, baton_err_t *err);
void run_disconnect(struct run *run);

#endif
