/* zpoke: sends one hostile (or plain) message to a baton-agent and prints what comes back, so
 * that tests can check the real agent answers bad input with an error Result and lives on.
 *
 *   zpoke ENDPOINT garbage|version|empty|future|multipart|oversize|unknown-service|hello
 *   zpoke ENDPOINT frame-hello|frame-short         a second frame with a Hello; a Stage whose
 *                                                   frame is shorter than its data_frame says
 *   zpoke ENDPOINT stage SERVICE VERSION FILE          sends FILE in chunks
 *   zpoke ENDPOINT step NAME ROLLOUT [service=S] [version=V] [sha256=H] [down=N]
 *                                                      one step command (migrate: up unless down=N)
 *   zpoke ENDPOINT flood N                             N requests of four kinds in turn: Hello,
 *                                                      a refused step, garbage, a mutated message;
 *                                                      prints how many of each were answered
 * Prints "STATUS message" of the Result (Progress skipped), or "no answer"; exit 0 when a Result
 * came. ZPOKE_TIMEOUT (seconds, default 3; 60 for steps) bounds the wait. With ZPOKE_SERVER_KEY
 * (the agent's public key) and ZPOKE_KEY_FILE (a coordinator's secret key file) it connects over
 * CURVE, as baton does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "digest.h"
#include "envelope.h"
#include "steps.h"
#include "transport.h"
#include "version.h"

static const char *status_name(Baton__Status s)
{
    switch (s) {
    case BATON__STATUS__STATUS_OK:
        return "OK";
    case BATON__STATUS__STATUS_BAD_REQUEST:
        return "BAD_REQUEST";
    case BATON__STATUS__STATUS_UNSUPPORTED:
        return "UNSUPPORTED";
    case BATON__STATUS__STATUS_FAILED:
        return "FAILED";
    case BATON__STATUS__STATUS_BUSY:
        return "BUSY";
    default:
        return "?";
    }
}

/* Waits for the Result of request 42, skipping Progress; prints it. 0 when one came. */
static int wait_result(void *s, long timeout_ms, bool print_ok)
{
    zmq_pollitem_t item = {.socket = s, .events = ZMQ_POLLIN};
    while (zmq_poll(&item, 1, timeout_ms) == 1) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, s, 0);
        Baton__Envelope *got = NULL;
        int r = envelope_unpack(zmq_msg_data(&m), zmq_msg_size(&m), &got, NULL);
        zmq_msg_close(&m);
        if (r == 0 && got->body_case == BATON__ENVELOPE__BODY_PROGRESS) {
            envelope_free(&got);
            continue;
        }
        if (r == 0 && got->body_case == BATON__ENVELOPE__BODY_RESULT) {
            if (print_ok || got->result->status != BATON__STATUS__STATUS_OK)
                printf("%s %s\n", status_name(got->result->status), got->result->message);
            r = got->result->status == BATON__STATUS__STATUS_OK ? 0 : 3;
            envelope_free(&got);
            return r;
        }
        printf("unreadable answer\n");
        envelope_free(&got);
        return 1;
    }
    printf("no answer\n");
    return 1;
}

static int send_env(void *s, Baton__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (envelope_pack(env, &buf, &len, NULL) < 0)
        return -1;
    int r = zmq_send(s, buf, len, 0);
    free(buf);
    return r < 0 ? -1 : 0;
}

/* stage SERVICE VERSION FILE */
static int do_stage(void *s, char **argv, long timeout_ms)
{
    FILE *f = fopen(argv[2], "rb");
    if (!f)
        return perror(argv[2]), 2;
    static uint8_t data[64 * 1024 * 1024];
    size_t size = fread(data, 1, sizeof(data), f);
    fclose(f);
    char hex[DIGEST_HEX_LEN + 1];
    digest_t d;
    digest_global_init(NULL);
    digest_init(&d);
    digest_update(&d, data, size);
    digest_final_hex(&d, hex);
    for (size_t off = 0; off < size;) {
        size_t n = size - off > BATON_CHUNK_MAX ? BATON_CHUNK_MAX : size - off;
        Baton__Stage st = BATON__STAGE__INIT;
        st.service = argv[0];
        st.version = argv[1];
        st.sha256 = hex;
        st.size = size;
        st.offset = off;
        st.data.data = data + off;
        st.data.len = n;
        Baton__Envelope env = BATON__ENVELOPE__INIT;
        env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
        env.request_id = 42;
        env.body_case = BATON__ENVELOPE__BODY_STAGE;
        env.stage = &st;
        if (send_env(s, &env) < 0)
            return 2;
        int r = wait_result(s, timeout_ms, off + n == size);
        if (r)
            return r;
        off += n;
    }
    printf("%s\n", hex);
    return 0;
}

/* step NAME ROLLOUT [key=value...] */
static int do_step(void *s, int argc, char **argv, long timeout_ms)
{
    const step_def_t *def = step_by_name(argv[0]);
    if (!def)
        return fprintf(stderr, "zpoke: no step %s\n", argv[0]), 2;
    Baton__Step step = BATON__STEP__INIT;
    Baton__Migrate mig = BATON__MIGRATE__INIT;
    step.service = mig.service = "gamesrv";
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return fprintf(stderr, "zpoke: %s is not key=value\n", argv[i]), 2;
        *eq = '\0';
        if (!strcmp(argv[i], "service"))
            step.service = mig.service = eq + 1;
        else if (!strcmp(argv[i], "version"))
            step.version = eq + 1;
        else if (!strcmp(argv[i], "sha256"))
            step.sha256 = eq + 1;
        else if (!strcmp(argv[i], "down")) {
            mig.direction = BATON__DIRECTION__DIRECTION_DOWN;
            mig.limit = (uint32_t)strtoul(eq + 1, NULL, 10);
        } else
            return fprintf(stderr, "zpoke: unknown key %s\n", argv[i]), 2;
    }
    Baton__Envelope env = BATON__ENVELOPE__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    /* A new request each time: an agent answers a repeated id from its record. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    env.request_id = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    env.rollout_id = argv[1];
    env.body_case = def->body;
    if (def->id == STEP_MIGRATE)
        env.migrate = &mig;
    else
        env.preflight = &step; /* every Step-shaped body shares the union's slot */
    if (send_env(s, &env) < 0)
        return 2;
    return wait_result(s, timeout_ms, true);
}

static uint64_t rnd_state;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* A packed message of one of the harmless kinds (nothing names a real service or rollout). */
static size_t seed(int which, uint8_t *out, size_t cap)
{
    Baton__Envelope e = BATON__ENVELOPE__INIT;
    Baton__Hello hello = BATON__HELLO__INIT;
    hello.coordinator_version = BATON_VERSION;
    Baton__Step step = BATON__STEP__INIT;
    Baton__Stage st = BATON__STAGE__INIT;
    Baton__Migrate mig = BATON__MIGRATE__INIT;
    static uint8_t bytes[] = "#!/bin/sh\n";
    e.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    e.request_id = rnd() | 1;
    e.rollout_id = "r-flood-none";
    step.service = "nosuch", step.version = "1.0.0";
    step.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    switch (which) {
    case 0:
        e.body_case = BATON__ENVELOPE__BODY_HELLO, e.hello = &hello;
        break;
    case 1: /* a step of a rollout the agent never heard of: refused */
        step.service = "gamesrv";
        e.body_case = BATON__ENVELOPE__BODY_ROLLBACK, e.rollback = &step;
        break;
    case 2:
        st.service = "nosuch", st.version = "1.0.0", st.sha256 = step.sha256;
        st.size = sizeof(bytes) - 1, st.data.data = bytes, st.data.len = sizeof(bytes) - 1;
        e.body_case = BATON__ENVELOPE__BODY_STAGE, e.stage = &st;
        break;
    case 3:
        e.body_case = BATON__ENVELOPE__BODY_PLAN, e.plan = &step;
        break;
    default:
        mig.service = "nosuch", mig.direction = BATON__DIRECTION__DIRECTION_DOWN, mig.limit = 1;
        e.body_case = BATON__ENVELOPE__BODY_MIGRATE, e.migrate = &mig;
        break;
    }
    size_t len = baton__envelope__get_packed_size(&e);
    if (len > cap)
        return 0;
    return baton__envelope__pack(&e, out);
}

/* Waits up to timeout_ms for one answer (Progress skipped): 1 when a Result came. */
static int any_result(void *s, long timeout_ms)
{
    zmq_pollitem_t item = {.socket = s, .events = ZMQ_POLLIN};
    while (zmq_poll(&item, 1, timeout_ms) == 1) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, s, 0);
        Baton__Envelope *got = NULL;
        int r = envelope_unpack(zmq_msg_data(&m), zmq_msg_size(&m), &got, NULL);
        zmq_msg_close(&m);
        bool result = r == 0 && got->body_case == BATON__ENVELOPE__BODY_RESULT;
        envelope_free(&got);
        if (result)
            return 1;
    }
    return 0;
}

static int do_flood(void *s, long n)
{
    static const char *const kinds[] = {"hello", "refused step", "garbage", "mutated"};
    long sent[4] = {0}, answered[4] = {0}, silent = 0;
    rnd_state = (uint64_t)time(NULL) * 2654435761u | 1;
    uint8_t buf[4096];
    for (long i = 0; i < n; i++) {
        int k = (int)(i % 4);
        size_t len;
        if (k == 0 || k == 1) {
            len = seed(k, buf, sizeof(buf));
        } else if (k == 2) {
            len = 1 + rnd() % 200;
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)rnd();
        } else {
            len = seed((int)(rnd() % 5), buf, sizeof(buf));
            for (int m = 0, ops = 1 + (int)(rnd() % 4); m < ops && len > 1; m++) {
                size_t at = rnd() % len;
                switch (rnd() % 3) {
                case 0:
                    buf[at] ^= (uint8_t)(1 + rnd() % 255);
                    break;
                case 1:
                    len = at + 1; /* cut */
                    break;
                default:
                    if (len < sizeof(buf)) {
                        memmove(buf + at + 1, buf + at, len - at);
                        buf[at] = (uint8_t)rnd();
                        len++;
                    }
                }
            }
        }
        sent[k]++;
        if (zmq_send(s, buf, len, 0) < 0)
            continue;
        int got = any_result(s, 5000);
        answered[k] += got;
        /* Nobody there: say so rather than wait 5 s for each of the rest. */
        silent = got ? 0 : silent + 1;
        if (silent == 10) {
            printf("10 requests in a row unanswered: stopping after %ld\n", i + 1);
            break;
        }
    }
    long all = 0, got = 0;
    for (int k = 0; k < 4; k++) {
        printf("%s: %ld sent, %ld answered\n", kinds[k], sent[k], answered[k]);
        all += sent[k];
        got += answered[k];
    }
    return got == all ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: zpoke ENDPOINT MODE [ARGS]\n");
        return 2;
    }
    const char *mode = argv[2];
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    const char *server_key = getenv("ZPOKE_SERVER_KEY"), *key_file = getenv("ZPOKE_KEY_FILE");
    if (server_key && key_file) {
        transport_key_t server, secret, public;
        baton_err_t err = {0};
        snprintf(server.z85, sizeof(server.z85), "%s", server_key);
        if (transport_read_secret(key_file, &secret, &public, &err) < 0 ||
            transport_client(s, &server, &secret, &public, &err) < 0) {
            fprintf(stderr, "zpoke: %s\n", err.msg);
            return 2;
        }
    }
    zmq_connect(s, argv[1]);
    const char *t = getenv("ZPOKE_TIMEOUT");
    if (!strcmp(mode, "flood") && argc == 4) {
        int code = do_flood(s, atol(argv[3]));
        zmq_close(s);
        zmq_ctx_term(ctx);
        return code;
    }
    if (!strcmp(mode, "stage") || !strcmp(mode, "step")) {
        long timeout_ms = (t ? atol(t) : 60) * 1000;
        int code = 2;
        if (!strcmp(mode, "stage") && argc == 6)
            code = do_stage(s, argv + 3, timeout_ms);
        else if (!strcmp(mode, "step") && argc >= 5)
            code = do_step(s, argc - 3, argv + 3, timeout_ms);
        else
            fprintf(stderr, "zpoke: bad arguments for %s\n", mode);
        zmq_close(s);
        zmq_ctx_term(ctx);
        return code;
    }

    Baton__Envelope env = BATON__ENVELOPE__INIT;
    Baton__Hello hello = BATON__HELLO__INIT;
    hello.coordinator_version = BATON_VERSION;
    Baton__Step step = BATON__STEP__INIT;
    env.protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env.request_id = 42;
    env.body_case = BATON__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    uint8_t *buf = NULL;
    size_t len = 0;
    static const uint8_t garbage[] = {0x0f, 0xff, 0xff, 0xff, 0x01, 0x02};
    static const uint8_t empty[] = {0x08, 0x01};
    static const uint8_t future[] = {0x08, 0x01, 0x9a, 0x06, 0x00};
    if (!strcmp(mode, "garbage")) {
        zmq_send(s, garbage, sizeof(garbage), 0);
    } else if (!strcmp(mode, "empty")) {
        zmq_send(s, empty, sizeof(empty), 0);
    } else if (!strcmp(mode, "future")) {
        zmq_send(s, future, sizeof(future), 0);
    } else if (!strcmp(mode, "multipart")) { /* three frames: two are a chunk at most */
        zmq_send(s, empty, sizeof(empty), ZMQ_SNDMORE);
        zmq_send(s, empty, sizeof(empty), ZMQ_SNDMORE);
        zmq_send(s, empty, sizeof(empty), 0);
    } else if (!strcmp(mode, "oversize")) {
        len = BATON_MSG_MAX + 64 * 1024;
        buf = calloc(1, len);
        zmq_send(s, buf, len, 0);
    } else {
        if (!strcmp(mode, "version"))
            env.protocol_version = 77;
        if (!strcmp(mode, "unknown-service")) {
            step.service = "nosuch";
            env.rollout_id = "r1";
            env.body_case = BATON__ENVELOPE__BODY_STOP;
            env.stop = &step;
        }
        Baton__Stage st = BATON__STAGE__INIT;
        bool framed = !strcmp(mode, "frame-hello") || !strcmp(mode, "frame-short");
        if (!strcmp(mode, "frame-short")) {
            st.service = "gamesrv";
            st.size = 100;
            st.data_frame = 100;
            env.body_case = BATON__ENVELOPE__BODY_STAGE;
            env.stage = &st;
        }
        if (envelope_pack(&env, &buf, &len, NULL) < 0)
            return 2;
        zmq_send(s, buf, len, framed ? ZMQ_SNDMORE : 0);
        if (framed)
            zmq_send(s, garbage, sizeof(garbage), 0);
    }
    free(buf);

    int code = wait_result(s, (t ? atol(t) : 3) * 1000, true);
    if (code == 3)
        code = 0; /* a Result came: that is what these modes check */
    zmq_close(s);
    zmq_ctx_term(ctx);
    return code;
}
