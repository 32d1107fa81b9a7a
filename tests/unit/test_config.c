/* Unit tests for the agent's config file and the coordinator's rollout file: good files load
 * with their defaults; every bad one is refused with the file, the line and the key. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "rollout_file.h"
#include "transport.h"

static char path[64];

static const char *write_tmp(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/baton-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static const char good_agent[] = "node: node1\n"
                                 "listen: tcp://0.0.0.0:7400\n"
                                 "services:\n"
                                 "  - name: gamesrv\n"
                                 "    unit: gamesrv.service\n"
                                 "    binary: /opt/gamesrv/bin/gamesrv\n"
                                 "    database: host=db dbname=game user=game\n"
                                 "    passfile: /etc/baton/pgpass\n"
                                 "    backup_dir: /var/backups/baton\n"
                                 "    health:\n"
                                 "      http: http://127.0.0.1:7350/healthcheck\n"
                                 "    timeouts:\n"
                                 "      verify: 90s\n"
                                 "      migrate: 2h\n"
                                 "curve:\n"
                                 "  secret_key: /etc/baton/agent.key\n"
                                 "  authorized_keys: /etc/baton/coordinators\n";

static void test_agent_config_good(void **state)
{
    (void)state;
    agent_config_t *c = NULL;
    baton_err_t err = {0};
    /* A database named like a password is fine: only a real password key is refused. */
    char text[2048];
    const char *at = strstr(good_agent, "dbname=game");
    snprintf(text, sizeof(text), "%.*sdbname=passwords%s", (int)(at - good_agent), good_agent,
             at + strlen("dbname=game"));
    assert_int_equal(agent_config_load(write_tmp(text), &c, &err), 0);
    unlink(path);
    agent_config_destroy(&c);
    assert_int_equal(agent_config_load(write_tmp(good_agent), &c, &err), 0);
    unlink(path);
    assert_string_equal(c->node_name, "node1");
    assert_string_equal(c->state_dir, "/var/lib/baton");
    assert_null(c->metrics_dir); /* no metrics unless asked */
    assert_int_equal(c->n_services, 1);
    const svc_config_t *s = agent_config_service(c, "gamesrv");
    assert_non_null(s);
    assert_null(agent_config_service(c, "other"));
    assert_string_equal(s->migrate_up, "{binary} migrate up");
    assert_string_equal(s->migrate_down, "{binary} migrate down --limit {n}");
    assert_string_equal(s->migration_table, "migration_info");
    assert_int_equal(s->keep_backups, 3);
    assert_int_equal(s->timeout_verify_ms, 90000);
    assert_int_equal(s->timeout_migrate_ms, 2 * 3600 * 1000);
    assert_int_equal(s->timeout_stop_ms, 90000);
    assert_int_equal(s->min_healthy_ms, 10000); /* Nomad's default */
    assert_string_equal(s->pg_env[0], "PGPASSFILE=/etc/baton/pgpass");
    assert_null(s->pg_env[1]);
    assert_null(s->health_tcp);
    assert_null(s->check);
    assert_null(s->rehearse_migrate); /* migrate_up does not name the database */
    assert_int_equal(s->timeout_check_ms, 60000);
    agent_config_destroy(&c);
    assert_null(c);
}

/* Nakama's entry: the database written once, as {database_url} in migrate_up (the rehearsal
 * takes the same command), and a check of the new release before anything stops. */
static void test_agent_config_nakama(void **state)
{
    (void)state;
    char text[2048];
    const char *at = strstr(good_agent, "    timeouts:\n");
    snprintf(text, sizeof(text),
             "%.*s    migrate_up: \"{binary} migrate up --database.address {database_url}\"\n"
             "    migrate_down: \"{binary} migrate down --limit {n} --database.address "
             "{database_url}\"\n"
             "    check: \"{binary} check --runtime.path /opt/nakama/data/modules\"\n"
             "    timeouts:\n      check: 2m\n%s",
             (int)(at - good_agent), good_agent, at + strlen("    timeouts:\n"));
    agent_config_t *c = NULL;
    baton_err_t err = {0};
    if (agent_config_load(write_tmp(text), &c, &err) < 0)
        fail_msg("%s", err.msg);
    unlink(path);
    const svc_config_t *s = agent_config_service(c, "gamesrv");
    assert_string_equal(s->check, "{binary} check --runtime.path /opt/nakama/data/modules");
    assert_string_equal(s->rehearse_migrate, s->migrate_up);
    assert_int_equal(s->timeout_check_ms, 120000);
    agent_config_destroy(&c);
}

/* Replaces the first `from` in good_agent by `to` and expects `want` in the error. */
static void expect_agent_error(const char *from, const char *to, const char *want)
{
    char text[2048];
    const char *at = strstr(good_agent, from);
    assert_non_null(at);
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - good_agent), good_agent, to,
             at + strlen(from));
    agent_config_t *c = NULL;
    baton_err_t err = {0};
    int r = agent_config_load(write_tmp(text), &c, &err);
    char expect[256];
    snprintf(expect, sizeof(expect), "%s:%s", path, want);
    unlink(path);
    if (r == 0 || !strstr(err.msg, expect))
        fail_msg("want '%s', got %d '%s'", expect, r, err.msg);
    assert_null(c);
}

static void test_agent_config_errors(void **state)
{
    (void)state;
    expect_agent_error("    unit: gamesrv.service\n", "    unti: gamesrv.service\n",
                       "5: services[0].unti: unknown key");
    expect_agent_error("    unit: gamesrv.service\n",
                       "    unit: gamesrv.service\n    list_migrations: x\n"
                       "    list_migrations_pattern: \"([0-9\"\n",
                       "7: services[0].list_migrations_pattern: ");
    expect_agent_error("    unit: gamesrv.service\n",
                       "    unit: gamesrv.service\n    list_migrations_pattern: \"^[0-9]+\"\n",
                       "6: services[0].list_migrations_pattern: needs list_migrations");
    expect_agent_error("    unit: gamesrv.service\n",
                       "    unit: gamesrv.service\n    release_dir: /opt/gamesrv\n",
                       "7: services[0].binary: must be /opt/gamesrv/current/PATH");
    expect_agent_error("    unit: gamesrv.service\n",
                       "    unit: gamesrv.service\n    release_dir: opt/gamesrv\n",
                       "6: services[0].release_dir: must be an absolute path");
    expect_agent_error("      verify: 90s\n", "      verify: soon\n",
                       "13: services[0].timeouts.verify: 'soon' is not a duration");
    expect_agent_error("    binary: /opt/gamesrv/bin/gamesrv\n", "    binary: gamesrv\n",
                       "6: services[0].binary: must be an absolute path");
    expect_agent_error("    backup_dir: /var/backups/baton\n",
                       "    backup_dir: /var/backups/baton\n    migrate_down: x down\n",
                       "10: services[0].migrate_down: must pass the limit {n}");
    expect_agent_error("user=game\n", "user=game password=hunter2\n",
                       "7: services[0].database: must not hold a password");
    expect_agent_error("    database: host=db dbname=game user=game\n",
                       "    database: postgresql://game:hunter2@db/game\n",
                       "7: services[0].database: must not hold a password");
    expect_agent_error("user=game\n", "user='game\n",
                       "7: services[0].database: is not a libpq connection string");
    expect_agent_error("      http: http://127.0.0.1:7350/healthcheck\n",
                       "      http: http://x/\n      tcp: x:1\n",
                       "11: services[0].health: give exactly one of http or tcp");
    expect_agent_error("listen: tcp://0.0.0.0:7400\n", "listen: tcp://0.0.0.0:7400\nnode: x\n",
                       "3: node: duplicate key (first on line 1)");
    expect_agent_error("    unit: gamesrv.service\n", "    unit: [a, b]\n",
                       "5: services[0].unit: expected a value, found a list");
    expect_agent_error("      verify: 90s\n", "      verify: [\n", "");
    expect_agent_error("    backup_dir: /var/backups/baton\n",
                       "    backup_dir: /var/backups/baton\n    min_healthy_time: 2h\n",
                       "10: services[0].min_healthy_time: 2h is not between 0ms and 3600000ms");
    expect_agent_error("    backup_dir: /var/backups/baton\n",
                       "    backup_dir: /var/backups/baton\n    min_healthy_time: -1s\n",
                       "10: services[0].min_healthy_time: '-1s' is not a duration");
    expect_agent_error("    backup_dir: /var/backups/baton\n",
                       "    backup_dir: /var/backups/baton\n    haproxy:\n      backend: game\n",
                       "11: services[0].haproxy.runtime_api: required key missing");
    expect_agent_error("    backup_dir: /var/backups/baton\n",
                       "    backup_dir: /var/backups/baton\n    haproxy:\n"
                       "      runtime_api: lb1\n      backend: game\n",
                       "11: services[0].haproxy.runtime_api: must be the path of haproxy's");
    expect_agent_error("    backup_dir: /var/backups/baton\n",
                       "    backup_dir: /var/backups/baton\n    haproxy:\n"
                       "      runtime_api: lb1:9999\n      backend: game\n      server: a/b\n",
                       "13: services[0].haproxy.server: must be 1-100 of");
    expect_agent_error("    backup_dir: /var/backups/baton\n",
                       "    backup_dir: /var/backups/baton\n    haproxy:\n"
                       "      runtime_api: lb1:9999\n      backend: game\n      sever: x\n",
                       "13: services[0].haproxy.sever: unknown key");
}

/* The built-in haproxy: the server defaults to the node's name, the waits to a minute. */
static void test_agent_config_haproxy(void **state)
{
    (void)state;
    char text[2048];
    const char *at = strstr(good_agent, "    health:");
    snprintf(text, sizeof(text),
             "%.*s    haproxy:\n      runtime_api: 10.0.0.5:9999\n      backend: game\n%s",
             (int)(at - good_agent), good_agent, at);
    agent_config_t *c = NULL;
    baton_err_t err = {0};
    assert_int_equal(agent_config_load(write_tmp(text), &c, &err), 0);
    unlink(path);
    const haproxy_target_t *h = c->services[0].haproxy;
    assert_non_null(h);
    assert_string_equal(h->runtime_api, "10.0.0.5:9999");
    assert_string_equal(h->backend, "game");
    assert_string_equal(h->server, "node1");
    assert_int_equal(h->drain_ms, 60000);
    assert_int_equal(h->up_ms, 60000);
    agent_config_destroy(&c);
}

/* pull: how the agent fetches an artifact named by URL; each key checked, named by line. */
static void test_agent_config_pull(void **state)
{
    (void)state;
    char text[2048];
    snprintf(text, sizeof(text),
             "%spull:\n  proxy: http://proxy:3128\n  ca_file: /etc/baton/mirror-ca.pem\n"
             "  max_bytes_per_sec: 10485760\n",
             good_agent);
    agent_config_t *c = NULL;
    baton_err_t err = {0};
    assert_int_equal(agent_config_load(write_tmp(text), &c, &err), 0);
    unlink(path);
    assert_string_equal(c->pull_proxy, "http://proxy:3128");
    assert_string_equal(c->pull_ca_file, "/etc/baton/mirror-ca.pem");
    assert_int_equal(c->pull_max_bytes_per_sec, 10485760);
    agent_config_destroy(&c);
    assert_int_equal(agent_config_load(write_tmp(good_agent), &c, &err), 0);
    unlink(path);
    assert_null(c->pull_proxy); /* libcurl's own defaults: no proxy unless asked, the system CAs */
    assert_null(c->pull_ca_file);
    assert_int_equal(c->pull_max_bytes_per_sec, 0);
    agent_config_destroy(&c);

    static const struct {
        const char *pull, *want;
    } bad[] = {
        {"pull:\n  ca_file: mirror-ca.pem\n", ":19: pull.ca_file: must be an absolute path"},
        {"pull:\n  max_bytes_per_sec: 10\n", ":19: pull.max_bytes_per_sec: "},
        {"pull:\n  proxi: x\n", ":19: pull.proxi: unknown key"},
        {"pull: fast\n", ":18: pull: expected a mapping"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", good_agent, bad[i].pull);
        assert_true(agent_config_load(write_tmp(text), &c, &err) < 0);
        unlink(path);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("%s: got '%s', want '%s'", bad[i].pull, err.msg, bad[i].want);
        assert_null(c);
    }
}

static void test_agent_config_unreadable(void **state)
{
    (void)state;
    agent_config_t *c = NULL;
    baton_err_t err = {0};
    assert_true(agent_config_load("/nonexistent/agent.yml", &c, &err) < 0);
    assert_non_null(strstr(err.msg, "/nonexistent/agent.yml: No such file"));
    assert_true(agent_config_load(write_tmp(""), &c, &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, "empty, expected a mapping"));
    assert_true(agent_config_load(write_tmp("listen: tcp://x:1\ninsecure: true\nservices: 3\n"), &c,
                                  &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, ":3: services: expected a list, found a scalar"));
    assert_null(c);
}

static const char good_rollout[] = "insecure: true\n"
                                   "service: gamesrv\n"
                                   "version: 1.1.0\n"
                                   "artifact: gamesrv-1.1.0\n"
                                   "nodes:\n"
                                   "  - name: node1\n"
                                   "    endpoint: tcp://10.0.0.1:7400\n"
                                   "  - name: node2\n"
                                   "    endpoint: tcp://10.0.0.2:7400\n";

static void test_rollout_file(void **state)
{
    (void)state;
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    assert_int_equal(rollout_file_load(write_tmp(good_rollout), &rf, &err), 0);
    unlink(path);
    assert_string_equal(rf->artifact, "/tmp/gamesrv-1.1.0"); /* relative to the file */
    assert_int_equal(rf->n_nodes, 2);
    assert_string_equal(rf->nodes[1].endpoint, "tcp://10.0.0.2:7400");
    assert_int_equal(rf->connect_timeout_ms, 5000);
    assert_int_equal(rf->liveness_ms, 45000);
    assert_false(rf->min_healthy_set); /* the agents' own setting applies */
    assert_null(rf->sha256);
    /* The artifact is checked only where it is sent (rollout, plan), named with its line. */
    assert_int_equal(rollout_file_check_artifact(rf, &err), -ENOENT);
    assert_non_null(strstr(err.msg, ":4: artifact: /tmp/gamesrv-1.1.0: No such file"));
    rollout_file_destroy(&rf);

    char text[1024];
    const char *at = strstr(good_rollout, "10.0.0.2:7400");
    for (size_t i = 0; i < 4; i++) {
        static const char *const bad_ep[] = {"10.0.0.2", "10.0.0.2:0", "10.0.0.2:70000", "[::1"};
        snprintf(text, sizeof(text), "%.*s%s\n", (int)(at - good_rollout), good_rollout, bad_ep[i]);
        assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
        unlink(path);
        if (!strstr(err.msg, ":9: nodes[1].endpoint: must be tcp://HOST:PORT (port 1-65535)"))
            fail_msg("%s: %s", bad_ep[i], err.msg);
    }
    snprintf(text, sizeof(text), "%.*s[::1]:7400\n", (int)(at - good_rollout), good_rollout);
    assert_int_equal(rollout_file_load(write_tmp(text), &rf, &err), 0);
    unlink(path);
    rollout_file_destroy(&rf);
    snprintf(text, sizeof(text), "%sliveness: 5s\nmin_healthy_time: 0\n", good_rollout);
    assert_int_equal(rollout_file_load(write_tmp(text), &rf, &err), 0);
    unlink(path);
    assert_int_equal(rf->liveness_ms, 5000);
    assert_true(rf->min_healthy_set); /* 0 is a value: one probe, as before */
    assert_int_equal(rf->min_healthy_ms, 0);
    rollout_file_destroy(&rf);

    snprintf(text, sizeof(text), "%sliveness: 1s\n", good_rollout);
    assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, ":10: liveness: 1s is not between 2000ms and 3600000ms"));

    snprintf(text, sizeof(text), "%smin_healthy_time: soon\n", good_rollout);
    assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, ":10: min_healthy_time: 'soon' is not a duration"));

    snprintf(text, sizeof(text), "%s  - name: node1\n    endpoint: tcp://10.0.0.3:7400\n",
             good_rollout);
    assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, ":10: nodes[2].name: names a node twice"));

    snprintf(text, sizeof(text), "%ssha256: ABC\n", good_rollout);
    assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, ":10: sha256: must be 64 lower-case hex digits"));

    assert_true(
        rollout_file_load(write_tmp("insecure: true\nservice: x\nversion: 1\nartifact: a\n"), &rf,
                          &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, ":1: nodes: required key missing"));
    assert_null(rf);
}

/* An artifact named by URL: kept as written (not made relative to the file), its digest
 * required, a URL the agents could not fetch refused with its line. */
static void test_rollout_file_url(void **state)
{
    (void)state;
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    char text[1024];
    static const char sha[] = "5f0c6a3b5f0c6a3b5f0c6a3b5f0c6a3b5f0c6a3b5f0c6a3b5f0c6a3b5f0c6a3b";
    const char *at = strstr(good_rollout, "artifact:");
    const char *after = strchr(at, '\n') + 1;
    snprintf(text, sizeof(text),
             "%.*sartifact: https://mirror.example/gamesrv/1.1.0\nsha256: %s\n%s",
             (int)(at - good_rollout), good_rollout, sha, after);
    assert_int_equal(rollout_file_load(write_tmp(text), &rf, &err), 0);
    unlink(path);
    assert_string_equal(rf->artifact, "https://mirror.example/gamesrv/1.1.0");
    assert_string_equal(rf->sha256, sha);
    assert_int_equal(rollout_file_check_artifact(rf, &err), 0); /* the agents' to fetch */
    rollout_file_destroy(&rf);

    snprintf(text, sizeof(text), "%.*sartifact: http://mirror.example/gamesrv\n%s",
             (int)(at - good_rollout), good_rollout, after);
    assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, ":4: artifact: a URL needs the artifact's sha256"));
    assert_null(rf);

    static const char *const bad_url[] = {"https:///gamesrv", "http://", "http://mirror/a b",
                                          "http://mirror/\\x7f", "https://user:secret@mirror/a"};
    for (size_t i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++) {
        snprintf(text, sizeof(text), "%.*sartifact: \"%s\"\nsha256: %s\n%s",
                 (int)(at - good_rollout), good_rollout, bad_url[i], sha, after);
        assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
        unlink(path);
        if (!strstr(err.msg, ":4: artifact: a URL must be http:// or https://"))
            fail_msg("%s: %s", bad_url[i], err.msg);
    }
}

/* The strategy keys: values as an operator writes them, and every bad one named by line. */
static void test_rollout_strategy(void **state)
{
    (void)state;
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    char text[1024];
    assert_int_equal(rollout_file_load(write_tmp(good_rollout), &rf, &err), 0);
    unlink(path);
    assert_int_equal(rf->strategy.n_batches, 1); /* one node at a time */
    assert_int_equal(rf->strategy.batches[0].value, 1);
    assert_false(rf->strategy.max_unavailable_set);
    assert_int_equal(rf->strategy.on_failure, ON_FAILURE_HALT);
    assert_int_equal(rf->strategy.n_pauses, 0);
    assert_int_equal(rf->strategy.max_in_flight, 64);
    assert_int_equal(rf->progress_deadline_ms, 0);
    rollout_file_destroy(&rf);

    snprintf(text, sizeof(text),
             "%sbatches: [1, 2, \"25%%\"]\nmax_unavailable: 2\non_failure: continue\n"
             "max_failures: \"10%%\"\npause_after: [canary, 3]\nhealthy_deadline: 30s\n"
             "progress_deadline: 10m\nmax_in_flight: 8\n",
             good_rollout);
    assert_int_equal(rollout_file_load(write_tmp(text), &rf, &err), 0);
    unlink(path);
    assert_int_equal(rf->strategy.n_batches, 3);
    assert_true(rf->strategy.batches[2].percent);
    assert_int_equal(rf->strategy.batches[2].value, 25);
    assert_true(rf->strategy.max_unavailable_set);
    assert_int_equal(rf->strategy.max_unavailable.value, 2);
    assert_int_equal(rf->strategy.on_failure, ON_FAILURE_CONTINUE);
    assert_int_equal(rf->strategy.max_failures.value, 10);
    assert_int_equal(rf->strategy.n_pauses, 2);
    assert_int_equal(rf->strategy.pause_after[0], 1);
    assert_int_equal(rf->strategy.pause_after[1], 3);
    assert_true(rf->healthy_deadline_set);
    assert_int_equal(rf->healthy_deadline_ms, 30000);
    assert_int_equal(rf->progress_deadline_ms, 600000);
    assert_int_equal(rf->strategy.max_in_flight, 8);
    assert_false(rf->strategy.restore_stop_group); /* refuse, unless said */
    rollout_file_destroy(&rf);
    snprintf(text, sizeof(text), "%srestore_shared: stop-group\n", good_rollout);
    assert_int_equal(rollout_file_load(write_tmp(text), &rf, &err), 0);
    unlink(path);
    assert_true(rf->strategy.restore_stop_group);
    rollout_file_destroy(&rf);

    static const struct {
        const char *add, *want;
    } bad[] = {
        {"batches: 0\n", ":10: batches: '0' is not a node count >= 1"},
        {"batches: [1, two]\n", ":10: batches[]: 'two' is not a node count"},
        {"batches: \"150%\"\n", ":10: batches: '150%' is not"},
        {"batches: []\n", ":10: batches: a list of 1 to 64 entries"},
        {"batches: {a: 1}\n", ":10: batches: '(a list or mapping)' is not"},
        {"max_unavailable: [1]\n", ":10: max_unavailable: expected one value, found a list"},
        {"max_unavailable: 0\n", ":10: max_unavailable: '0' is not"},
        {"on_failure: stop\n", ":10: on_failure: must be halt, rollback-all or continue"},
        {"max_failures: 2\n", ":10: max_failures: only means something with on_failure: continue"},
        {"pause_after: first\n", ":10: pause_after: 'first' is not canary or a batch number"},
        {"pause_after: \"50%\"\n", ":10: pause_after: '50%' is not canary"},
        {"healthy_deadline: 0\n", ":10: healthy_deadline:"},
        {"progress_deadline: later\n", ":10: progress_deadline: 'later' is not a duration"},
        {"max_in_flight: 0\n", ":10: max_in_flight:"},
        {"batch: 2\n", ":10: batch: unknown key"},
        {"restore_shared: yes\n", ":10: restore_shared: must be refuse or stop-group"},
        {"restore_shared: [stop-group]\n", ":10: restore_shared:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", good_rollout, bad[i].add);
        baton_err_clear(&err);
        assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
        unlink(path);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("%s: got '%s', want '%s'", bad[i].add, err.msg, bad[i].want);
        assert_null(rf);
    }
}

/* Whom an agent obeys and whom a coordinator talks to: CURVE keys, or insecure said out loud. */
static void test_security_keys(void **state)
{
    (void)state;
    agent_config_t *c = NULL;
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    static const struct {
        const char *text, *want;
    } agent_bad[] = {
        {"listen: tcp://x:1\nservices: []\n",
         ":1: curve: required (secret_key and authorized_keys"},
        {"listen: tcp://x:1\ninsecure: true\ncurve:\n  secret_key: /a\n  authorized_keys: /b\n",
         ":4: curve and insecure: true exclude each other"},
        {"listen: tcp://x:1\ninsecure: yes\n", ":2: insecure: 'yes' is not true or false"},
        {"listen: tcp://x:1\ncurve:\n  secret_key: agent.key\n  authorized_keys: /b\n",
         "curve.secret_key: must be an absolute path"},
        {"listen: tcp://x:1\ncurve:\n  secret_key: /a\n", "curve.authorized_keys: required key"},
        {"listen: tcp://x:1\ninsecure: true\nmetrics_dir: prom\nservices: []\n",
         ":3: metrics_dir: must be an absolute path"},
        {"listen: tcp://x:1\ncurve:\n  secret_key: /a\n  authorized_keys: /b\n  public: x\n",
         ":5: curve.public: unknown key"},
    };
    for (size_t i = 0; i < sizeof(agent_bad) / sizeof(agent_bad[0]); i++) {
        baton_err_clear(&err);
        assert_true(agent_config_load(write_tmp(agent_bad[i].text), &c, &err) < 0);
        unlink(path);
        if (!strstr(err.msg, agent_bad[i].want))
            fail_msg("%s: got '%s', want '%s'", agent_bad[i].text, err.msg, agent_bad[i].want);
        assert_null(c);
    }
    static const char nodes[] = "service: gamesrv\nversion: 1.1.0\nartifact: a\nnodes:\n"
                                "  - name: node1\n    endpoint: tcp://10.0.0.1:7400\n";
    char text[1024];
    snprintf(text, sizeof(text), "%s", nodes);
    assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, ":1: curve: required (secret_key: the coordinator's key"));
    snprintf(text, sizeof(text),
             "%s    public_key: \"rq:rM>}U?@Lns47E1%%kR.o@n%%FcmmsL/@{H8]yf7\"\ncurve:\n"
             "  secret_key: /nonexistent/coordinator.key\n",
             nodes);
    assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, ":9: curve.secret_key: /nonexistent/coordinator.key: No such"));
    /* A real key pair, and a node whose public_key is missing, then malformed. */
    char prefix[] = "/tmp/baton-test-key-XXXXXX";
    int fd = mkstemp(prefix);
    close(fd);
    unlink(prefix);
    assert_int_equal(transport_keygen(prefix, &err), 0);
    assert_int_equal(transport_keygen(prefix, &err), -EEXIST); /* never overwritten */
    snprintf(text, sizeof(text), "%scurve:\n  secret_key: %s.key\n", nodes, prefix);
    assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, ":5: nodes[0].public_key: required key missing"));
    snprintf(text, sizeof(text), "%s    public_key: \"short\"\ncurve:\n  secret_key: %s.key\n",
             nodes, prefix);
    assert_true(rollout_file_load(write_tmp(text), &rf, &err) < 0);
    unlink(path);
    assert_non_null(strstr(err.msg, "nodes[0].public_key: must be the agent's Z85 public key"));
    transport_key_t pub;
    char pub_path[64];
    snprintf(pub_path, sizeof(pub_path), "%s.pub", prefix);
    assert_int_equal(transport_read_public(pub_path, &pub, &err), 0);
    snprintf(text, sizeof(text), "%s    public_key: \"%s\"\ncurve:\n  secret_key: %s.key\n", nodes,
             pub.z85, prefix);
    assert_int_equal(rollout_file_load(write_tmp(text), &rf, &err), 0);
    unlink(path);
    assert_false(rf->insecure);
    assert_string_equal(rf->nodes[0].public_key.z85, pub.z85);
    assert_string_equal(rf->public_key.z85, pub.z85); /* derived from the secret key */
    rollout_file_destroy(&rf);
    /* A secret key others may read is refused. */
    char key_path[64];
    snprintf(key_path, sizeof(key_path), "%s.key", prefix);
    chmod(key_path, 0644);
    transport_key_t sec;
    assert_int_equal(transport_read_secret(key_path, &sec, &pub, &err), -EPERM);
    assert_non_null(strstr(err.msg, "must not be readable by others"));
    unlink(key_path);
    unlink(pub_path);
}

static void test_oversized_file(void **state)
{
    (void)state;
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '#', n);
    big[n] = '\0';
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    assert_true(rollout_file_load(write_tmp(big), &rf, &err) < 0);
    unlink(path);
    free(big);
    assert_non_null(strstr(err.msg, "more than the limit"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_config_good),       cmocka_unit_test(test_agent_config_nakama),
        cmocka_unit_test(test_agent_config_errors),     cmocka_unit_test(test_agent_config_haproxy),
        cmocka_unit_test(test_agent_config_unreadable), cmocka_unit_test(test_agent_config_pull),
        cmocka_unit_test(test_rollout_file_url),        cmocka_unit_test(test_rollout_file),
        cmocka_unit_test(test_rollout_strategy),        cmocka_unit_test(test_security_keys),
        cmocka_unit_test(test_oversized_file),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
