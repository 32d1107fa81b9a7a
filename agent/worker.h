/* worker: the thread that runs steps, so that the agent's main loop keeps answering Hello,
 * refusing conflicting commands with BUSY and sending heartbeats while a 30-minute dump runs.
 *
 * One step at a time. The main loop hands a job over (worker_submit); the worker runs the
 * step, saves the service's state with the step's Result on record, and sends back, over an
 * inproc PAIR socket that only it writes, packed Envelopes: Progress while it runs, then
 * exactly one Result. Only the main loop touches the agent's ROUTER; only the worker touches
 * its own sd-bus connection. */
#ifndef BATON_AGENT_WORKER_H
#define BATON_AGENT_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "baton.pb-c.h"
#include "config.h"
#include "err.h"
#include "state.h"
#include "steps.h"

typedef struct worker worker_t;

struct worker_job {
    const step_def_t *def;        /* the step */
    const svc_config_t *svc;      /* its service */
    svc_state_t *st;              /* its state, already saved with in_progress set (owned) */
    Baton__Envelope *req;         /* the command (owned) */
    uint64_t min_healthy_ms;      /* for verify and the rollback's verify */
    uint64_t healthy_deadline_ms; /* the same: how long the first good probe may take */
};

/* A worker for `svc`'s steps; the tool it runs is recorded in STATE_DIR/running-SERVICE.pid. */
int worker_new(void *zctx, const agent_config_t *cfg, const svc_config_t *svc, worker_t **ret,
               baton_err_t *err);
/* Stops the thread (after its current step) and frees everything. */
void worker_destroy(worker_t **w_p);
/* The main loop's end of the PAIR: poll it for ZMQ_POLLIN; each message is a packed Envelope. */
void *worker_socket(worker_t *w);
/* Hands a job over; on success the worker owns it (and frees it). */
int worker_submit(worker_t *w, struct worker_job *job, baton_err_t *err);
/* Monotonic ms of the worker's last sign of life (a tick or progress of its step, or idle). */
uint64_t worker_last_sign(worker_t *w);
/* Frees a job (NULL-safe). */
void worker_job_free(struct worker_job **job_p);

#endif
