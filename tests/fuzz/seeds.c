/* seeds: writes well-formed Envelopes (one of each command) into a folder, the starting corpus
 * of fuzz_envelope: libFuzzer mutates from real messages rather than from nothing. */
#include <stdio.h>
#include <stdlib.h>

#include "envelope.h"

static void put(const char *dir, const char *name, Baton__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    env->protocol_version = BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    env->request_id = 42;
    env->rollout_id = "r20261127T000000-abcdef";
    if (envelope_pack(env, &buf, &len, &err) < 0)
        exit(1);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
        exit(1);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    Baton__Hello hello = BATON__HELLO__INIT;
    Baton__Envelope e = BATON__ENVELOPE__INIT;
    e.body_case = BATON__ENVELOPE__BODY_HELLO;
    e.hello = &hello;
    put(argv[1], "hello", &e);

    Baton__Stage st = BATON__STAGE__INIT;
    static uint8_t bytes[] = "#!/bin/sh\necho 1.1.0\n";
    st.service = "gamesrv", st.version = "1.1.0";
    st.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    st.size = sizeof(bytes) - 1, st.data.data = bytes, st.data.len = sizeof(bytes) - 1;
    e = (Baton__Envelope)BATON__ENVELOPE__INIT;
    e.body_case = BATON__ENVELOPE__BODY_STAGE;
    e.stage = &st;
    put(argv[1], "stage", &e);

    Baton__Step step = BATON__STEP__INIT;
    step.service = "gamesrv", step.version = "1.1.0", step.sha256 = st.sha256;
    static const struct {
        Baton__Envelope__BodyCase body;
        const char *name;
    } steps[] = {{BATON__ENVELOPE__BODY_PREFLIGHT, "preflight"},
                 {BATON__ENVELOPE__BODY_STOP, "stop"},
                 {BATON__ENVELOPE__BODY_DUMP, "dump"},
                 {BATON__ENVELOPE__BODY_SWAP, "swap"},
                 {BATON__ENVELOPE__BODY_START, "start"},
                 {BATON__ENVELOPE__BODY_VERIFY, "verify"},
                 {BATON__ENVELOPE__BODY_COMMIT, "commit"},
                 {BATON__ENVELOPE__BODY_ROLLBACK, "rollback"},
                 {BATON__ENVELOPE__BODY_PLAN, "plan"}};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        e = (Baton__Envelope)BATON__ENVELOPE__INIT;
        e.body_case = steps[i].body;
        e.preflight = &step; /* every Step-shaped body shares the union's slot */
        put(argv[1], steps[i].name, &e);
    }
    Baton__Migrate mig = BATON__MIGRATE__INIT;
    mig.service = "gamesrv", mig.direction = BATON__DIRECTION__DIRECTION_DOWN, mig.limit = 1;
    e = (Baton__Envelope)BATON__ENVELOPE__INIT;
    e.body_case = BATON__ENVELOPE__BODY_MIGRATE;
    e.migrate = &mig;
    put(argv[1], "migrate-down", &e);
    return 0;
}
