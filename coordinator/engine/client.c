/* client: see client.h. */
#include "client.h"
#include "clock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "envelope.h"
#include "interrupt.h"

struct client {
    char *node;            /* node name, for messages */
    char *endpoint;        /* agent endpoint */
    void *sock;            /* DEALER */
    uint64_t next_id;      /* request id of the next call */
    uint64_t liveness_ms;  /* silence after which the agent is lost */
    uint64_t heartbeat_ms; /* asked of the agent (client_set_heartbeat) */
    uint64_t ask_again_ms; /* silence after which a call is asked again */
    /* The call in flight. */
    bool busy;
    uint64_t request_id;
    int body;     /* its Baton__Envelope__BodyCase */
    uint8_t *buf; /* packed, for asking again */
    size_t len;
    bool may_ask_again; /* not a stage chunk */
    uint64_t timeout_ms, deadline, sent_at, heard_at;
    /* Stage chunks sent behind it (client_send_ahead), oldest first: each becomes the call in
     * flight when the one before it is answered. */
    uint64_t ahead[CLIENT_WINDOW_MAX];
    size_t n_ahead;
    int fd;       /* ZMQ_FD */
    bool touched; /* used since client_readable() last asked */
};

/* Weak: a unit test drives the client on a clock of its own. */
__attribute__((weak)) uint64_t client_now_ms(void)
{
    return mono_ms();
}

int client_new(void *zctx, const char *node, const char *endpoint,
               const transport_key_t *server_public, const transport_key_t *secret,
               const transport_key_t *public, client_t **ret, baton_err_t *err)
{
    client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return baton_err_set(err, -ENOMEM, "out of memory");
    c->node = strdup(node);
    c->endpoint = strdup(endpoint);
    c->sock = zmq_socket(zctx, ZMQ_DEALER);
    /* Ids start somewhere random so that a restarted coordinator never mistakes an old
     * answer still in flight for a new one. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->next_id = ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec;
    c->liveness_ms = CLIENT_LIVENESS_MS;
    c->heartbeat_ms = 1000;
    c->ask_again_ms = CLIENT_ASK_AGAIN_MS;
    if (!c->node || !c->endpoint || !c->sock) {
        client_destroy(&c);
        return baton_err_set(err, -ENOMEM, "%s: cannot create a socket", node);
    }
    if ((server_public && transport_client(c->sock, server_public, secret, public, err) < 0) ||
        transport_tune(c->sock, false, err) < 0) {
        client_destroy(&c);
        return baton_err_prefix(err, "%s", node);
    }
    size_t fdlen = sizeof(c->fd);
    if (zmq_getsockopt(c->sock, ZMQ_FD, &c->fd, &fdlen) < 0) {
        int e = errno;
        client_destroy(&c);
        return baton_err_set(err, -e, "%s: socket: %s", node, zmq_strerror(e));
    }
    c->touched = true;
    if (zmq_connect(c->sock, endpoint) < 0) {
        int e = errno;
        client_destroy(&c);
        return baton_err_set(err, -e, "%s: connect %s: %s", node, endpoint, zmq_strerror(e));
    }
    *ret = c;
    return 0;
}

void client_destroy(client_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    client_t *c = *c_p;
    if (c->sock)
        zmq_close(c->sock);
    free(c->buf);
    free(c->node);
    free(c->endpoint);
    free(c);
    *c_p = NULL;
}

const char *client_node(const client_t *c)
{
    return c->node;
}

const char *client_endpoint(const client_t *c)
{
    return c->endpoint;
}

void client_set_liveness(client_t *c, uint64_t liveness_ms)
{
    c->liveness_ms = liveness_ms;
}

void client_set_heartbeat(client_t *c, uint64_t heartbeat_ms)
{
    c->heartbeat_ms = heartbeat_ms;
    /* Three heartbeats missed, as with the default one a second. An agent that does not know
     * heartbeat_ms sends one a second anyway. */
    c->ask_again_ms =
        3 * heartbeat_ms > CLIENT_ASK_AGAIN_MS ? 3 * heartbeat_ms : CLIENT_ASK_AGAIN_MS;
}

bool client_busy(const client_t *c)
{
    return c->busy;
}

const char *client_command(const client_t *c)
{
    return c->busy ? envelope_body_name(c->body) : "";
}

void *client_socket(const client_t *c)
{
    return c->sock;
}

int client_fd(const client_t *c)
{
    return c->fd;
}

bool client_touched(const client_t *c)
{
    return c->touched;
}

bool client_readable(client_t *c)
{
    int events = 0;
    size_t len = sizeof(events);
    c->touched = false;
    /* A failure (EINTR: a signal) says "maybe": client_recv() finds out without blocking. */
    return zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &len) < 0 || (events & ZMQ_POLLIN);
}

void client_abandon(client_t *c)
{
    c->busy = false;
    c->n_ahead = 0;
    free(c->buf);
    c->buf = NULL;
}

/* Stamps `req` (protocol version, the next request id, the rollout), packs and sends it. The
 * packed copy stays in c->buf only when `keep`: a call that may be asked again after a silence;
 * a stage chunk never is, and its megabyte need not wait in memory. A chunk whose data_frame is
 * set goes as two frames: the envelope without its bytes, then the bytes straight from the
 * caller's buffer (a constant message: libzmq keeps the pointer, nothing is copied), so that a
 * chunk sent to a thousand agents is never packed a thousand times. */
static int stamp_and_send(client_t *c, const char *rollout_id, Baton__Envelope *req, bool keep,
                          baton_err_t *err)
{
    req->protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    req->request_id = c->next_id++;
    req->rollout_id = (char *)(rollout_id ? rollout_id : "");
    req->heartbeat_ms = (uint32_t)c->heartbeat_ms;
    Baton__Stage *st = req->body_case == BATON__ENVELOPE__BODY_STAGE ? req->stage : NULL;
    ProtobufCBinaryData frame = {0};
    if (st && st->data_frame) {
        if (st->data_frame != st->data.len || !st->data.data)
            return baton_err_set(err, -EINVAL, "%s: stage.data_frame %u, with %zu bytes", c->node,
                                 st->data_frame, st->data.len);
        frame = st->data;
        st->data = (ProtobufCBinaryData){0};
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    c->touched = true; /* a send processes the socket's news too */
    int r = envelope_pack(req, &buf, &len, err);
    if (frame.data)
        st->data = frame; /* the caller's request as it was */
    if (r < 0)
        return r;
    /* DEALER queues the message until the connection is up; the deadline covers both. Once its
     * first frame is queued the second is too: libzmq counts whole messages against the
     * high-water mark; only a connection torn down in between drops both. */
    if (zmq_send(c->sock, buf, len, ZMQ_DONTWAIT | (frame.data ? ZMQ_SNDMORE : 0)) < 0) {
        r = baton_err_set(err, -errno, "%s: send: %s", c->node, zmq_strerror(errno));
    } else if (frame.data) {
        zmq_msg_t m;
        zmq_msg_init_data(&m, frame.data, frame.len, NULL, NULL);
        int s;
        /* a signal before libzmq took it: the first frame waits for this one, so go on */
        while ((s = zmq_msg_send(&m, c->sock, ZMQ_DONTWAIT)) < 0 && errno == EINTR)
            ;
        if (s < 0) {
            r = baton_err_set(err, -errno, "%s: send: %s", c->node, zmq_strerror(errno));
            zmq_msg_close(&m);
        }
    }
    if (r == 0 && keep) {
        free(c->buf);
        c->buf = buf;
        c->len = len;
    } else {
        free(buf);
    }
    return r;
}

int client_send(client_t *c, const char *rollout_id, Baton__Envelope *req, uint64_t timeout_ms,
                baton_err_t *err)
{
    if (c->busy)
        return baton_err_set(err, -EBUSY, "%s: a call is already in flight", c->node);
    /* A chunk is not idempotent; a pull's question (where does it stand?) is. */
    bool may_ask_again = req->body_case != BATON__ENVELOPE__BODY_STAGE || *req->stage->url;
    int r = stamp_and_send(c, rollout_id, req, may_ask_again, err);
    if (r < 0) {
        client_abandon(c);
        return r;
    }
    uint64_t now = client_now_ms();
    c->busy = true;
    c->request_id = req->request_id;
    c->body = req->body_case;
    c->may_ask_again = may_ask_again;
    c->timeout_ms = timeout_ms;
    c->deadline = now + timeout_ms;
    c->sent_at = c->heard_at = now;
    return 0;
}

size_t client_in_flight(const client_t *c)
{
    return c->busy ? 1 + c->n_ahead : 0;
}

int client_send_ahead(client_t *c, const char *rollout_id, Baton__Envelope *req, baton_err_t *err)
{
    if (!c->busy)
        return client_send(c, rollout_id, req, c->timeout_ms, err);
    if (c->body != BATON__ENVELOPE__BODY_STAGE || req->body_case != BATON__ENVELOPE__BODY_STAGE ||
        c->n_ahead >= CLIENT_WINDOW_MAX)
        return baton_err_set(err, -EBUSY, "%s: no room for another request in flight", c->node);
    int r = stamp_and_send(c, rollout_id, req, false, err); /* full queue: the window waits */
    if (r == 0)
        c->ahead[c->n_ahead++] = req->request_id;
    return r;
}

/* When to ask again: after ask_again_ms of silence (three heartbeats missed), and then every
 * CLIENT_ASK_AGAIN_MS while the silence lasts, whatever the heartbeats' spacing: a partition
 * that heals before `liveness` is still found by an ask. */
static uint64_t ask_at(const client_t *c)
{
    uint64_t silence = c->heard_at + c->ask_again_ms, again = c->sent_at + CLIENT_ASK_AGAIN_MS;
    return silence > again ? silence : again;
}

uint64_t client_wake(const client_t *c)
{
    if (!c->busy)
        return UINT64_MAX;
    uint64_t wake = c->deadline;
    if (c->heard_at + c->liveness_ms < wake)
        wake = c->heard_at + c->liveness_ms;
    /* Asked again only after ASK_AGAIN of silence and as long since the last send (client_tick):
     * the later of the two. Waking at sent_at + ASK_AGAIN alone was a wake in the past through
     * every step longer than that whose heartbeats kept it from being asked again: the event
     * loop spun (2,000 polls a second) until its answer came. */
    uint64_t ask = ask_at(c);
    if (c->may_ask_again && ask < wake)
        wake = ask;
    return wake;
}

int client_tick(client_t *c, uint64_t now, baton_err_t *err)
{
    if (!c->busy)
        return 0;
    const char *cmd = envelope_body_name(c->body);
    int r = 0;
    if (now >= c->deadline)
        r = baton_err_set(err, -ETIMEDOUT, "%s (%s) did not answer %s within %llu s", c->node,
                          c->endpoint, cmd, (unsigned long long)(c->timeout_ms / 1000));
    else if (now - c->heard_at >= c->liveness_ms)
        r = baton_err_set(err, -EHOSTDOWN, "%s (%s) LOST during %s: no word for %.1f s", c->node,
                          c->endpoint, cmd, (double)(now - c->heard_at) / 1000.0);
    if (r < 0) {
        client_abandon(c);
        return r;
    }
    /* Silence: the answer may have been lost with a connection. Ask again, same id. */
    if (c->may_ask_again && now >= ask_at(c)) {
        zmq_send(c->sock, c->buf, c->len, ZMQ_DONTWAIT); /* EAGAIN: the queue is full; wait */
        c->touched = true;
        c->sent_at = now;
    }
    return 0;
}

int client_recv(client_t *c, client_progress_fn progress, void *userdata, Baton__Envelope **ret_env,
                baton_err_t *err)
{
    /* Messages left queued behind a Result set nothing off: the socket is asked again before
     * the loop sleeps. Read empty, libzmq has taken in its news and the next message will set
     * the descriptor off. */
    c->touched = true;
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) < 0) {
            c->touched = errno != EAGAIN;
            zmq_msg_close(&msg);
            return CLIENT_NOTHING;
        }
        if (!c->busy) { /* a late answer to an abandoned call */
            zmq_msg_close(&msg);
            continue;
        }
        Baton__Envelope *env = NULL;
        baton_err_t perr = {0};
        int r = envelope_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg), &env, &perr);
        zmq_msg_close(&msg);
        if (r < 0) {
            client_abandon(c);
            return baton_err_set(err, r, "%s: bad answer: %s", c->node, perr.msg);
        }
        if (env->body_case == BATON__ENVELOPE__BODY_RESULT && env->request_id == 0 &&
            env->result->status != BATON__STATUS__STATUS_OK) {
            /* The agent could not even read our request. */
            r = baton_err_set(err, -EPROTO, "%s refused the request: %s", c->node,
                              env->result->message);
            envelope_free(&env);
            client_abandon(c);
            return r;
        }
        if (env->request_id != c->request_id) { /* a late answer to an old request */
            envelope_free(&env);
            continue;
        }
        c->heard_at = client_now_ms();
        if (env->body_case == BATON__ENVELOPE__BODY_PROGRESS) {
            if (progress && !env->progress->heartbeat)
                progress(c->node, env->progress, userdata);
            envelope_free(&env);
            continue;
        }
        if (c->n_ahead && env->body_case == BATON__ENVELOPE__BODY_RESULT &&
            env->result->status == BATON__STATUS__STATUS_OK) {
            /* The next chunk in the window is now the call in flight, with its own deadline. */
            c->request_id = c->ahead[0];
            memmove(c->ahead, c->ahead + 1, --c->n_ahead * sizeof(c->ahead[0]));
            c->deadline = c->heard_at + c->timeout_ms;
            *ret_env = env;
            return CLIENT_RESULT;
        }
        client_abandon(c);
        if (env->body_case != BATON__ENVELOPE__BODY_RESULT) {
            const char *kind = envelope_body_name(env->body_case);
            envelope_free(&env);
            return baton_err_set(err, -EPROTO, "%s answered with %s", c->node, kind);
        }
        *ret_env = env;
        return CLIENT_RESULT;
    }
}

int client_call(client_t *c, const char *rollout_id, Baton__Envelope *req, uint64_t timeout_ms,
                client_progress_fn progress, void *userdata, Baton__Envelope **ret_env,
                baton_err_t *err)
{
    int r = client_send(c, rollout_id, req, timeout_ms, err);
    if (r < 0)
        return r;
    for (;;) {
        r = client_recv(c, progress, userdata, ret_env, err);
        if (r < 0 || r == CLIENT_RESULT)
            return r < 0 ? r : 0;
        uint64_t now = client_now_ms();
        if ((r = client_tick(c, now, err)) < 0)
            return r;
        uint64_t wake = client_wake(c);
        zmq_pollitem_t items[2] = {{.socket = c->sock, .events = ZMQ_POLLIN},
                                   {.fd = interrupt_fd(), .events = ZMQ_POLLIN}};
        int n = zmq_poll(items, interrupt_fd() >= 0 ? 2 : 1, wake > now ? (long)(wake - now) : 1);
        /* A first Ctrl-C lets the command in flight finish (the caller stops after it); a
         * second one leaves now, also one that came while this loop was not in poll. */
        if (((n < 0 && errno == EINTR) || (items[1].revents & ZMQ_POLLIN)) &&
            interrupt_drain() >= 2) {
            r = baton_err_set(err, -EINTR, "%s: interrupted twice during %s", c->node,
                              client_command(c));
            client_abandon(c);
            return r;
        }
    }
}
