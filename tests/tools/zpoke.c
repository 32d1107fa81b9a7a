/* zpoke: sends one hostile (or plain) message to a baton-agent and prints what comes back, so
 * that tests can check the real agent answers bad input with an error Result and lives on.
 *
 *   zpoke ENDPOINT garbage|version|empty|future|multipart|oversize|unknown-service|hello
 * Prints "STATUS message" of the Result, or "no answer"; exit 0 when a Result came. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "envelope.h"

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

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: zpoke ENDPOINT MODE\n");
        return 2;
    }
    const char *mode = argv[2];
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_connect(s, argv[1]);

    Baton__Envelope env = BATON__ENVELOPE__INIT;
    Baton__Hello hello = BATON__HELLO__INIT;
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
    } else if (!strcmp(mode, "multipart")) {
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
        if (envelope_pack(&env, &buf, &len, NULL) < 0)
            return 2;
        zmq_send(s, buf, len, 0);
    }
    free(buf);

    zmq_pollitem_t item = {.socket = s, .events = ZMQ_POLLIN};
    int code = 1;
    if (zmq_poll(&item, 1, 3000) == 1) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, s, 0);
        Baton__Envelope *got = NULL;
        if (envelope_unpack(zmq_msg_data(&m), zmq_msg_size(&m), &got, NULL) == 0 &&
            got->body_case == BATON__ENVELOPE__BODY_RESULT) {
            printf("%s %s\n", status_name(got->result->status), got->result->message);
            code = 0;
        } else {
            printf("unreadable answer\n");
        }
        envelope_free(&got);
        zmq_msg_close(&m);
    } else {
        printf("no answer\n");
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return code;
}
