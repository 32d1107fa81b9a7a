/* Unit tests for the one step table and step_decide(): every recorded state x every command x
 * the same, another and no rollout id, checked against the rules a user relies on (below),
 * plus the exact verdicts along the upgrade path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "baton.pb-c.h"
#include "steps.h"

#define SAME "r-same"
#define OTHER "r-other"

/* Every last step a state file can record. */
static const char *const recorded[] = {"",          "preflight",   "stop",           "dump",
                                       "swap",      "migrate",     "start",          "verify",
                                       "committed", "rolled_back", "rollback_failed"};
#define N_RECORDED (sizeof(recorded) / sizeof(recorded[0]))
/* Every step that can be in progress (cut short) or running, and none. */
static const char *const steps_or_none[] = {"",        "preflight", "stop",   "dump",   "swap",
                                            "migrate", "start",     "verify", "commit", "rollback"};
#define N_STEPS_OR_NONE (sizeof(steps_or_none) / sizeof(steps_or_none[0]))

static step_verdict_t decide(const char *rid, const char *step, const char *inp,
                             const char *running, unsigned rec, step_id_t cmd, const char *asker,
                             bool *busy)
{
    step_state_t st = {
        .rollout_id = rid, .step = step, .in_progress = inp, .running = running, .recorded = rec};
    char why[256] = "";
    step_verdict_t v = step_decide(&st, cmd, asker, busy, why, sizeof(why));
    if (v == STEP_REFUSE)
        assert_true(strlen(why) > 0); /* a refusal always says why */
    return v;
}

static void test_table(void **state)
{
    (void)state;
    for (int i = STEP_NONE + 1; i < STEP__MAX; i++) {
        const step_def_t *d = step_get(i);
        assert_non_null(d);
        assert_int_equal(d->id, i);
        assert_ptr_equal(step_by_name(d->name), d);
        assert_ptr_equal(step_by_body(d->body), d);
    }
    assert_null(step_get(STEP_NONE));
    assert_null(step_get(STEP__MAX));
    assert_null(step_by_name("reboot"));
    assert_null(step_by_body(BATON__ENVELOPE__BODY_HELLO));
    assert_null(step_by_body(BATON__ENVELOPE__BODY_STAGE));
    size_t n = 0;
    const step_def_t *const *seq = step_upgrade_sequence(&n);
    assert_int_equal(n, 7);
    assert_string_equal(seq[0]->name, "stop");
    assert_string_equal(seq[6]->name, "commit");
    assert_string_equal(seq[6]->done, "committed");
    assert_false(step_get(STEP_PREFLIGHT)->changes_live);
}

/* While a step runs, the same step of the same rollout attaches; everything else is BUSY. */
static void test_running_step_holds_the_service(void **state)
{
    (void)state;
    const char *ids[] = {SAME, OTHER};
    for (size_t r = 1; r < N_STEPS_OR_NONE; r++)
        for (int c = STEP_NONE + 1; c < STEP__MAX; c++)
            for (size_t k = 0; k < 2; k++) {
                bool busy = false;
                step_verdict_t v = decide(SAME, "preflight", steps_or_none[r], steps_or_none[r], 0,
                                          c, ids[k], &busy);
                if (k == 0 && !strcmp(step_get(c)->name, steps_or_none[r])) {
                    assert_int_equal(v, STEP_ATTACH);
                } else {
                    assert_int_equal(v, STEP_REFUSE);
                    assert_true(busy);
                }
            }
}

/* A record another rollout holds (reserved by its pre-flight, mid-rollout, or cut short) is
 * never touched: no command of this rollout runs or releases there, and a pre-flight is BUSY
 * (issue: a refused second coordinator re-stamped other nodes). */
static void test_other_rollouts_record_is_never_touched(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_RECORDED; s++)
        for (size_t p = 0; p < N_STEPS_OR_NONE; p++) {
            const char *step = recorded[s], *inp = steps_or_none[p];
            if (step_finished(step, inp))
                continue;
            for (int c = STEP_NONE + 1; c < STEP__MAX; c++) {
                bool busy = false;
                step_verdict_t v = decide(OTHER, step, inp, "", ~0u, c, SAME, &busy);
                assert_int_equal(v, STEP_REFUSE);
                if (c == STEP_PREFLIGHT)
                    assert_true(busy);
            }
        }
}

/* A finished record (none, committed, rolled back) lets a new rollout's pre-flight run, and
 * nothing else of a rollout it never saw. */
static void test_finished_record_takes_only_a_preflight(void **state)
{
    (void)state;
    const char *finished[] = {"", "committed", "rolled_back"};
    const char *rids[] = {"", OTHER};
    for (size_t f = 0; f < 3; f++)
        for (size_t r = 0; r < 2; r++) {
            if (!*rids[r] && *finished[f])
                continue;
            for (int c = STEP_NONE + 1; c < STEP__MAX; c++) {
                bool busy = true;
                step_verdict_t v = decide(rids[r], finished[f], "", "", 0, c, SAME, &busy);
                assert_int_equal(v, c == STEP_PREFLIGHT ? STEP_RUN : STEP_REFUSE);
                if (v == STEP_REFUSE)
                    assert_false(busy);
            }
        }
}

/* A committed rollout is never rolled back, by any id (issue: a crash in the next rollout's
 * pre-flight let `baton rollback` undo the committed one). */
static void test_committed_is_never_rolled_back(void **state)
{
    (void)state;
    bool busy;
    assert_int_equal(decide(SAME, "committed", "", "", ~0u, STEP_ROLLBACK, SAME, &busy),
                     STEP_REFUSE);
    assert_int_equal(decide(SAME, "committed", "", "", ~0u, STEP_ROLLBACK, OTHER, &busy),
                     STEP_REFUSE);
    /* The next rollout's pre-flight, cut short: asked again by the request that started it, it
     * ends there (released); a new request may run it again. */
    step_state_t cut = {.rollout_id = OTHER,
                        .step = "",
                        .in_progress = "preflight",
                        .running = "",
                        .asker_started_it = true};
    char why[128];
    assert_int_equal(step_decide(&cut, STEP_PREFLIGHT, OTHER, &busy, why, sizeof(why)),
                     STEP_RELEASE);
    cut.asker_started_it = false;
    assert_int_equal(step_decide(&cut, STEP_PREFLIGHT, OTHER, &busy, why, sizeof(why)), STEP_RUN);
    /* ... and its rollback only releases the reservation. */
    assert_int_equal(decide(OTHER, "", "preflight", "", 0, STEP_ROLLBACK, OTHER, &busy),
                     STEP_RELEASE);
    assert_int_equal(decide(OTHER, "", "preflight", "", 0, STEP_ROLLBACK, SAME, &busy),
                     STEP_REFUSE);
}

/* Mid-rollout, a pre-flight of the same rollout is refused: it would wipe the rollback record
 * (issue: previous digest, ids before and dump path were lost). */
static void test_no_preflight_mid_rollout(void **state)
{
    (void)state;
    for (size_t s = 2; s < N_RECORDED; s++) {
        bool busy = true;
        assert_int_equal(decide(SAME, recorded[s], "", "", ~0u, STEP_PREFLIGHT, SAME, &busy),
                         STEP_REFUSE);
        for (size_t p = 2; p < N_STEPS_OR_NONE; p++)
            assert_int_equal(
                decide(SAME, recorded[s], steps_or_none[p], "", ~0u, STEP_PREFLIGHT, SAME, &busy),
                STEP_REFUSE);
    }
    bool busy;
    /* Asked again right after it passed (a lost answer): the recorded Result, not a re-run. */
    assert_int_equal(
        decide(SAME, "preflight", "", "", 1u << STEP_PREFLIGHT, STEP_PREFLIGHT, SAME, &busy),
        STEP_REPLAY);
}

/* The upgrade path, step by step: each runs once after the one before it; asked again it is
 * answered from the record; out of order it is refused. */
static void test_upgrade_path(void **state)
{
    (void)state;
    const char *prev = "preflight";
    size_t n = 0;
    const step_def_t *const *seq = step_upgrade_sequence(&n);
    for (size_t i = 0; i < n; i++) {
        bool busy;
        step_id_t c = seq[i]->id;
        assert_int_equal(decide(SAME, prev, "", "", 0, c, SAME, &busy), STEP_RUN);
        /* its Result on record (it failed): asked again, the failure is answered, not re-run */
        assert_int_equal(decide(SAME, prev, "", "", 1u << c, c, SAME, &busy), STEP_REPLAY);
        /* completed: never twice */
        assert_int_equal(decide(SAME, seq[i]->done, "", "", ~0u, c, SAME, &busy), STEP_REPLAY);
        /* cut short by a crash: a new request may run it again, or roll back; the request that
         * started it, asked again, hears that it was interrupted */
        assert_int_equal(decide(SAME, prev, seq[i]->name, "", 0, c, SAME, &busy), STEP_RUN);
        step_state_t st = {.rollout_id = SAME,
                           .step = prev,
                           .in_progress = seq[i]->name,
                           .running = "",
                           .asker_started_it = true};
        char why[256];
        assert_int_equal(step_decide(&st, c, SAME, &busy, why, sizeof(why)), STEP_REFUSE);
        assert_non_null(strstr(why, "interrupted: the agent restarted"));
        assert_int_equal(decide(SAME, prev, seq[i]->name, "", 0, STEP_ROLLBACK, SAME, &busy),
                         STEP_RUN);
        /* the next-but-one is out of order */
        if (i + 1 < n)
            assert_int_equal(decide(SAME, prev, "", "", 0, seq[i + 1]->id, SAME, &busy),
                             STEP_REFUSE);
        prev = seq[i]->done;
    }
}

/* A completed migrate is answered to its own request, never undone by a new "migrate down". */
static void test_completed_migrate_is_not_undone_by_down(void **state)
{
    (void)state;
    bool busy;
    char why[256];
    step_state_t st = {.rollout_id = SAME, .step = "migrate", .in_progress = "", .running = ""};
    assert_int_equal(step_decide(&st, STEP_MIGRATE, SAME, &busy, why, sizeof(why)), STEP_REPLAY);
    st.asks_down = true;
    assert_int_equal(step_decide(&st, STEP_MIGRATE, SAME, &busy, why, sizeof(why)), STEP_REFUSE);
    assert_non_null(strstr(why, "baton rollback undoes it"));
    st.recorded = 1u << STEP_MIGRATE; /* that down request itself, asked again */
    assert_int_equal(step_decide(&st, STEP_MIGRATE, SAME, &busy, why, sizeof(why)), STEP_REPLAY);
}

/* A committed rollout: never undone by a rollback after a crash or failure; undone when the
 * operator names it (baton rollback ROLLOUT_ID), and only that rollout. */
static void test_committed_undone_only_on_purpose(void **state)
{
    (void)state;
    bool busy;
    char why[256];
    step_state_t st = {.rollout_id = SAME, .step = "committed", .in_progress = "", .running = ""};
    assert_int_equal(step_decide(&st, STEP_ROLLBACK, SAME, &busy, why, sizeof(why)), STEP_REFUSE);
    assert_non_null(strstr(why, "never rolled back"));
    st.undo_committed = true;
    assert_int_equal(step_decide(&st, STEP_ROLLBACK, SAME, &busy, why, sizeof(why)), STEP_RUN);
    assert_int_equal(step_decide(&st, STEP_ROLLBACK, OTHER, &busy, why, sizeof(why)), STEP_REFUSE);
    assert_non_null(strstr(why, "no rollout"));
    st.running = "verify"; /* a step of another rollout runs: busy, whatever the flag */
    assert_int_equal(step_decide(&st, STEP_ROLLBACK, SAME, &busy, why, sizeof(why)), STEP_REFUSE);
    assert_true(busy);
}

static void test_rollback_verdicts(void **state)
{
    (void)state;
    bool busy;
    assert_int_equal(decide(SAME, "migrate", "", "", 0, STEP_ROLLBACK, SAME, &busy), STEP_RUN);
    assert_int_equal(decide(SAME, "rollback_failed", "", "", 0, STEP_ROLLBACK, SAME, &busy),
                     STEP_RUN);
    assert_int_equal(decide(SAME, "rolled_back", "", "", 0, STEP_ROLLBACK, SAME, &busy),
                     STEP_REPLAY);
    assert_int_equal(decide(SAME, "preflight", "", "", 0, STEP_ROLLBACK, SAME, &busy),
                     STEP_RELEASE);
    assert_int_equal(decide(SAME, "", "", "", 0, STEP_ROLLBACK, SAME, &busy), STEP_RELEASE);
    /* A stop that failed after systemd was asked may have stopped the unit: rolled back (the
     * rollback starts it again), not released. */
    step_state_t asked = {.rollout_id = SAME,
                          .step = "preflight",
                          .in_progress = "",
                          .running = "",
                          .stop_asked = true};
    char why[256] = "";
    assert_int_equal(step_decide(&asked, STEP_ROLLBACK, SAME, &busy, why, sizeof(why)), STEP_RUN);
    assert_int_equal(decide(SAME, "migrate", "", "", 0, STEP_ROLLBACK, OTHER, &busy), STEP_REFUSE);
    /* after a rollback nothing of that rollout runs again */
    for (int c = STEP_STOP; c <= STEP_COMMIT; c++)
        assert_int_equal(decide(SAME, "rolled_back", "", "", 0, c, SAME, &busy), STEP_REFUSE);
}

static void test_settled_and_finished(void **state)
{
    (void)state;
    assert_true(step_settled("", ""));
    assert_true(step_settled("preflight", ""));
    assert_true(step_settled("", "preflight"));
    assert_true(step_settled("committed", ""));
    assert_true(step_settled("rolled_back", ""));
    assert_false(step_settled("migrate", ""));
    assert_false(step_settled("rollback_failed", ""));
    assert_false(step_settled("committed", "stop"));
    assert_true(step_finished("", ""));
    assert_true(step_finished("committed", ""));
    assert_false(step_finished("preflight", ""));
    assert_false(step_finished("", "preflight"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_running_step_holds_the_service),
        cmocka_unit_test(test_other_rollouts_record_is_never_touched),
        cmocka_unit_test(test_finished_record_takes_only_a_preflight),
        cmocka_unit_test(test_committed_is_never_rolled_back),
        cmocka_unit_test(test_no_preflight_mid_rollout),
        cmocka_unit_test(test_upgrade_path),
        cmocka_unit_test(test_completed_migrate_is_not_undone_by_down),
        cmocka_unit_test(test_rollback_verdicts),
        cmocka_unit_test(test_committed_undone_only_on_purpose),
        cmocka_unit_test(test_settled_and_finished),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
