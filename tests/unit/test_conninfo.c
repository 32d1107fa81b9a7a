/* Unit tests for the one database setting in the forms commands take: {database} (libpq
 * key=value, one word whatever its spaces) and {database_url} (postgres://, percent-encoded),
 * as Nakama's --database.address needs it. */
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

#include "command.h"
#include "conninfo.h"

static void expect_url(const char *conninfo, const char *want)
{
    char *url = NULL;
    baton_err_t err = {0};
    if (conninfo_to_url(conninfo, &url, &err) < 0)
        fail_msg("'%s': %s", conninfo, err.msg);
    if (strcmp(url, want))
        fail_msg("'%s': got '%s', want '%s'", conninfo, url, want);
    free(url);
}

static void test_url(void **state)
{
    (void)state;
    expect_url("host=10.0.0.5 port=5432 dbname=nakama user=nakama sslmode=disable",
               "postgres://nakama@10.0.0.5:5432/nakama?sslmode=disable");
    expect_url("dbname=game", "postgres:///game");
    expect_url("host=db.example.org dbname='my game' user=o'brien",
               "postgres://o%27brien@db.example.org/my%20game");
    expect_url("host=/run/postgresql dbname=game", "postgres:///game?host=%2Frun%2Fpostgresql");
    expect_url("host=::1 port=5433 dbname=game connect_timeout=5",
               "postgres://[::1]:5433/game?connect_timeout=5");
    expect_url("postgresql://u@h:1/d?sslmode=require", "postgres://u@h:1/d?sslmode=require");
    expect_url("host=fe80::1%eth0 port=5432 dbname=game", "postgres://[fe80::1%25eth0]:5432/game");
    char *url = NULL;
    baton_err_t err = {0};
    assert_int_equal(conninfo_to_url("host=db dbname", &url, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "database 'host=db dbname' does not parse"));
    assert_null(url);
}

static void test_argv(void **state)
{
    (void)state;
    char **argv = NULL;
    baton_err_t err = {0};
    assert_int_equal(command_argv_db("{binary} migrate up --database.address {database_url}",
                                     "/opt/nakama/nakama", 0,
                                     "host=10.0.0.5 port=5432 dbname=nakama user=nakama", &argv,
                                     &err),
                     0);
    assert_string_equal(argv[0], "/opt/nakama/nakama");
    assert_string_equal(argv[3], "--database.address");
    assert_string_equal(argv[4], "postgres://nakama@10.0.0.5:5432/nakama");
    assert_null(argv[5]);
    command_argv_free(&argv);
    assert_int_equal(command_argv_db("{binary} migrate --database {database} --limit {n}", "/b", 2,
                                     "host=db dbname=game", &argv, &err),
                     0);
    assert_string_equal(argv[3], "host=db dbname=game"); /* one word */
    assert_string_equal(argv[5], "2");
    command_argv_free(&argv);
    /* No database given (the version command): the placeholders stay as written. */
    assert_int_equal(command_argv("{binary} --version {database_url}", "/b", 0, &argv, &err), 0);
    assert_string_equal(argv[2], "{database_url}");
    command_argv_free(&argv);
    assert_int_equal(
        command_argv_db("{binary} {database_url}", "/b", 0, "host=db dbname", &argv, &err),
        -EINVAL);
    assert_null(argv);
}

static void test_with_db(void **state)
{
    (void)state;
    char *s = conninfo_with_db("host=db user=o'brien dbname=game", "scratch");
    assert_non_null(s);
    assert_non_null(strstr(s, "dbname='scratch'"));
    assert_non_null(strstr(s, "user='o\\'brien'"));
    free(s);
    assert_true(conninfo_has_password("host=db password=x"));
    assert_false(conninfo_has_password("host=db dbname=password"));
    assert_false(conninfo_parses("host=db dbname"));
}

static void test_env_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/baton-test-env-XXXXXX";
    assert_non_null(mkdtemp(dir));
    baton_err_t err = {0};
    assert_int_equal(
        conninfo_env_file(dir, "nakama", "host=db port=5432 dbname=nakama user=o\\'\"x$", &err), 0);
    char path[128], buf[1024] = "";
    snprintf(path, sizeof(path), "%s/nakama.env", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_non_null(
        strstr(buf, "BATON_DATABASE=\"host=db port=5432 dbname=nakama user=o\\\\'\\\"x\\$\"\n"));
    assert_non_null(strstr(buf, "BATON_DATABASE_URL=\"postgres://o%27%22x%24@db:5432/nakama\"\n"));
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_argv),
        cmocka_unit_test(test_with_db),
        cmocka_unit_test(test_env_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
