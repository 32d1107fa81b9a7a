/* Unit tests for webhook gates (coordinator/gates/webhook.c) as a rollout file names them: the
 * names `at:` takes, and before_commit refused at load without on_failure: rollback-all, by file,
 * line and key. The gates themselves are asked of real receivers by tests/cluster/webhook.sh. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rollout_file.h"
#include "rollout_tail.h"
#include "webhook.h"

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(webhook_at_by_name("before_rollout"), WEBHOOK_BEFORE_ROLLOUT);
    assert_int_equal(webhook_at_by_name("before_batch"), WEBHOOK_BEFORE_BATCH);
    assert_int_equal(webhook_at_by_name("before_commit"), WEBHOOK_BEFORE_COMMIT);
    assert_int_equal(webhook_at_by_name("after_party"), 0);
    assert_int_equal(webhook_at_by_name(NULL), 0);
    /* Every name the message lists is a gate whose name is that name, and they are all. */
    char names[128];
    snprintf(names, sizeof(names), "%s", webhook_at_names());
    unsigned all = 0;
    for (char *save = NULL, *w = strtok_r(names, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
        unsigned bit = webhook_at_by_name(w);
        assert_int_not_equal(bit, 0);
        assert_string_equal(webhook_at_name(bit), w);
        all |= bit;
    }
    assert_int_equal(all, WEBHOOK_BEFORE_ROLLOUT | WEBHOOK_BEFORE_BATCH | WEBHOOK_BEFORE_COMMIT);
}

static void test_before_commit(void **state)
{
    (void)state;
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    if (rollout_tail_load("on_failure: rollback-all\n"
                          "webhooks:\n"
                          "  - url: http://127.0.0.1:9/gate\n"
                          "    at: [before_batch, before_commit]\n"
                          "  - url: http://127.0.0.1:9/other\n"
                          "    at: before_commit\n",
                          &rf, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(rf->n_webhooks, 2);
    assert_int_equal(rf->webhooks[0].at, WEBHOOK_BEFORE_BATCH | WEBHOOK_BEFORE_COMMIT);
    assert_int_equal(rf->webhooks[1].at, WEBHOOK_BEFORE_COMMIT);
    rollout_file_destroy(&rf);
    /* All three at once. */
    assert_int_equal(rollout_tail_load("on_failure: rollback-all\n"
                                       "webhooks:\n"
                                       "  - url: http://127.0.0.1:9/gate\n"
                                       "    at: [before_rollout, before_batch, before_commit]\n",
                                       &rf, &err),
                     0);
    assert_int_equal(rf->webhooks[0].at,
                     WEBHOOK_BEFORE_ROLLOUT | WEBHOOK_BEFORE_BATCH | WEBHOOK_BEFORE_COMMIT);
    rollout_file_destroy(&rf);

    /* Elsewhere each node commits right after its verify: refused, naming the webhook's at:. */
    static const struct {
        const char *tail, *want;
    } bad[] = {
        {"webhooks:\n  - url: http://127.0.0.1:9/gate\n    at: before_commit\n",
         "r.yml:10: webhooks[0].at: before_commit needs on_failure: rollback-all: with halt, each "
         "node commits as soon as it verifies"},
        {"on_failure: continue\n"
         "webhooks:\n"
         "  - url: http://127.0.0.1:9/gate\n"
         "  - url: http://127.0.0.1:9/gate\n"
         "    at: [before_batch, before_commit]\n",
         "r.yml:12: webhooks[1].at: before_commit needs on_failure: rollback-all: with continue, "
         "each node commits as soon as it verifies"},
        {"on_failure: rollback-all\nwebhooks:\n  - url: http://127.0.0.1:9/gate\n    at: "
         "[before_landing]\n",
         "at[]: 'before_landing' is not one of before_rollout, before_batch, before_commit"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rollout_tail_load(bad[i].tail, &rf, &err) == 0)
            fail_msg("%s: should be refused", bad[i].tail);
        assert_int_equal(err.code, -EINVAL);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("%s: got '%s', want '%s'", bad[i].tail, err.msg, bad[i].want);
        assert_null(rf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_before_commit),
    };
    return cmocka_run_group_tests(tests, rollout_tail_setup, rollout_tail_teardown);
}
