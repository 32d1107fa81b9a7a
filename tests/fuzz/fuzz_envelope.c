/* fuzz_envelope: libFuzzer target for what arrives on an agent's socket: the bytes are unpacked
 * and checked (envelope_unpack), and what passes is dispatched by the real agent code
 * (agent_serve: Hello, Stage into a scratch state folder, the step rules, Plan) with the worker
 * stubbed at its boundary, so that no step ever touches this machine. A step "submitted" ends at
 * once, as if it finished. Replies go to a ROUTER nobody reads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "agent.h"
#include "envelope.h"
#include "worker.h"

/* --- the worker's boundary, stubbed ------------------------------------------------------ */
int worker_new(void *zctx, const agent_config_t *cfg, const svc_config_t *svc, worker_t **ret,
               baton_err_t *err)
{
    (void)zctx, (void)cfg, (void)svc, (void)err;
    *ret = NULL;
    return 0;
}
void worker_destroy(worker_t **w_p)
{
    *w_p = NULL;
}
void *worker_socket(worker_t *w)
{
    (void)w;
    return NULL;
}
uint64_t worker_last_sign(worker_t *w)
{
    (void)w;
    return 0;
}
void worker_job_free(struct worker_job **job_p)
{
    if (!job_p || !*job_p)
        return;
    svc_state_destroy(&(*job_p)->st);
    envelope_free(&(*job_p)->req);
    free(*job_p);
    *job_p = NULL;
}
int worker_submit(worker_t *w, struct worker_job *job, baton_err_t *err)
{
    (void)w, (void)err;
    worker_job_free(&job); /* "ran" */
    return 0;
}

static agent_t agent;
static char dir[] = "/tmp/baton-fuzz-XXXXXX";

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

static void setup(void)
{
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    char path[256], text[1024];
    snprintf(path, sizeof(path), "%s/agent.yml", dir);
    snprintf(text, sizeof(text),
             "node: fuzz\nlisten: tcp://127.0.0.1:1\nstate_dir: %s/state\ninsecure: true\n"
             "services:\n  - name: gamesrv\n    unit: gamesrv.service\n"
             "    binary: %s/gamesrv\n    database: host=/nonexistent dbname=x\n"
             "    backup_dir: %s/backups\n    health:\n      tcp: 127.0.0.1:1\n",
             dir, dir, dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
    baton_err_t err = {0};
    for (size_t i = 0; i < AGENT_SERVICES_MAX; i++)
        agent.lanes[i].stage.fd = -1;
    if (agent_config_load(path, &agent.cfg, &err) < 0) {
        fprintf(stderr, "fuzz setup: %s\n", err.msg);
        abort();
    }
    agent.zctx = zmq_ctx_new();
    agent.router = zmq_socket(agent.zctx, ZMQ_ROUTER);
    zmq_bind(agent.router, "inproc://fuzz");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!agent.cfg)
        setup();
    Baton__Envelope *env = NULL;
    baton_err_t err = {0};
    if (envelope_unpack(data, size, &env, &err) < 0)
        return 0;
    /* Whatever passed the checks packs again. */
    uint8_t *buf = NULL;
    size_t len = 0;
    if (envelope_pack(env, &buf, &len, &err) == 0)
        free(buf);
    zmq_msg_t peer;
    zmq_msg_init_size(&peer, 4);
    memcpy(zmq_msg_data(&peer), "peer", 4);
    agent_serve(&agent, &peer, &env);
    envelope_free(&env);
    zmq_msg_close(&peer);
    struct running *run = &agent.lanes[0].run; /* the one service's */
    if (run->have_peer) {
        zmq_msg_close(&run->peer);
        run->have_peer = false;
    }
    run->on = false; /* the stubbed step ended */
    return 0;
}
