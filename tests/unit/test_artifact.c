/* Unit tests for what an artifact may be (agent/artifact/artifact.c) and for running one without a
 * shell (agent/sys/proc.c): the hardening issue's 0755 text file of shell commands, which execvp's
 * fallback used to hand to /bin/sh as root. The real refusal on the cluster, nothing stopped,
 * is in tests/cluster/plan.sh. */
#include <elf.h>
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

#include "artifact.h"
#include "proc.h"

static char dir[64], path[128], marker[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/baton-test-artifact-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/artifact", dir);
    snprintf(marker, sizeof(marker), "%s/ran", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    unlink(marker);
    rmdir(dir);
    return 0;
}

static void write_file(const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    chmod(path, mode);
}

/* A copy of a real program of this machine (the test binary itself), patched at OFFSET. */
static void copy_self(size_t offset, const void *patch, size_t len)
{
    static char buf[1 << 16];
    int fd = open("/proc/self/exe", O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    assert_true(n > (ssize_t)sizeof(Elf64_Ehdr));
    if (patch)
        memcpy(buf + offset, patch, len);
    write_file(buf, (size_t)n, 0755);
}

static void test_program_of_this_machine(void **state)
{
    (void)state;
    baton_err_t err = {0};
    copy_self(0, NULL, 0);
    assert_int_equal(artifact_check(path, false, &err), 0);
}

static void test_shell_text_refused_and_never_run(void **state)
{
    (void)state;
    char text[256];
    snprintf(text, sizeof(text), "touch %s\n", marker);
    write_file(text, strlen(text), 0755);
    baton_err_t err = {0};
    assert_int_equal(artifact_check(path, true, &err), -ENOEXEC);
    assert_non_null(strstr(err.msg, "is not a program"));
    assert_non_null(strstr(err.msg, path));

    /* And should anything run it anyway, no shell takes it. */
    const char *argv[] = {path, "--version", NULL};
    struct proc_opts o = {.argv = argv, .timeout_ms = 10000};
    struct proc_result res;
    assert_int_equal(proc_run(&o, &res, &err), 0);
    assert_int_equal(res.exit_code, 127);
    assert_non_null(strstr(res.tail, "no shell is tried"));
    assert_int_equal(access(marker, F_OK), -1); /* its commands did not run */
}

static void test_script_only_where_allowed(void **state)
{
    (void)state;
    const char script[] = "#!/bin/sh\necho 1.0.0\n";
    write_file(script, sizeof(script) - 1, 0755);
    baton_err_t err = {0};
    assert_int_equal(artifact_check(path, false, &err), -ENOEXEC);
    assert_non_null(strstr(err.msg, "artifact_scripts: true"));
    assert_int_equal(artifact_check(path, true, &err), 0);
}

static void test_other_machine_refused(void **state)
{
    (void)state;
#if defined(__aarch64__)
    uint16_t other = EM_X86_64;
#else
    uint16_t other = EM_AARCH64;
#endif
    copy_self(offsetof(Elf64_Ehdr, e_machine), &other, sizeof(other));
    baton_err_t err = {0};
    assert_int_equal(artifact_check(path, false, &err), -ENOEXEC);
    assert_non_null(strstr(err.msg, "not for this"));
}

static void test_object_file_refused(void **state)
{
    (void)state;
    uint16_t rel = ET_REL;
    copy_self(offsetof(Elf64_Ehdr, e_type), &rel, sizeof(rel));
    baton_err_t err = {0};
    assert_int_equal(artifact_check(path, false, &err), -ENOEXEC);
    assert_non_null(strstr(err.msg, "object file"));
}

static void test_short_and_empty_refused(void **state)
{
    (void)state;
    baton_err_t err = {0};
    write_file(ELFMAG, SELFMAG, 0755);
    assert_int_equal(artifact_check(path, false, &err), -ENOEXEC);
    write_file("", 0, 0755);
    assert_int_equal(artifact_check(path, false, &err), -ENOEXEC);
}

static void test_link_not_followed(void **state)
{
    (void)state;
    assert_int_equal(symlink("/bin/true", path), 0);
    baton_err_t err = {0};
    assert_int_equal(artifact_check(path, false, &err), -ELOOP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_program_of_this_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shell_text_refused_and_never_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_script_only_where_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_machine_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_and_empty_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_not_followed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
