/* front: the agent's answers that may take a while, on threads of their own, so that the main
 * loop always answers at once (heartbeats, BUSY, the steps' results, a second coordinator).
 *
 * Two fronts: Hello (it asks systemd for every unit and, the first time it sees a binary, runs
 * its version command: up to 10 s) and Stage (a transfer taken up from a partial file hashes
 * what is there: seconds for a GiB). Each takes one request at a time, in order, from the main
 * loop (front_submit) and sends the packed answer back over an inproc PAIR, with the asker's
 * identity, for the main loop to send (front_take): only the main loop touches the ROUTER.
 * Hello reports the running steps from a copy the main loop makes when it hands the request
 * over; the staging of every service belongs to the Stage front alone. */
#ifndef BATON_AGENT_FRONT_H
#define BATON_AGENT_FRONT_H

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <zmq.h>

#include "baton.pb-c.h"
#include "config.h"
#include "err.h"

#define FRONT_PROGRESS_MAX 256

/* A service's running step as the main loop saw it when it handed a Hello over. */
struct run_view {
    bool on;                              /* a step (not a plan) runs for the service */
    char step[32];                        /* its name */
    uint64_t started_ms;                  /* monotonic start */
    char progress[FRONT_PROGRESS_MAX];    /* its last progress line */
};

typedef enum front_kind { FRONT_HELLO, FRONT_STAGE } front_kind_t;
typedef struct front front_t;

int front_new(void *zctx, const agent_config_t *cfg, front_kind_t kind, front_t **ret,
              baton_err_t *err);
/* Stops the thread (after its current request) and frees everything. */
void front_destroy(front_t **f_p);
/* The main loop's end: poll it for ZMQ_POLLIN, then front_take(). */
void *front_socket(front_t *f);
/* Hands a request over (the front owns *req_p from now on; peer is copied); `views` (one per
 * service, or NULL) is copied too. */
int front_submit(front_t *f, zmq_msg_t *peer, Baton__Envelope **req_p,
                 const struct run_view *views, baton_err_t *err);
/* One answer: the asker's identity and the packed Envelope, both the caller's to send or
 * close. -EAGAIN when none is there. */
int front_take(front_t *f, zmq_msg_t *ret_peer, zmq_msg_t *ret_reply);

/* Fills a Hello about this node (for the Hello front, and the main loop when it has none):
 * units through `bus` (opened on first use), versions, records, and the running steps. */
int hello_build(const agent_config_t *cfg, sd_bus **bus, const struct run_view *views,
                Baton__Hello **ret_hello, baton_err_t *err);
void hello_free(Baton__Hello **hello_p);

#endif
