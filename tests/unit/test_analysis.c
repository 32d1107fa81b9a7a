/* Unit tests for the analysis' logic (coordinator/gates/prom.c, the `analysis:` part of
 * coordinator/rollout/rollout_file.c): the success condition, a query's {{words}}, what an answer
 * of Prometheus' is worth (one number, no number, an error; hostile bodies), and the rollout file's
 * errors by file, line and key. Real queries against Debian's Prometheus scraping real nodes are
 * tests/cluster/analysis.sh. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "prom.h"
#include "rollout_file.h"
#include "rollout_tail.h"

static void test_condition(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double below, at, above; /* is each of bound-1, bound, bound+1 met? 1/0 */
        double bound;
    } good[] = {
        {"result < 0.01", 1, 0, 0, 0.01}, {"result<=5", 1, 1, 0, 5},
        {" result >  -2 ", 0, 0, 1, -2},  {"result >= 1e3", 0, 1, 1, 1000},
        {"result == 0", 0, 1, 0, 0},      {"result != 0", 1, 0, 1, 0},
    };
    char why[128];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        prom_condition_t c;
        if (prom_condition_parse(good[i].text, &c, why, sizeof(why)) < 0)
            fail_msg("'%s': %s", good[i].text, why);
        assert_true(c.bound == good[i].bound);
        assert_int_equal(prom_condition_met(&c, good[i].bound - 1), good[i].below);
        assert_int_equal(prom_condition_met(&c, good[i].bound), good[i].at);
        assert_int_equal(prom_condition_met(&c, good[i].bound + 1), good[i].above);
    }
    /* <= is not < followed by "=5". */
    prom_condition_t c;
    assert_int_equal(prom_condition_parse("result <= 5", &c, why, sizeof(why)), 0);
    assert_int_equal(c.cmp, PROM_LE);
    static const char *const bad[] = {
        "",
        "< 0.01",
        "result",
        "result < ",
        "result < x",
        "result < 1 2",
        "result => 1",
        "result < nan",
        "result < inf",
        "errors < 1",
        "result ~ 1",
        "result < 0x",
        "result < 1e999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (prom_condition_parse(bad[i], &c, why, sizeof(why)) == 0)
            fail_msg("'%s' should be refused", bad[i]);
    /* NaN meets no condition (a measurement never is one: prom_answer_value says no number). */
    assert_int_equal(prom_condition_parse("result != 0", &c, why, sizeof(why)), 0);
    char s[32];
    prom_condition_str(&c, s, sizeof(s));
    assert_string_equal(s, "!= 0");
}

static void test_expand(void **state)
{
    (void)state;
    prom_vars_t v = {"node1", "10.0.0.1", "1.1.0", "1.0.0", NULL, NULL, NULL};
    char why[160], *q = NULL;
    assert_int_equal(prom_expand("rate(x{node=\"{{node}}\",instance=~\"{{ address }}:.*\"}[1m]) "
                                 "{{version}}/{{from_version}}",
                                 &v, &q, why, sizeof(why)),
                     0);
    assert_string_equal(q, "rate(x{node=\"node1\",instance=~\"10.0.0.1:.*\"}[1m]) 1.1.0/1.0.0");
    free(q);
    /* Braces of PromQL's own stay as they are; a lone { too. */
    assert_int_equal(prom_expand("sum(x{a=\"b\"}) > {", &v, &q, why, sizeof(why)), 0);
    assert_string_equal(q, "sum(x{a=\"b\"}) > {");
    free(q);
    /* A bake's words. */
    prom_vars_t b = {NULL, NULL, "1.1.0", NULL, "node1|node2", "10\\.0\\.0\\.1|10\\.0\\.0\\.2",
                     "2"};
    assert_int_equal(prom_expand("x{node=~\"{{nodes}}\",i=~\"{{addresses}}\"} {{batch}}", &b, &q,
                                 why, sizeof(why)),
                     0);
    assert_string_equal(q, "x{node=~\"node1|node2\",i=~\"10\\.0\\.0\\.1|10\\.0\\.0\\.2\"} 2");
    free(q);
    /* Checked at load: the words of the check's scope only. */
    assert_int_equal(prom_expand("{{node}}", &prom_vars_node_scope, &q, why, sizeof(why)), 0);
    assert_string_equal(q, "");
    free(q);
    assert_int_equal(prom_expand("{{nodes}}", &prom_vars_batch_scope, &q, why, sizeof(why)), 0);
    free(q);
    assert_int_equal(prom_expand("x{{nodes}}", &v, &q, why, sizeof(why)), -1);
    assert_null(q);
    assert_non_null(strstr(why, "{{nodes}} means nothing in a node's check"));
    assert_int_equal(prom_expand("x{{node}}", &prom_vars_batch_scope, &q, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "{{node}} means nothing in a bake"));
    assert_int_equal(prom_expand("x{{nodez}}", &v, &q, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "{{nodez}} is not a word it knows"));
    assert_int_equal(prom_expand("x{{node", &v, &q, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "without its }}"));
    /* Longer than PROM_QUERY_MAX once expanded: refused, never cut. */
    char *long_node = malloc(PROM_QUERY_MAX);
    memset(long_node, 'n', PROM_QUERY_MAX - 1);
    long_node[PROM_QUERY_MAX - 1] = '\0';
    prom_vars_t lv = {long_node, "", "", "", NULL, NULL, NULL};
    assert_int_equal(prom_expand("{{node}}", &lv, &q, why, sizeof(why)), 0);
    free(q);
    assert_int_equal(prom_expand("{{node}}xx", &lv, &q, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "longer than"));
    free(long_node);
}

static void test_endpoint_host(void **state)
{
    (void)state;
    char h[64];
    prom_endpoint_host("tcp://10.213.0.11:7400", h, sizeof(h));
    assert_string_equal(h, "10.213.0.11");
    prom_endpoint_host("tcp://node1.example:7400", h, sizeof(h));
    assert_string_equal(h, "node1.example");
    prom_endpoint_host("tcp://[fd00::1]:7400", h, sizeof(h));
    assert_string_equal(h, "fd00::1");
}

static void test_answer(void **state)
{
    (void)state;
    char why[300];
    double x = -1;
    assert_int_equal(
        prom_answer_value("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                          "\"result\":[{\"metric\":{\"node\":\"n1\"},\"value\":"
                          "[1733200000.1,\"0.25\"]}]}}",
                          &x, why, sizeof(why)),
        0);
    assert_true(x == 0.25);
    assert_int_equal(
        prom_answer_value("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\","
                          "\"result\":[1733200000.1,\"-3.5e-2\"]}}",
                          &x, why, sizeof(why)),
        0);
    assert_true(x == -0.035);
    static const struct {
        const char *body;
        int r;
        const char *why;
    } bad[] = {
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}",
         PROM_NO_NUMBER, "no data: the query returned no series"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"
         "\"value\":[1,\"NaN\"]}]}}",
         PROM_NO_NUMBER, "NaN"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"
         "\"value\":[1,\"1\"]},{\"metric\":{},\"value\":[1,\"2\"]}]}}",
         PROM_NO_NUMBER, "returned 2 series, not one number"},
        /* ±Inf is no measure (x/0); -Inf would pass "result < 0.01". */
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"-Inf\"]}}",
         PROM_NO_NUMBER, "-Inf"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"+Inf\"]}}",
         PROM_NO_NUMBER, "+Inf"},
        /* Not ASCII: said as '?', so that the message is always an event's UTF-8. */
        {"{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"caf\u00e9 \u2603\"}", -1,
         "Prometheus: bad_data: caf?? ???"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}",
         PROM_NO_NUMBER, "returned a matrix"},
        {"{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"1:5: parse error: "
         "unexpected \\u001b[31m\\n\"}",
         -1, "Prometheus: bad_data: 1:5: parse error: unexpected ?[31m?"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"
         "\"value\":[1,0.5]}]}}",
         -1, "not Prometheus' shape"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"12abc\"]}}",
         -1, "not a number"},
        {"{\"status\":\"success\"}", -1, "no data.resultType"},
        {"<html>502 Bad Gateway</html>", -1, "not Prometheus' JSON"},
        {"", -1, "not Prometheus' JSON"},
        {"{\"status\":\"success\",\"status\":\"error\"}", -1, "not Prometheus' JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = prom_answer_value(bad[i].body, &x, why, sizeof(why));
        if (r != bad[i].r || !strstr(why, bad[i].why))
            fail_msg("%s: got %d '%s', want %d '%s'", bad[i].body, r, why, bad[i].r, bad[i].why);
    }
}

static void test_rollout_file(void **state)
{
    (void)state;
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    if (rollout_tail_load("analysis:\n"
                          "  prometheus: http://10.0.0.5:9090\n"
                          "  checks:\n"
                          "    - name: error-rate\n"
                          "      query: sum(rate(e{node=\"{{node}}\"}[30s]))\n"
                          "      success: result < 0.01\n"
                          "    - name: latency\n"
                          "      query: max(l)\n"
                          "      success: result <= 0.2\n"
                          "      interval: 2s\n"
                          "      count: 5\n"
                          "      failure_limit: 1\n",
                          &rf, &err) < 0)
        fail_msg("%s", err.msg);
    const analysis_t *a = rf->analysis;
    assert_non_null(a);
    assert_int_equal(a->n_checks, 2);
    assert_int_equal(a->timeout_ms, 5000);
    assert_int_equal(a->checks[0].interval_ms, 10000);
    assert_int_equal(a->checks[0].count, 3);
    assert_int_equal(a->checks[0].failure_limit, 0);
    assert_int_equal(a->checks[1].interval_ms, 2000);
    assert_int_equal(a->checks[1].count, 5);
    assert_int_equal(a->checks[1].failure_limit, 1);
    assert_int_equal(a->checks[1].success.cmp, PROM_LE);
    assert_int_equal(analysis_min_ms(a->checks, a->n_checks), 30000);
    rollout_file_destroy(&rf);

    static const struct {
        const char *tail, *want;
    } bad[] = {
        {"analysis:\n  checks: []\n", "r.yml:9: analysis.prometheus: required key missing"},
        {"analysis:\n  prometheus: ftp://x\n  checks: []\n",
         "r.yml:9: analysis.prometheus: must be an http:// or https:// URL"},
        {"analysis:\n  prometheus: http://p:9090\n",
         "r.yml:9: analysis.checks: is required (or bake)"},
        {"analysis:\n  prometheus: http://p:9090\n  bake:\n    - name: a\n      query: x{{node}}\n"
         "      success: result < 1\n",
         "r.yml:12: analysis.bake[0].query: {{node}} means nothing in a bake"},
        {"analysis:\n  prometheus: http://p:9090\n  checks: []\n",
         "r.yml:10: analysis.checks: empty list"},
        {"analysis:\n  prometheus: http://p:9090\n  interval: 5s\n  checks: []\n", "interval"},
        {"analysis:\n  prometheus: http://p:9090\n  checks:\n    - name: a\n      query: x\n"
         "      success: result < 1\n      count: 2\n      failure_limit: 2\n",
         "r.yml:15: analysis.checks[0].failure_limit: must be below count"},
        {"analysis:\n  prometheus: http://p:9090\n  checks:\n    - name: a\n      query: x{{nod}}\n"
         "      success: result < 1\n",
         "r.yml:12: analysis.checks[0].query: {{nod}} is not a word it knows"},
        {"analysis:\n  prometheus: http://p:9090\n  checks:\n    - name: a\n      query: x\n"
         "      success: errors < 1\n",
         "r.yml:13: analysis.checks[0].success: must read \"result OP NUMBER\""},
        {"analysis:\n  prometheus: http://p:9090\n  checks:\n    - name: a\n      query: x\n"
         "      success: result < 1\n    - name: a\n      query: y\n      success: result < 1\n",
         "r.yml:14: analysis.checks[1].name: is the name of an earlier check"},
        {"analysis:\n  prometheus: http://p:9090\n  checks:\n    - name: a b\n      query: x\n"
         "      success: result < 1\n",
         "r.yml:11: analysis.checks[0].name: must be 1-64"},
        {"analysis:\n  prometheus: http://p:9090\n  checks:\n    - name: a\n      query: x\n"
         "      success: result < 1\n      count: 101\n",
         "analysis.checks[0]"},
        {"analysis:\n  prometheus: http://p:9090\n  timeout: 0s\n  checks:\n    - name: a\n"
         "      query: x\n      success: result < 1\n",
         "analysis.timeout"},
        {"progress_deadline: 5s\nanalysis:\n  prometheus: http://p:9090\n  checks:\n    - name: a\n"
         "      query: x\n      success: result < 1\n      interval: 5s\n",
         "r.yml:15: analysis.checks[0].interval: must be shorter than progress_deadline"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rollout_tail_load(bad[i].tail, &rf, &err) == 0)
            fail_msg("%s: should be refused", bad[i].tail);
        if (err.code != -EINVAL && err.code != -ERANGE) /* out of range: a count of 101 */
            fail_msg("%s: code %d", bad[i].tail, err.code);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("%s: got '%s', want '%s'", bad[i].tail, err.msg, bad[i].want);
        assert_null(rf);
    }
    /* Nine checks: more than ANALYSIS_CHECKS_MAX. */
    char tail[2048] = "analysis:\n  prometheus: http://p:9090\n  checks:\n";
    for (int i = 0; i < 9; i++)
        snprintf(tail + strlen(tail), sizeof(tail) - strlen(tail),
                 "    - name: c%d\n      query: x\n      success: result < 1\n", i);
    assert_true(rollout_tail_load(tail, &rf, &err) < 0);
    if (!strstr(err.msg, "analysis.checks"))
        fail_msg("nine checks: %s", err.msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_condition),     cmocka_unit_test(test_expand),
        cmocka_unit_test(test_endpoint_host), cmocka_unit_test(test_answer),
        cmocka_unit_test(test_rollout_file),
    };
    return cmocka_run_group_tests(tests, rollout_tail_setup, rollout_tail_teardown);
}
