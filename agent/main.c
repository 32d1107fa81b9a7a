/* baton-agent: the daemon on every node. Reads its config, binds a ZeroMQ ROUTER, tells
 * systemd it is ready, and serves the coordinator's commands one at a time until stopped.
 *
 *   baton-agent [--config /etc/baton/agent.yml] [--check-config]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <systemd/sd-daemon.h>

#include "version.h"
#include "agent.h"
#include "conninfo.h"
#include "envelope.h"
#include "fsutil.h"
#include "log.h"
#include "proc.h"
#include "transport.h"
#include "zap.h"

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_signal;

/* SIGHUP (systemctl reload): read the authorized keys again. */
static void on_hup(int sig)
{
    (void)sig;
    reload_signal = 1;
}

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: baton-agent [--config FILE] [--check-config] [--version]\n"
               "  --config FILE    agent configuration (default /etc/baton/agent.yml)\n"
               "  --check-config   check the configuration and exit\n");
}

/* The keys: this agent's secret key and the coordinators it obeys (checked by --check-config
 * too, so that a bad key file is found before a restart). */
static int check_keys(const agent_config_t *cfg, transport_key_t *ret_secret,
                      transport_key_t *ret_public, size_t *ret_n, baton_err_t *err)
{
    if (cfg->insecure)
        return 0;
    int r = transport_read_secret(cfg->secret_key, ret_secret, ret_public, err);
    return r < 0 ? r : zap_check_file(cfg->authorized_keys, ret_n, err);
}

static int setup_socket(agent_t *a, baton_err_t *err)
{
    a->zctx = zmq_ctx_new();
    a->router = a->zctx ? zmq_socket(a->zctx, ZMQ_ROUTER) : NULL;
    if (!a->router)
        return baton_err_set(err, -errno, "zmq: %s", zmq_strerror(errno));
    if (!a->cfg->insecure) {
        /* The ZAP handler answers before the socket binds: no client is ever let in
         * unchecked. */
        transport_key_t secret, public;
        size_t n = 0;
        char fp[17];
        int r = check_keys(a->cfg, &secret, &public, &n, err);
        if (r < 0 || (r = zap_new(a->zctx, a->cfg->authorized_keys, &a->zap, err)) < 0 ||
            (r = transport_server(a->router, &secret, err)) < 0)
            return r;
        transport_fingerprint(&public, fp);
        log_event(NULL, NULL, NULL, 6,
                  "CURVE: public key %s (fingerprint %s), %zu coordinators "
                  "authorized in %s",
                  public.z85, fp, n, a->cfg->authorized_keys);
    } else {
        log_event(NULL, NULL, NULL, 4,
                  "INSECURE: plain text, no authentication (insecure: true "
                  "in %s): anyone who reaches %s can run steps as root",
                  a->cfg->path, a->cfg->listen);
    }
    int r = transport_tune(a->router, true, err);
    if (r < 0)
        return r;
    if (zmq_bind(a->router, a->cfg->listen) < 0)
        return baton_err_set(err, -errno, "bind %s: %s", a->cfg->listen, zmq_strerror(errno));
    return 0;
}

/* Drains what is left of a message after `more` frames were taken. */
static void drain(void *sock)
{
    int more = 1;
    size_t more_len = sizeof(more);
    while (more) {
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        int r = zmq_msg_recv(&extra, sock, 0);
        zmq_msg_close(&extra);
        if (r < 0 || zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_len) < 0)
            return;
    }
}

/* Receives one request: [identity][payload], or [identity][payload][chunk] for a Stage whose
 * bytes come in a frame of their own (Stage.data_frame). Anything else is drained and refused. */
static void receive_one(agent_t *a)
{
    zmq_msg_t peer, payload, frame;
    int more = 0;
    size_t more_len = sizeof(more);
    zmq_msg_init(&peer);
    if (zmq_msg_recv(&peer, a->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&peer);
        return;
    }
    zmq_getsockopt(a->router, ZMQ_RCVMORE, &more, &more_len);
    if (!more) {
        zmq_msg_close(&peer);
        return;
    }
    zmq_msg_init(&payload);
    zmq_msg_init(&frame);
    bool framed = false;
    if (zmq_msg_recv(&payload, a->router, 0) < 0)
        goto out;
    zmq_getsockopt(a->router, ZMQ_RCVMORE, &more, &more_len);
    if (more) {
        if (zmq_msg_recv(&frame, a->router, 0) < 0)
            goto out;
        framed = true;
        zmq_getsockopt(a->router, ZMQ_RCVMORE, &more, &more_len);
        if (more) { /* a request is one frame, or two for a chunk */
            drain(a->router);
            agent_reply_error(a, &peer, 0, BATON__STATUS__STATUS_BAD_REQUEST,
                              "a request is one frame, a stage chunk at most two");
            goto out;
        }
    }
    Baton__Envelope *env = NULL;
    baton_err_t err = {0};
    int r = envelope_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload), &env, &err);
    if (r == 0 && (r = envelope_take_frame(env, framed ? zmq_msg_data(&frame) : NULL,
                                           zmq_msg_size(&frame), &err)) < 0)
        envelope_free(&env);
    if (r < 0) {
        log_event(NULL, NULL, NULL, 4, "refused a request: %s", err.msg);
        agent_reply_error(a, &peer, 0,
                          r == -EPROTONOSUPPORT ? BATON__STATUS__STATUS_UNSUPPORTED
                                                : BATON__STATUS__STATUS_BAD_REQUEST,
                          err.msg);
    } else {
        agent_serve(a, &peer, &env);
        envelope_free(&env);
    }
out:
    zmq_msg_close(&frame);
    zmq_msg_close(&payload);
    zmq_msg_close(&peer);
}

/* The command line: the config's path and --check-config. Returns -1 to go on, else the exit
 * code (--help, --version, a bad option). */
static int parse_args(int argc, char **argv, const char **ret_config, bool *ret_check_only)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:kh", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            *ret_config = optarg;
            break;
        case 'k':
            *ret_check_only = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("baton-agent %s (protocol %d; works with coordinators %s and one minor older "
                   "or newer)\n",
                   BATON_VERSION, BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT, BATON_VERSION);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 1;
    }
    return -1;
}

/* --check-config: the config read (already) and its keys; nothing started. */
static int check_config(const agent_config_t *cfg, const char *config_path)
{
    baton_err_t err = {0};
    transport_key_t secret, public;
    size_t n_keys = 0;
    if (check_keys(cfg, &secret, &public, &n_keys, &err) < 0) {
        fprintf(stderr, "baton-agent: %s\n", err.msg);
        return 1;
    }
    if (cfg->insecure)
        fprintf(stderr,
                "baton-agent: warning: insecure: true: plain text, anyone who reaches %s can run "
                "steps\n",
                cfg->listen);
    printf("%s: ok (%zu services)\n", config_path, cfg->n_services);
    return 0;
}

/* Everything before serving: the state folder, the socket, the workers, each service's
 * database for its unit, and what an agent killed mid-step left running. */
static int start(agent_t *a, baton_err_t *err)
{
    const agent_config_t *cfg = a->cfg;
    if (digest_global_init(err) < 0 || fs_mkdir_p(cfg->state_dir, 0700, err) < 0 ||
        setup_socket(a, err) < 0 || agent_lanes_start(a, err) < 0)
        return -1;
    /* Each service's database for its unit (EnvironmentFile=STATE_DIR/SERVICE.env): the
     * address is written once, in the agent's config. */
    for (size_t i = 0; i < cfg->n_services; i++) {
        baton_err_t e = {0};
        if (conninfo_env_file(cfg->state_dir, cfg->services[i].name, cfg->services[i].database,
                              &e) < 0)
            log_event(cfg->services[i].name, NULL, NULL, 3, "%s", e.msg);
    }
    /* A previous agent killed in the middle of a step may have left its tool running (a
     * migration holding locks, say): end it before serving anything. */
    char pidfile[4200];
    for (size_t i = 0; i <= cfg->n_services; i++) {
        /* Each service's tool, and the one an agent before per-service workers recorded. */
        if (i < cfg->n_services)
            snprintf(pidfile, sizeof(pidfile), "%s/running-%s.pid", cfg->state_dir,
                     cfg->services[i].name);
        else
            snprintf(pidfile, sizeof(pidfile), "%s/running.pid", cfg->state_dir);
        if (proc_kill_leftover(pidfile))
            log_event(i < cfg->n_services ? cfg->services[i].name : NULL, NULL, NULL, 4,
                      "killed a command the previous agent left running");
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct sigaction hup = {.sa_handler = on_hup};
    sigaction(SIGHUP, &hup, NULL);
    signal(SIGPIPE, SIG_IGN);
    uint64_t wd = 0;
    if (sd_watchdog_enabled(0, &wd) > 0)
        a->watchdog_usec = wd;
    return 0;
}

/* SIGHUP: the authorized keys read again; a list that does not read leaves the previous one. */
static void reload_keys(agent_t *a)
{
    baton_err_t err = {0};
    if (!a->zap)
        log_event(NULL, NULL, NULL, 5, "reload: insecure, no key list to read");
    else if (zap_reload(a->zap, &err) < 0)
        log_event(NULL, NULL, NULL, 3, "reload: %s; the previous list stays", err.msg);
    else
        log_event(NULL, NULL, NULL, 5, "reload: %zu coordinators authorized", zap_count(a->zap));
    sd_notify(0, "READY=1");
}

/* The main loop. A stop signal (a restart, a package upgrade) lets the running steps finish:
 * they record and send their Results, heartbeats go on, and no new request is read meanwhile (a
 * step asked for now stays queued; its asker asks again after a few seconds of silence and gets
 * the restarted agent). A restart never cuts a running tool; systemd's TimeoutStopSec, longer
 * than any step's own deadline, bounds the wait. */
static void serve(agent_t *a)
{
    bool said_waiting = false;
    while (!stop_signal || agent_busy(a)) {
        if (stop_signal && !said_waiting) {
            for (size_t i = 0; i < a->cfg->n_services; i++)
                if (a->lanes[i].run.on)
                    log_event(NULL, NULL, NULL, 5, "stopping after %s of %s ends",
                              a->lanes[i].run.def->name, a->lanes[i].run.svc->name);
            said_waiting = true;
        }
        if (reload_signal) {
            reload_signal = 0;
            reload_keys(a);
        }
        /* The ROUTER, the two fronts, the ZAP handler, then every service's worker. */
        zmq_pollitem_t items[4 + AGENT_SERVICES_MAX] = {
            {.socket = a->router, .events = stop_signal ? 0 : ZMQ_POLLIN},
            {.socket = front_socket(a->hello_front), .events = ZMQ_POLLIN},
            {.socket = front_socket(a->stage_front), .events = ZMQ_POLLIN},
            {.socket = a->zap ? zap_socket(a->zap) : NULL, .events = ZMQ_POLLIN}};
        int k = a->zap ? 4 : 3;
        for (size_t i = 0; i < a->cfg->n_services; i++)
            items[k + i] =
                (zmq_pollitem_t){.socket = worker_socket(a->lanes[i].worker), .events = ZMQ_POLLIN};
        int n = zmq_poll(items, k + (int)a->cfg->n_services, 250);
        if (n < 0 && errno != EINTR) {
            log_event(NULL, NULL, NULL, 3, "poll: %s", zmq_strerror(errno));
            break;
        }
        for (size_t i = 0; n > 0 && i < a->cfg->n_services; i++)
            if (items[k + i].revents & ZMQ_POLLIN)
                agent_from_worker(a, &a->lanes[i]);
        if (n > 0 && (items[1].revents & ZMQ_POLLIN))
            agent_from_front(a, a->hello_front);
        if (n > 0 && (items[2].revents & ZMQ_POLLIN))
            agent_from_front(a, a->stage_front);
        if (n > 0 && a->zap && (items[3].revents & ZMQ_POLLIN))
            zap_handle(a->zap);
        if (n > 0 && (items[0].revents & ZMQ_POLLIN))
            receive_one(a);
        agent_tick(a);
    }
}

int main(int argc, char **argv)
{
    const char *config_path = "/etc/baton/agent.yml";
    bool check_only = false;
    int code = parse_args(argc, argv, &config_path, &check_only);
    if (code >= 0)
        return code;
    agent_t a = {0};
    for (size_t i = 0; i < AGENT_SERVICES_MAX; i++)
        a.lanes[i].stage.fd = -1;
    baton_err_t err = {0};
    if (agent_config_load(config_path, &a.cfg, &err) < 0) {
        fprintf(stderr, "baton-agent: %s\n", err.msg);
        /* A fresh install: say where the annotated example is. */
        if (access(config_path, F_OK) < 0)
            fprintf(stderr, "baton-agent: no configuration at %s; an annotated example is %s\n",
                    config_path, BATON_DOCDIR "/agent.yml.example");
        return 1;
    }
    if (check_only) {
        code = check_config(a.cfg, config_path);
        agent_config_destroy(&a.cfg);
        return code;
    }
    if (start(&a, &err) < 0) {
        log_event(NULL, NULL, NULL, 3, "%s", err.msg);
        return 1;
    }
    log_event(NULL, NULL, NULL, 6, "listening on %s as node %s, %zu services, protocol %d",
              a.cfg->listen, a.cfg->node_name, a.cfg->n_services,
              BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT);
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s", a.cfg->listen);
    serve(&a);
    sd_notify(0, "STOPPING=1");
    log_event(NULL, NULL, NULL, 6, "stopping (signal %d)", (int)stop_signal);
    agent_lanes_stop(&a);
    zmq_close(a.router);
    zap_destroy(&a.zap);
    zmq_ctx_term(a.zctx);
    sd_bus_flush_close_unref(a.bus);
    curl_global_cleanup();
    agent_config_destroy(&a.cfg);
    return 0;
}
