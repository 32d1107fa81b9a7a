/* Unit tests for freezes (coordinator/rollout/freeze.c over journal_file.c): the reason an operator
 * may give, the record as written and read back, two freezes of one service, and records a hand
 * edit or a damaged disk left (refused, never read as "not frozen"). No root, no cluster: a
 * folder under /tmp. */
#include <errno.h>
#include <fcntl.h>
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

#include "freeze.h"
#include "journal.h"

struct fixture {
    char dir[64];
    journal_store_t *store;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_freeze.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    baton_err_t err = {0};
    assert_int_equal(journal_store_new(f->dir, NULL, &f->store, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    journal_store_destroy(&f->store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void write_record(struct fixture *f, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/freezes", f->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/freezes/gamesrv.json", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* The commands print to stdout and stderr, which cmocka reports on: silenced around them. */
static int saved_out = -1, saved_err = -1;
static void quiet(void)
{
    fflush(stdout);
    fflush(stderr);
    saved_out = dup(1);
    saved_err = dup(2);
    int null = open("/dev/null", O_WRONLY);
    assert_true(saved_out >= 0 && saved_err >= 0 && null >= 0);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
}
static void loud(void)
{
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
}

static void test_reasons(void **state)
{
    (void)state;
    assert_null(freeze_reason_problem("season finale tonight, ask Kim"));
    assert_null(freeze_reason_problem("Saison: Finale \xc3\xa0 20 h")); /* UTF-8 */
    assert_non_null(freeze_reason_problem(""));
    assert_non_null(freeze_reason_problem("two\nlines"));
    assert_non_null(freeze_reason_problem("tab\there"));
    assert_non_null(freeze_reason_problem("\033[2Jclear the screen"));
    assert_non_null(freeze_reason_problem("del\x7f"));
    assert_non_null(freeze_reason_problem("c1 \xc2\x9b"
                                          "2J")); /* CSI, the C1 escape */
    assert_null(freeze_reason_problem("caf\xc3\xa9 \xc2\xa0"
                                      "ok"));        /* é and a no-break space */
    assert_non_null(freeze_reason_problem("\xc3(")); /* not UTF-8 */
    char long_reason[FREEZE_REASON_MAX + 2];
    memset(long_reason, 'x', sizeof(long_reason) - 1);
    long_reason[FREEZE_REASON_MAX] = '\0';
    assert_null(freeze_reason_problem(long_reason));
    long_reason[FREEZE_REASON_MAX] = 'x';
    long_reason[FREEZE_REASON_MAX + 1] = '\0';
    assert_non_null(freeze_reason_problem(long_reason));
}

static void test_freeze_read_unfreeze(void **state)
{
    struct fixture *f = *state;
    freeze_t fz;
    baton_err_t err = {0};
    assert_int_equal(freeze_get(f->store, "gamesrv", &fz, &err), 0); /* nothing there */
    quiet();
    int code = freeze_command(f->store, "gamesrv", "finale tonight");
    loud();
    assert_int_equal(code, 0);
    assert_int_equal(freeze_get(f->store, "gamesrv", &fz, &err), 1);
    assert_string_equal(fz.reason, "finale tonight");
    assert_non_null(strchr(fz.by, '@'));
    assert_int_equal(strlen(fz.since), strlen("2026-12-02T21:42:27Z"));
    freeze_clear(&fz);
    /* Another service is not frozen by it. */
    assert_int_equal(freeze_get(f->store, "lobby", &fz, &err), 0);
    /* A second freeze keeps the first reason. */
    quiet();
    code = freeze_command(f->store, "gamesrv", "mine now");
    loud();
    assert_int_equal(code, 2);
    assert_int_equal(freeze_get(f->store, "gamesrv", &fz, &err), 1);
    assert_string_equal(fz.reason, "finale tonight");
    freeze_clear(&fz);
    /* The message plan and rollout print. */
    char *why = NULL;
    assert_int_equal(freeze_refusal(f->store, "gamesrv", &why), 1);
    assert_non_null(strstr(why, "gamesrv is frozen since "));
    assert_non_null(strstr(why, ": finale tonight (baton unfreeze gamesrv lets it roll)"));
    free(why);
    quiet();
    code = unfreeze_command(f->store, "gamesrv");
    loud();
    assert_int_equal(code, 0);
    assert_int_equal(freeze_get(f->store, "gamesrv", &fz, &err), 0);
    assert_int_equal(freeze_refusal(f->store, "gamesrv", &why), 0);
    assert_null(why);
    /* Bad names and reasons: usage errors, nothing written. */
    quiet();
    int codes[] = {freeze_command(f->store, "../gamesrv", "x"),
                   freeze_command(f->store, "gamesrv", NULL),
                   freeze_command(f->store, "gamesrv", "a\nb")};
    loud();
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(codes[i], 1);
    assert_int_equal(freeze_get(f->store, "gamesrv", &fz, &err), 0);
}

static void test_damaged_records(void **state)
{
    struct fixture *f = *state;
    static const char *const damaged[] = {
        "",                                                                /* empty */
        "{\"reason\": \"x\", \"by\": \"a@b\"",                             /* torn */
        "{\"reason\": 42, \"by\": \"a@b\", \"since\": \"t\"}",             /* wrong type */
        "{\"by\": \"a@b\", \"since\": \"t\"}",                             /* no reason */
        "{\"reason\": \"\\u001b[2J\", \"by\": \"a@b\", \"since\": \"t\"}", /* an escape */
        "{\"reason\": \"x\", \"reason\": \"y\", \"by\": \"a@b\", \"since\": \"t\"}", /* twice */
        "[1, 2]",
        "{\"reason\": \"x\", \"by\": \"\\u001b[31mroot\", \"since\": \"t\"}", /* by */
        "{\"reason\": \"x\", \"by\": \"a@b\", \"since\": \"\\u009b2J\"}",     /* since */
    };
    for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
        write_record(f, damaged[i]);
        freeze_t fz;
        baton_err_t err = {0};
        assert_int_equal(freeze_get(f->store, "gamesrv", &fz, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "the freeze record of gamesrv cannot be read"));
        assert_null(fz.reason);
        char *why = NULL;
        assert_true(freeze_refusal(f->store, "gamesrv", &why) < 0); /* refused, not "free" */
        assert_non_null(why);
        free(why);
    }
    /* Too large to be one. */
    char *big = malloc(70 * 1024);
    assert_non_null(big);
    memset(big, ' ', 70 * 1024 - 1);
    big[70 * 1024 - 1] = '\0';
    write_record(f, big);
    free(big);
    freeze_t fz;
    baton_err_t err = {0};
    assert_true(freeze_get(f->store, "gamesrv", &fz, &err) < 0);
    /* unfreeze removes what cannot be read. */
    quiet();
    int code = unfreeze_command(f->store, "gamesrv");
    loud();
    assert_int_equal(code, 0);
    assert_int_equal(freeze_get(f->store, "gamesrv", &fz, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasons),
        cmocka_unit_test_setup_teardown(test_freeze_read_unfreeze, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_records, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
