/* Unit tests for notifications (coordinator/events/notify.c): which events each `on:` kind takes,
 * the URLs a target may have, and the Slack form's sentences. The sending itself is tested against
 * real receivers by tests/cluster/notify.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "http_post.h"
#include "notify.h"

static unsigned kind(const char *json)
{
    json_t *e = json_loads(json, 0, NULL);
    assert_non_null(e);
    unsigned k = notify_kind_of(e);
    json_decref(e);
    return k;
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(kind("{\"event\":\"start\"}"), NOTIFY_STARTED);
    assert_int_equal(kind("{\"event\":\"paused\"}"), NOTIFY_PAUSED);
    assert_int_equal(kind("{\"event\":\"step\",\"ok\":false}"), NOTIFY_NODE_FAILED);
    assert_int_equal(kind("{\"event\":\"step\",\"ok\":true}"), 0); /* every step: no */
    assert_int_equal(kind("{\"event\":\"rollback\",\"ok\":false}"), NOTIFY_ROLLED_BACK);
    assert_int_equal(kind("{\"event\":\"halt\"}"), NOTIFY_HALTED);
    assert_int_equal(kind("{\"event\":\"summary\"}"), NOTIFY_FINISHED);
    assert_int_equal(kind("{\"event\":\"progress\"}"), 0);
    assert_int_equal(kind("{\"event\":\"check\",\"ok\":false}"), 0);
    assert_int_equal(kind("{}"), 0);
    /* Every name the message lists is a kind, and every kind has a name. */
    char names[128];
    snprintf(names, sizeof(names), "%s", notify_kind_names());
    unsigned all = 0;
    for (char *save = NULL, *w = strtok_r(names, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
        assert_int_not_equal(notify_kind_by_name(w), 0);
        all |= notify_kind_by_name(w);
    }
    assert_int_equal(all, NOTIFY_ALL);
    assert_int_equal(notify_kind_by_name("deployed"), 0);
    assert_int_equal(notify_kind_by_name(NULL), 0);
}

static void test_urls(void **state)
{
    (void)state;
    assert_null(http_post_url_problem("https://hooks.slack.com/services/T0/B0/x"));
    assert_null(http_post_url_problem("http://127.0.0.1:8080/baton?token=abc"));
    assert_non_null(http_post_url_problem("ftp://example.org/x"));
    assert_non_null(http_post_url_problem("file:///etc/passwd"));
    assert_non_null(http_post_url_problem("hooks.example/baton"));
    assert_non_null(http_post_url_problem("http://a b"));
    assert_non_null(http_post_url_problem("http://a\nHost: evil"));
    char *lng = malloc(HTTP_POST_URL_MAX + 16);
    assert_non_null(lng);
    strcpy(lng, "https://");
    memset(lng + 8, 'a', HTTP_POST_URL_MAX);
    lng[HTTP_POST_URL_MAX + 8] = '\0';
    assert_non_null(http_post_url_problem(lng));
    free(lng);
}

static void sentence_is(const char *json, const char *want)
{
    json_t *e = json_loads(json, 0, NULL);
    assert_non_null(e);
    char *s = notify_sentence(e, "gamesrv");
    json_decref(e);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_sentences(void **state)
{
    (void)state;
    sentence_is(
        "{\"event\":\"start\",\"rollout\":\"r1\",\"version\":\"1.1.0\",\"nodes\":[\"a\",\"b\"],"
        "\"resumed\":false}",
        "baton: rollout r1 started: gamesrv -> 1.1.0 on 2 nodes");
    sentence_is("{\"event\":\"start\",\"rollout\":\"r1\",\"version\":\"1.1.0\",\"nodes\":[\"a\"],"
                "\"resumed\":true}",
                "baton: rollout r1 resumed: gamesrv -> 1.1.0 on 1 nodes");
    sentence_is(
        "{\"event\":\"paused\",\"rollout\":\"r1\",\"batch\":1,\"of\":3,\"message\":\"go on: "
        "baton resume r1\"}",
        "baton: rollout r1 of gamesrv paused after batch 1 of 3: go on: baton resume r1");
    sentence_is("{\"event\":\"step\",\"rollout\":\"r1\",\"node\":\"node1\",\"step\":\"verify\","
                "\"ok\":false,\"message\":\"not healthy\"}",
                "baton: rollout r1 of gamesrv: node1 FAILED at verify: not healthy");
    sentence_is("{\"event\":\"rollback\",\"rollout\":\"r1\",\"node\":\"node1\",\"ok\":true,"
                "\"message\":\"back on 1.0.0\"}",
                "baton: rollout r1 of gamesrv: node1 rolled back: back on 1.0.0");
    sentence_is("{\"event\":\"rollback\",\"rollout\":\"r1\",\"node\":\"node1\",\"ok\":false,"
                "\"message\":\"restore failed\"}",
                "baton: rollout r1 of gamesrv: node1 ROLLBACK FAILED (needs attention): restore "
                "failed");
    sentence_is("{\"event\":\"halt\",\"rollout\":\"r1\",\"message\":\"node1 failed\"}",
                "baton: rollout r1 of gamesrv halted: node1 failed");
    sentence_is("{\"event\":\"summary\",\"rollout\":\"r1\",\"exit\":3,\"message\":\"FAILED on "
                "node1\"}",
                "baton: rollout r1 of gamesrv ended (exit 3): FAILED on node1");
    json_t *e = json_loads("{\"event\":\"progress\"}", 0, NULL);
    assert_null(notify_sentence(e, "gamesrv"));
    json_decref(e);
}

static void test_slack_escape(void **state)
{
    (void)state;
    char *s = notify_slack_escape("<!channel> a&b <http://x|y> ok");
    assert_non_null(s);
    assert_string_equal(s, "&lt;!channel&gt; a&amp;b &lt;http://x|y&gt; ok");
    free(s);
    s = notify_slack_escape("");
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_sentences),
        cmocka_unit_test(test_slack_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
