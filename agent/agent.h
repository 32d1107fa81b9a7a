/* agent: the agent's main loop as seen from main.c: it reads every request from the ROUTER,
 * decides with the step table (common/steps.c) what to do with it, hands steps to the worker
 * thread, forwards the worker's Progress and Result to whoever asked last, sends a heartbeat
 * each second while a step runs, and answers Hello, Stage and refusals itself, at once.
 *
 * Services are independent: each has a lane of its own (a worker thread, its running step, its
 * staging), so that one service's 30-minute migration never makes another's step or rollback
 * wait or fail BUSY. What they share (the backup disk, the database server) is checked by each
 * step when it starts. */
#ifndef BATON_AGENT_H
#define BATON_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <zmq.h>

#include "baton.pb-c.h"
#include "config.h"
#include "front.h"
#include "names.h"
#include "stage.h"
#include "steps.h"
#include "worker.h"

#define AGENT_PROGRESS_MAX FRONT_PROGRESS_MAX /* copied whole into a run_view for Hello */

/* The step the worker is running, and who is waiting for its Result. */
struct running {
    bool on;                                 /* a step is running */
    const step_def_t *def;                   /* which */
    const svc_config_t *svc;                 /* for which service */
    char rollout_id[ROLLOUT_ID_MAX_LEN + 1]; /* of which rollout */
    zmq_msg_t peer;                          /* identity of the last asker */
    bool have_peer;                          /* peer is set */
    uint64_t request_id;                     /* the last asker's request id */
    uint64_t started_ms;                     /* monotonic start */
    uint64_t last_beat_ms;                   /* last heartbeat sent */
    uint64_t beat_ms;                        /* heartbeats this far apart (the asker's) */
    char progress[AGENT_PROGRESS_MAX];       /* its last progress line */
};

/* One service's own: its worker, the step running there. */
struct lane {
    worker_t *worker;     /* runs this service's steps, one at a time */
    struct running run;   /* the step in the worker, if any */
    struct staging stage; /* its staging when the agent runs no Stage front (tests) */
};

typedef struct agent {
    agent_config_t *cfg;                   /* configuration */
    void *zctx;                            /* ZeroMQ context */
    void *router;                          /* ROUTER socket the coordinators talk to */
    struct zap *zap;                       /* its ZAP handler (NULL when insecure) */
    sd_bus *bus;                           /* the main loop's own connection to systemd (Hello) */
    uint64_t watchdog_usec;                /* WatchdogSec from systemd, 0 when off */
    uint64_t last_ping;                    /* when we last sent WATCHDOG=1 (monotonic usec) */
    struct lane lanes[AGENT_SERVICES_MAX]; /* per service, in the config's order */
    front_t *hello_front; /* answers Hello off the main loop (NULL: answered inline) */
    front_t *stage_front; /* stages artifacts off the main loop (NULL: inline) */
} agent_t;

/* The lane of a service of a->cfg. */
struct lane *agent_lane(agent_t *a, const svc_config_t *svc);
/* True while any service's step runs. */
bool agent_busy(const agent_t *a);
/* Starts a worker per service (its tool pid file STATE_DIR/running-SERVICE.pid) and the two
 * fronts (front.h); on failure the ones started are stopped again. */
int agent_lanes_start(agent_t *a, baton_err_t *err);
/* Stops every worker and front (after its current job) and frees the lanes' own. */
void agent_lanes_stop(agent_t *a);
/* Sends one answer a front made to its asker. */
void agent_from_front(agent_t *a, front_t *f);

/* Serves one checked request from `peer`; takes the envelope (a step keeps it). */
void agent_serve(agent_t *a, zmq_msg_t *peer, Baton__Envelope **req_p);
/* Answers `peer` with an error Result (for requests that could not be read). */
void agent_reply_error(agent_t *a, zmq_msg_t *peer, uint64_t request_id, Baton__Status status,
                       const char *msg);
/* Handles one message of a lane's worker (Progress or the final Result). */
void agent_from_worker(agent_t *a, struct lane *lane);
/* Heartbeat of the running step, and the systemd watchdog: call at least once a second. */
void agent_tick(agent_t *a);

#endif
