/* Unit tests for strategy: the batch arithmetic an operator reads in the plan, amounts as the
 * rollout file writes them, and the journal's replay that `baton resume` relies on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "journal.h"
#include "strategy.h"

static void test_amount_parse(void **state)
{
    (void)state;
    amount_t a;
    assert_int_equal(amount_parse("3", 1, &a), 0);
    assert_false(a.percent);
    assert_int_equal(a.value, 3);
    assert_int_equal(amount_parse("25%", 1, &a), 0);
    assert_true(a.percent);
    assert_int_equal(a.value, 25);
    assert_int_equal(amount_parse("0", 0, &a), 0);       /* max_failures may be 0 */
    assert_int_equal(amount_parse("0", 1, &a), -EINVAL); /* a batch may not */
    assert_int_equal(amount_parse("0%", 1, &a), -EINVAL);
    assert_int_equal(amount_parse("101%", 1, &a), -EINVAL);
    assert_int_equal(amount_parse("", 1, &a), -EINVAL);
    assert_int_equal(amount_parse("%", 1, &a), -EINVAL);
    assert_int_equal(amount_parse("-1", 0, &a), -EINVAL);
    assert_int_equal(amount_parse("2x", 1, &a), -EINVAL);
    assert_int_equal(amount_parse("1.5", 1, &a), -EINVAL);
    assert_int_equal(amount_parse("99999999", 1, &a), -EINVAL); /* no overflow */
}

static void test_amount_resolve(void **state)
{
    (void)state;
    amount_t pct = {.percent = true, .value = 25}, two = {.percent = false, .value = 2};
    assert_int_equal(amount_resolve(pct, 10, 1), 2); /* 2.5 rounds down */
    assert_int_equal(amount_resolve(pct, 3, 1), 1);  /* 0.75: at least 1 */
    assert_int_equal(amount_resolve(pct, 3, 0), 0);  /* max_failures: 0 is allowed */
    assert_int_equal(amount_resolve(two, 1, 1), 1);  /* never more than there are */
    assert_int_equal(amount_resolve(two, 1000, 1), 2);
}

static size_t batches(const char *const *spec, size_t n_spec, size_t total, size_t *sizes)
{
    strategy_t s;
    strategy_init(&s);
    s.n_batches = n_spec;
    for (size_t i = 0; i < n_spec; i++)
        assert_int_equal(amount_parse(spec[i], 1, &s.batches[i]), 0);
    return strategy_batches(&s, total, sizes);
}

static void test_batches(void **state)
{
    (void)state;
    size_t sizes[1000];
    strategy_t s;
    strategy_init(&s); /* default: one at a time */
    assert_int_equal(strategy_batches(&s, 3, sizes), 3);
    assert_int_equal(sizes[0] + sizes[1] + sizes[2], 3);

    /* [1, 2]: the canary alone, then pairs; the last entry repeats, the rest is smaller. */
    const char *const canary_pairs[] = {"1", "2"};
    assert_int_equal(batches(canary_pairs, 2, 5, sizes), 3);
    assert_int_equal(sizes[0], 1);
    assert_int_equal(sizes[1], 2);
    assert_int_equal(sizes[2], 2);
    assert_int_equal(batches(canary_pairs, 2, 4, sizes), 3);
    assert_int_equal(sizes[2], 1);

    /* [1, 2, "25%"] of 10: 1, 2, then 2 (25% of 10, rounded down) until all are placed, the
     * last batch holding what is left. */
    const char *const mixed[] = {"1", "2", "25%"};
    assert_int_equal(batches(mixed, 3, 10, sizes), 6);
    size_t want[] = {1, 2, 2, 2, 2, 1}, sum = 0;
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(sizes[i], want[i]);
        sum += sizes[i];
    }
    assert_int_equal(sum, 10);

    /* A percentage below one node still moves: at least one node per batch. */
    const char *const tiny[] = {"10%"};
    assert_int_equal(batches(tiny, 1, 3, sizes), 3);
    /* A batch larger than the fleet: one batch. */
    const char *const big[] = {"50"};
    assert_int_equal(batches(big, 1, 3, sizes), 1);
    assert_int_equal(sizes[0], 3);
    /* Nothing to do: no batch. */
    assert_int_equal(batches(big, 1, 0, sizes), 0);
    /* 1,000 nodes in 25% batches: four batches of 250. */
    const char *const quarter[] = {"25%"};
    assert_int_equal(batches(quarter, 1, 1000, sizes), 4);
    assert_int_equal(sizes[3], 250);
}

static void test_pauses_and_policy(void **state)
{
    (void)state;
    strategy_t s;
    strategy_init(&s);
    assert_false(strategy_pauses_after(&s, 1));
    s.n_pauses = 2;
    s.pause_after[0] = 1;
    s.pause_after[1] = 3;
    assert_true(strategy_pauses_after(&s, 1));
    assert_false(strategy_pauses_after(&s, 2));
    assert_true(strategy_pauses_after(&s, 3));
    on_failure_t f;
    assert_int_equal(on_failure_parse("rollback-all", &f), 0);
    assert_int_equal(f, ON_FAILURE_ROLLBACK_ALL);
    assert_string_equal(on_failure_str(f), "rollback-all");
    assert_int_equal(on_failure_parse("continue", &f), 0);
    assert_int_equal(on_failure_parse("Halt", &f), -EINVAL);
    assert_int_equal(on_failure_parse(NULL, &f), -EINVAL);
}

static void test_journal_replay(void **state)
{
    (void)state;
    journal_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.exit = -1;
    assert_int_equal(journal_replay_line(&rec, "{\"event\":\"start\",\"file\":\"/r.yml\","
                                               "\"sha256\":\"ab\"}"),
                     0);
    assert_int_equal(journal_replay_line(&rec, "{\"event\":\"plan\",\"batches\":[[\"n1\"],"
                                               "[\"n2\",\"n3\"]]}"),
                     0);
    assert_int_equal(journal_replay_line(&rec, "{\"event\":\"paused\",\"batch\":1}"), 0);
    assert_string_equal(rec.file, "/r.yml");
    assert_string_equal(rec.sha256, "ab");
    assert_int_equal(json_array_size(rec.plan), 2);
    assert_true(rec.waiting);
    assert_int_equal(rec.n_pauses_reached, 1);
    assert_int_equal(rec.pauses_reached[0], 1);
    assert_int_equal(rec.exit, -1); /* no summary: the coordinator died, or still runs */

    /* A resume appends a second start and a second plan: the first ones stand. */
    assert_int_equal(journal_replay_line(&rec, "{\"event\":\"continued\",\"batch\":1}"), 0);
    assert_false(rec.waiting);
    assert_int_equal(journal_replay_line(&rec, "{\"event\":\"start\",\"file\":\"/other.yml\","
                                               "\"sha256\":\"cd\"}"),
                     0);
    assert_int_equal(journal_replay_line(&rec, "{\"event\":\"plan\",\"batches\":[[\"n3\"]]}"), 0);
    assert_string_equal(rec.file, "/r.yml");
    assert_int_equal(json_array_size(rec.plan), 2);

    assert_int_equal(journal_replay_line(&rec, "{\"event\":\"summary\",\"exit\":3,"
                                               "\"message\":\"FAILED on n2\"}"),
                     0);
    assert_int_equal(rec.exit, 3);
    assert_string_equal(rec.outcome, "FAILED on n2");
    /* A torn line is reported, and changes nothing. */
    assert_int_equal(journal_replay_line(&rec, "{\"event\":\"summ"), -EBADMSG);
    assert_int_equal(journal_replay_line(&rec, "[1,2]"), -EBADMSG);
    assert_int_equal(rec.exit, 3);
    journal_record_clear(&rec);
    assert_null(rec.file);
    assert_int_equal(rec.exit, -1);
}

/* Who dumped and migrated each database, for a resumed rollout's groups. */
static void test_journal_groups(void **state)
{
    (void)state;
    journal_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.exit = -1;
    const char *lines[] = {
        "{\"event\":\"start\",\"file\":\"/r.yml\",\"sha256\":\"ab\"}",
        /* a failed dump names nobody */
        "{\"event\":\"step\",\"node\":\"n1\",\"step\":\"dump\",\"ok\":false,"
        "\"database\":\"7/game\",\"shared\":false}",
        "{\"event\":\"step\",\"node\":\"n1\",\"step\":\"dump\",\"ok\":true,"
        "\"database\":\"7/game\",\"shared\":false}",
        "{\"event\":\"step\",\"node\":\"n1\",\"step\":\"migrate\",\"ok\":true,"
        "\"database\":\"7/game\",\"shared\":false,\"ids\":[\"0001\",\"0002\"]}",
        /* a shared node's steps change nothing of the group */
        "{\"event\":\"step\",\"node\":\"n2\",\"step\":\"dump\",\"ok\":true,"
        "\"database\":\"7/game\",\"shared\":true}",
        "{\"event\":\"step\",\"node\":\"n2\",\"step\":\"migrate\",\"ok\":true,"
        "\"database\":\"7/game\",\"shared\":true,\"ids\":[\"0001\",\"0002\"]}",
        /* another database, its own migrator */
        "{\"event\":\"step\",\"node\":\"n3\",\"step\":\"dump\",\"ok\":true,"
        "\"database\":\"9/game\",\"shared\":false}",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        assert_int_equal(journal_replay_line(&rec, lines[i]), 0);
    json_t *g = json_object_get(rec.groups, "7/game");
    assert_string_equal(json_string_value(json_object_get(g, "migrator")), "n1");
    assert_int_equal(json_array_size(json_object_get(g, "ids")), 2);
    g = json_object_get(rec.groups, "9/game");
    assert_string_equal(json_string_value(json_object_get(g, "migrator")), "n3");
    assert_null(json_object_get(g, "ids"));
    /* n1 rolled back: its schema is undone, the group has no migrator any more. */
    assert_int_equal(journal_replay_line(&rec, "{\"event\":\"rollback\",\"node\":\"n1\","
                                               "\"step\":\"rollback\",\"ok\":true}"),
                     0);
    assert_null(json_object_get(rec.groups, "7/game"));
    assert_non_null(json_object_get(rec.groups, "9/game"));
    /* a failed rollback of n3 keeps it */
    assert_int_equal(journal_replay_line(&rec, "{\"event\":\"rollback\",\"node\":\"n3\","
                                               "\"step\":\"rollback\",\"ok\":false}"),
                     0);
    assert_non_null(json_object_get(rec.groups, "9/game"));
    journal_record_clear(&rec);
    assert_null(rec.groups);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amount_parse),   cmocka_unit_test(test_amount_resolve),
        cmocka_unit_test(test_batches),        cmocka_unit_test(test_pauses_and_policy),
        cmocka_unit_test(test_journal_replay), cmocka_unit_test(test_journal_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
