/* Unit tests for the one decision plan and rollout take from a node's Hello
 * (coordinator/rollout/verdict.c): an agent of another node, a busy service in the agent's own
 * words, a rollout of this very id to resume, a node to roll, one on the target already, a version
 * refused, a failed Hello; and what the agent's pre-flight will say of another rollout's
 * record (step_decide()'s words, word for word). verdicts.sh runs plan and rollout against real
 * agents for the same. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "run.h"
#include "verdict.h"
#include "version.h"

struct fixture {
    rollout_file_t rf;
    struct rollout_opts opts;
    rollout_node_t def;
    node_t nd;
    struct run run;
    Baton__ServiceInfo svc;
    Baton__ServiceInfo *svcs[1];
    Baton__Hello hello;
    Baton__Result result;
    Baton__Envelope env;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->rf.service = "gamesrv";
    f->rf.version = "1.1.0";
    f->def = (rollout_node_t){.name = "node1", .endpoint = "tcp://10.0.0.1:7600"};
    f->nd = (node_t){.index = 0, .def = &f->def};
    f->run = (struct run){.rf = &f->rf, .opts = &f->opts, .nodes = &f->nd, .n = 1};
    snprintf(f->run.id, sizeof(f->run.id), "r-new");
    baton__service_info__init(&f->svc);
    f->svc.name = "gamesrv";
    f->svc.unit = "gamesrv.service";
    f->svc.version = "1.0.0";
    f->svc.active_state = "active";
    f->svc.rollout_id = "r-old";
    f->svc.step = "committed";
    f->svcs[0] = &f->svc;
    baton__hello__init(&f->hello);
    f->hello.agent_version = BATON_VERSION;
    f->hello.node_name = "node1";
    f->hello.n_services = 1;
    f->hello.services = f->svcs;
    baton__result__init(&f->result);
    f->result.status = BATON__STATUS__STATUS_OK;
    f->result.hello = &f->hello;
    baton__envelope__init(&f->env);
    f->env.result = &f->result;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free(f->nd.from_version);
    free(f->nd.database_id);
    free(f);
    return 0;
}

/* The verdict of f's Hello; *ret_why the caller's. */
static verdict_t judge(struct fixture *f, char **ret_why, const Baton__ServiceInfo **ret_svc)
{
    baton_err_t err = {0};
    return node_verdict(&f->run, &f->nd, 0, &f->env, &err, ret_svc, ret_why, NULL);
}

static void test_to_roll_and_on_target(void **state)
{
    struct fixture *f = *state;
    const Baton__ServiceInfo *svc = NULL;
    char *why = NULL;
    f->svc.database_id = "7300/game";
    assert_int_equal(judge(f, &why, &svc), VERDICT_GO);
    assert_null(why);
    assert_ptr_equal(svc, &f->svc);
    assert_int_equal(f->nd.state, NODE_NEEDS);
    assert_string_equal(f->nd.from_version, "1.0.0");
    assert_string_equal(f->nd.database_id, "7300/game");
    assert_false(f->nd.downgrade);

    f->svc.version = "1.1.0";
    assert_int_equal(judge(f, &why, &svc), VERDICT_GO);
    assert_int_equal(f->nd.state, NODE_SKIP);
    /* On the target but stopped: rolled again, not skipped. */
    f->svc.active_state = "inactive";
    assert_int_equal(judge(f, &why, &svc), VERDICT_GO);
    assert_int_equal(f->nd.state, NODE_NEEDS);
}

/* An artifact by URL: an agent that does not say it pulls (an older one would read the Stage
 * as a chunk) is refused before anything is staged; one that does rolls; one on the target
 * needs nothing. */
static void test_pull_feature(void **state)
{
    struct fixture *f = *state;
    const Baton__ServiceInfo *svc = NULL;
    char *why = NULL;
    f->run.url = "https://mirror.example/gamesrv-1.1.0";
    f->hello.agent_version = "0.2.0";
    assert_int_equal(judge(f, &why, &svc), VERDICT_REFUSED);
    assert_string_equal(why, "its agent (0.2.0) cannot pull artifacts by URL: upgrade it, or give "
                             "the artifact as a file");
    assert_int_equal(f->nd.state, NODE_BAD);
    free(why);
    why = NULL;
    f->hello.agent_version = BATON_VERSION;
    char *features[] = {"pull"};
    f->hello.n_features = 1;
    f->hello.features = features;
    assert_int_equal(judge(f, &why, &svc), VERDICT_GO);
    assert_null(why);
    assert_int_equal(f->nd.state, NODE_NEEDS);
    f->hello.n_features = 0;
    f->svc.version = "1.1.0";
    assert_int_equal(judge(f, &why, &svc), VERDICT_GO);
    assert_int_equal(f->nd.state, NODE_SKIP);
}

static void test_refusals(void **state)
{
    struct fixture *f = *state;
    const Baton__ServiceInfo *svc = NULL;
    char *why = NULL;

    f->hello.node_name = "node2";
    assert_int_equal(judge(f, &why, &svc), VERDICT_REFUSED);
    assert_string_equal(why, "the agent at tcp://10.0.0.1:7600 is node 'node2', not 'node1'");
    assert_null(svc);
    assert_int_equal(f->nd.state, NODE_BAD);
    free(why);
    f->hello.node_name = "node1";

    /* Busy: step_decide()'s words, then how long and what it is doing. */
    f->svc.running = true;
    f->svc.step = "migrate";
    f->svc.running_ms = 12400;
    f->svc.progress = "applying 0003_inventory";
    assert_int_equal(judge(f, &why, &svc), VERDICT_REFUSED);
    assert_string_equal(why,
                        "busy: rollout r-old is running migrate (12 s): applying 0003_inventory");
    assert_ptr_equal(svc, &f->svc);
    free(why);
    f->svc.progress = "";
    assert_int_equal(judge(f, &why, &svc), VERDICT_REFUSED);
    assert_string_equal(why, "busy: rollout r-old is running migrate (12 s)");
    free(why);
    /* Busy, and its version judged too: the database known (for the plan's rehearsal), a move
     * refused as the plan's second reason. */
    Baton__VersionRecord old = BATON__VERSION_RECORD__INIT, *old_history[] = {&old};
    old.version = "0.9.0";
    f->svc.n_history = 1;
    f->svc.history = old_history;
    f->svc.version = "1.2.0";
    f->svc.highest_version = "1.2.0";
    f->svc.database_id = "7300/game";
    char *also = NULL;
    baton_err_t no_err = {0};
    assert_int_equal(node_verdict(&f->run, &f->nd, 0, &f->env, &no_err, &svc, &why, &also),
                     VERDICT_REFUSED);
    assert_string_equal(why, "busy: rollout r-old is running migrate (12 s)");
    assert_non_null(also);
    assert_non_null(strstr(also, "no history of 1.1.0"));
    assert_string_equal(f->nd.database_id, "7300/game");
    assert_int_equal(f->nd.state, NODE_BAD);
    free(why);
    free(also);
    f->svc.n_history = 0;
    f->svc.history = NULL;
    f->svc.running = false;
    f->svc.step = "committed";

    /* A downgrade without --allow-downgrade: versions.c's reason, as plan and rollout say it. */
    Baton__VersionRecord ran = BATON__VERSION_RECORD__INIT, *history[] = {&ran};
    ran.version = "1.1.0";
    f->svc.n_history = 1;
    f->svc.history = history;
    f->svc.version = "1.2.0";
    f->svc.highest_version = "1.2.0";
    assert_int_equal(judge(f, &why, &svc), VERDICT_REFUSED);
    assert_string_equal(why, "1.2.0 -> 1.1.0 is a minor version down: it runs the newer "
                             "binary's migrate down first; say --allow-downgrade");
    assert_int_equal(f->nd.state, NODE_BAD);
    free(why);
    f->opts.allow_downgrade = true;
    assert_int_equal(judge(f, &why, &svc), VERDICT_GO);
    assert_int_equal(f->nd.state, NODE_NEEDS);
    assert_true(f->nd.downgrade);
    f->opts.allow_downgrade = false;

    /* The Hello itself failed: its error, said as it came. */
    baton_err_t err = {0};
    baton_err_set(&err, -EIO, "tcp://10.0.0.1:7600: connection refused");
    assert_int_equal(node_verdict(&f->run, &f->nd, -EIO, NULL, &err, &svc, &why, NULL),
                     VERDICT_REFUSED);
    assert_string_equal(why, "tcp://10.0.0.1:7600: connection refused");
    assert_null(svc);
    free(why);
}

static void test_resume(void **state)
{
    struct fixture *f = *state;
    const Baton__ServiceInfo *svc = NULL;
    char *why = NULL;
    journal_record_t record = {0};
    f->svc.rollout_id = "r-new";
    f->svc.step = "migrate";
    /* A new rollout that happens to share the id is no resume: the record's rule decides. */
    assert_int_equal(judge(f, &why, &svc), VERDICT_GO);
    f->run.record = &record;
    assert_int_equal(judge(f, &why, &svc), VERDICT_RESUME);
    assert_null(why);
    assert_ptr_equal(svc, &f->svc);
}

/* What the agent's pre-flight will refuse of another rollout's record, in its words. */
static void test_record_refusal(void **state)
{
    struct fixture *f = *state;
    char *why;
    f->svc.step = "migrate";
    f->svc.in_progress = true;
    assert_non_null(why = node_record_refusal(&f->run, &f->svc));
    assert_string_equal(why, "in rollout r-old (interrupted in migrate); roll it back first");
    free(why);
    f->svc.in_progress = false;
    f->svc.step = "dump";
    assert_non_null(why = node_record_refusal(&f->run, &f->svc));
    assert_string_equal(why, "in rollout r-old (at dump); roll it back first");
    free(why);
    f->svc.step = "preflight";
    assert_non_null(why = node_record_refusal(&f->run, &f->svc));
    assert_string_equal(
        why, "reserved by rollout r-old (its pre-flight passed); baton rollback releases it");
    free(why);
    f->svc.step = "preflight";
    f->svc.in_progress = true;
    assert_non_null(why = node_record_refusal(&f->run, &f->svc));
    assert_non_null(strstr(why, "its pre-flight was interrupted"));
    free(why);
    f->svc.in_progress = false;
    /* Settled: a new rollout may take it. */
    const char *settled[] = {"committed", "rolled_back", ""};
    for (size_t i = 0; i < sizeof(settled) / sizeof(*settled); i++) {
        f->svc.step = (char *)settled[i];
        assert_null(node_record_refusal(&f->run, &f->svc));
    }
    f->svc.rollout_id = "";
    f->svc.step = "";
    assert_null(node_record_refusal(&f->run, &f->svc));
    /* A state file the agent could not read: no rollout to name; its pre-flight says why. */
    f->svc.step = "state file /var/lib/baton/gamesrv.json: not JSON";
    assert_null(node_record_refusal(&f->run, &f->svc));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_to_roll_and_on_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_feature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_refusal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
