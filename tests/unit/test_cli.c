/* Unit tests for cli's tables and what is made from them: a flag a command does not take is
 * named as the operator typed it, the tables hold together (every command's flags have options,
 * getopt values are unique), each completion script names every command and option, and
 * init never writes over a file. */
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

#include "cli.h"
#include "completion.h"
#include "init.h"

static void test_tables(void **state)
{
    (void)state;
    size_t n_cmds, n_opts;
    const cli_command_t *cmds = cli_commands(&n_cmds);
    const cli_option_t *opts = cli_options(&n_opts);
    unsigned known = 0;
    for (size_t i = 0; i < n_opts; i++) {
        /* One flag bit per option (or none): cli_flag_refused names options by it. */
        assert_true((opts[i].flag & (opts[i].flag - 1)) == 0);
        assert_true((opts[i].value == CLI_VALUE_NONE) == (opts[i].what == NULL));
        assert_non_null(opts[i].help);
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(opts[i].val, opts[j].val);
            assert_string_not_equal(opts[i].name, opts[j].name);
        }
        known |= opts[i].flag;
    }
    for (size_t i = 0; i < n_cmds; i++) {
        const cli_command_t *c = &cmds[i];
        assert_int_equal(c->flags & ~known, 0); /* every flag it takes has its options */
        assert_true((c->arity == CLI_NO_ARG) == (c->arg == NULL));
        assert_true((c->arity == CLI_NO_ARG) == (c->arg_kinds == 0));
        assert_non_null(c->brief);
        assert_int_equal(strncmp(c->help, "            ", 12), 0);
        assert_ptr_equal(cli_find(c->name), c);
    }
    assert_null(cli_find("frobnicate"));
    assert_null(cli_find(NULL));
}

static void test_flag_refused(void **state)
{
    (void)state;
    assert_string_equal(cli_flag_refused(cli_find("list"), CLI_FOLLOW), "--follow");
    assert_string_equal(cli_flag_refused(cli_find("keygen"), CLI_JOURNAL), "--state-dir/--journal");
    assert_string_equal(cli_flag_refused(cli_find("status"), CLI_VERSIONS | CLI_FOLLOW),
                        "--allow-downgrade/--restore-dump/--jump");
    /* Of several refused, the first in the table's order. */
    assert_string_equal(cli_flag_refused(cli_find("init"), CLI_RESTORE_SHARED | CLI_JSON),
                        "--json");
    assert_null(cli_flag_refused(cli_find("status"), CLI_FOLLOW | CLI_JSON | CLI_JOURNAL));
    assert_null(cli_flag_refused(cli_find("init"), 0));
}

static void test_completion(void **state)
{
    (void)state;
    size_t n_cmds, n_opts;
    const cli_command_t *cmds = cli_commands(&n_cmds);
    const cli_option_t *opts = cli_options(&n_opts);
    assert_int_equal(completion_print(stdout, NULL), -EINVAL);
    assert_int_equal(completion_print(stdout, "tcsh"), -EINVAL);
    for (const char *const *s = completion_shells(); *s; s++) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        assert_non_null(f);
        assert_int_equal(completion_print(f, *s), 0);
        fclose(f);
        for (size_t i = 0; i < n_cmds; i++)
            assert_non_null(strstr(text, cmds[i].name));
        for (size_t i = 0; i < n_opts; i++)
            assert_non_null(strstr(text, opts[i].name));
        assert_non_null(strstr(text, "baton list"));
        free(text);
    }
}

static void test_init_never_overwrites(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_cli.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/rollout.yml", dir);
    baton_err_t err = {0};
    assert_int_equal(init_write(path, &err), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0644);
    assert_int_equal((size_t)sb.st_size, strlen(init_template()));
    assert_int_equal(init_write(path, &err), -EEXIST);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((size_t)sb.st_size, strlen(init_template()));
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_flag_refused),
        cmocka_unit_test(test_completion),
        cmocka_unit_test(test_init_never_overwrites),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
