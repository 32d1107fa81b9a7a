/* Unit tests for the file operations a root daemon makes (common/fsutil.c): a temporary file is
 * created anew, never opened through a planted symlink or an existing hard link, and the folders
 * the agent creates files in must be root's alone. */
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

#include "fsutil.h"

static char dir[64];

static void path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static char *slurp(const char *p)
{
    char *data = NULL;
    size_t len = 0;
    baton_err_t err = {0};
    assert_int_equal(fs_read_all(p, 4096, &data, &len, &err), 0);
    return data;
}

static void spit(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/baton-test-fsutil-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* The state file's temporary name is a symlink to a file of someone else's: written through,
 * it would overwrite that file as root. */
static void test_planted_symlink_not_followed(void **state)
{
    (void)state;
    char victim[128], target[128], tmp[160];
    path(victim, sizeof(victim), "victim");
    path(target, sizeof(target), "state.json");
    snprintf(tmp, sizeof(tmp), "%s.tmp", target);
    spit(victim, "precious\n");
    assert_int_equal(symlink(victim, tmp), 0);
    baton_err_t err = {0};
    assert_int_equal(fs_write_atomic(target, "new\n", 4, 0600, &err), 0);
    char *v = slurp(victim), *t = slurp(target);
    assert_string_equal(v, "precious\n");
    assert_string_equal(t, "new\n");
    free(v);
    free(t);
    struct stat sb;
    assert_int_equal(lstat(victim, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
}

/* A hard link planted at the temporary name: the new file is a new inode. */
static void test_planted_hard_link_not_written(void **state)
{
    (void)state;
    char victim[128], tmp[128];
    path(victim, sizeof(victim), "victim");
    path(tmp, sizeof(tmp), "binary.baton-new");
    spit(victim, "precious\n");
    assert_int_equal(link(victim, tmp), 0);
    baton_err_t err = {0};
    int fd = fs_create_new(tmp, O_WRONLY, 0700, &err);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    char *v = slurp(victim);
    assert_string_equal(v, "precious\n");
    free(v);
}

/* A folder anyone may write is refused, naming it and its mode. */
static void test_folder_writable_by_others_refused(void **state)
{
    (void)state;
    char open_dir[128];
    path(open_dir, sizeof(open_dir), "bin");
    assert_int_equal(mkdir(open_dir, 0777), 0);
    assert_int_equal(chmod(open_dir, 0777), 0);
    baton_err_t err = {0};
    assert_int_equal(fs_dir_root_only(open_dir, &err), -EPERM);
    assert_non_null(strstr(err.msg, "mode 0777"));
    assert_non_null(strstr(err.msg, "/bin"));
}

/* A folder of root's, under folders of root's, is fine (root only: elsewhere the test's own
 * folders belong to another user, which is the refusal above). */
static void test_folder_of_root_accepted(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip();
        return;
    }
    char d[] = "/run/baton-test-fsutil-XXXXXX";
    assert_non_null(mkdtemp(d));
    chmod(d, 0755);
    baton_err_t err = {0};
    int r = fs_dir_root_only(d, &err);
    rmdir(d);
    assert_int_equal(r, 0);
    /* A sticky folder anyone may write (/tmp, a tmpfs mounted without mode=) is: nobody else
     * may rename or remove what root made there. Without the sticky bit it is not. */
    char open_dir[] = "/run/baton-test-fsutil-XXXXXX";
    assert_non_null(mkdtemp(open_dir));
    chmod(open_dir, 01777);
    int sticky = fs_dir_root_only(open_dir, &err);
    chmod(open_dir, 0777);
    int plain = fs_dir_root_only(open_dir, &err);
    rmdir(open_dir);
    assert_int_equal(sticky, 0);
    assert_int_equal(plain, -EPERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_planted_symlink_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planted_hard_link_not_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_writable_by_others_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_of_root_accepted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
