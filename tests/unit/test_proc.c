/* Unit tests for the agent's command runner (agent/sys/proc.c): a command's time ends when its own
 * process does or at its deadline, whatever it left behind; what it left in its process group
 * is killed; a pipe held open by a process that left the group does not hold the result; the
 * output tail and the exit status are the command's own. Real processes, no root. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char pidpath[64];

static int setup(void **state)
{
    (void)state;
    snprintf(pidpath, sizeof(pidpath), "/tmp/baton-test-proc-%d.pid", (int)getpid());
    unlink(pidpath);
    return 0;
}

/* The pid a command wrote to pidpath, once it is there. */
static pid_t read_pid(void)
{
    FILE *f = fopen(pidpath, "re");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

/* True when PID is gone or a zombie within 5 s (an orphan killed is reaped by whoever adopted
 * it, which may take a moment). */
static bool ends(pid_t pid)
{
    for (int i = 0; i < 500; i++) {
        char path[64], st[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
            return true;
        size_t n = fread(st, 1, sizeof(st) - 1, f);
        fclose(f);
        st[n] = '\0';
        const char *p = strrchr(st, ')');
        if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
            return true;
        usleep(10000);
    }
    return false;
}

static int run(const char *script, uint64_t timeout_ms, struct proc_result *res)
{
    const char *argv[] = {"/bin/sh", "-c", script, "sh", pidpath, NULL};
    struct proc_opts o = {.argv = argv, .timeout_ms = timeout_ms};
    baton_err_t err = {0};
    return proc_run(&o, res, &err);
}

/* The hardening issue's drain hook: `sleep 600 &` and exit 0 at once. It used to hold the step
 * until its 120 s timeout, because the sleep kept the output pipe open. */
static void test_child_left_behind_ends_with_the_command(void **state)
{
    (void)state;
    struct proc_result res;
    uint64_t t0 = now_ms();
    assert_int_equal(run("sleep 600 & echo $! >\"$1\"; echo drained; exit 0", 120000, &res), 0);
    uint64_t took = now_ms() - t0;
    assert_true(took < 60000); /* not the deadline: the command itself was over at once */
    assert_int_equal(res.exit_code, 0);
    assert_false(res.timed_out);
    assert_non_null(strstr(res.tail, "drained"));
    pid_t child = read_pid();
    assert_true(child > 0);
    assert_true(ends(child)); /* killed with its group, not left to run 600 s */
}

/* A process that left the group (setsid) and holds the pipe: the result comes anyway. */
static void test_pipe_held_outside_the_group(void **state)
{
    (void)state;
    struct proc_result res;
    uint64_t t0 = now_ms();
    assert_int_equal(run("setsid sleep 600 & echo $! >\"$1\"; exit 3", 120000, &res), 0);
    assert_true(now_ms() - t0 < 60000);
    assert_int_equal(res.exit_code, 3);
    assert_false(res.timed_out);
    pid_t child = read_pid();
    if (child > 0)
        kill(child, SIGKILL); /* outside the group by design: ours to clean up here */
}

/* Past its deadline the command and its group are killed, and the result says timed out. */
static void test_deadline_kills_the_group(void **state)
{
    (void)state;
    struct proc_result res;
    assert_int_equal(run("sleep 600 & echo $! >\"$1\"; echo started; wait", 300, &res), 0);
    assert_true(res.timed_out);
    assert_int_equal(res.term_signal, SIGTERM);
    assert_non_null(strstr(res.tail, "started"));
    pid_t child = read_pid();
    assert_true(child > 0);
    assert_true(ends(child));
    char line[256];
    proc_describe(&res, 300, line, sizeof(line));
    assert_non_null(strstr(line, "timed out"));
}

/* A command that ignores SIGTERM is killed after the grace, also with its output closed. */
static void test_deadline_with_output_closed(void **state)
{
    (void)state;
    struct proc_result res;
    assert_int_equal(run("exec >&- 2>&-; trap '' TERM; while :; do sleep 0.1; done", 200, &res), 0);
    assert_true(res.timed_out);
    assert_int_equal(res.term_signal, SIGKILL);
}

/* A command that finishes in time is its own result: exit status and last output line. */
static void test_exit_status_and_tail(void **state)
{
    (void)state;
    struct proc_result res;
    assert_int_equal(run("echo first; echo 'no such table' >&2; exit 7", 10000, &res), 0);
    assert_false(res.timed_out);
    assert_int_equal(res.exit_code, 7);
    char line[256];
    proc_describe(&res, 10000, line, sizeof(line));
    assert_string_equal(line, "exit code 7: no such table");
}

/* A program that does not exist: exit 127 and the reason, no shell fallback. */
static void test_no_such_program(void **state)
{
    (void)state;
    const char *argv[] = {"/nonexistent/tool", NULL};
    struct proc_opts o = {.argv = argv, .timeout_ms = 10000};
    struct proc_result res;
    baton_err_t err = {0};
    assert_int_equal(proc_run(&o, &res, &err), 0);
    assert_int_equal(res.exit_code, 127);
    assert_non_null(strstr(res.tail, "exec failed: no such program"));
}

/* A copy of /bin/true, executable, held open for writing by another process (as a child
 * forked by another of the agent's threads holds a just-written file until its own exec): it
 * lets go after `hold_ms`, or when `*ret_release` is closed. Returns once the file is held. */
static pid_t busy_program(char *path, size_t len, int hold_ms, int *ret_release)
{
    snprintf(path, len, "/tmp/baton-test-proc-true-%d", (int)getpid());
    unlink(path);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "cp /bin/true '%s' && chmod 755 '%s'", path, path);
    assert_int_equal(system(cmd), 0);
    int held[2], release[2];
    assert_int_equal(pipe(held), 0);
    assert_int_equal(pipe(release), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(held[0]);
        close(release[1]);
        int fd = open(path, O_WRONLY);
        if (fd < 0 || write(held[1], "h", 1) != 1)
            _exit(1);
        struct pollfd p = {.fd = release[0], .events = POLLIN};
        poll(&p, 1, hold_ms);
        _exit(0);
    }
    close(held[1]);
    close(release[0]);
    char c;
    assert_int_equal(read(held[0], &c, 1), 1);
    close(held[0]);
    *ret_release = release[1];
    return pid;
}

/* A program that is busy for a moment runs once the writer is gone; one that stays busy is
 * reported as such, not as a program that does not exist. */
static void test_text_file_busy(void **state)
{
    (void)state;
    char path[64];
    int release, status;
    pid_t holder = busy_program(path, sizeof(path), 100, &release);
    const char *argv[] = {path, NULL};
    struct proc_opts o = {.argv = argv, .timeout_ms = 10000};
    struct proc_result res;
    baton_err_t err = {0};
    assert_int_equal(proc_run(&o, &res, &err), 0);
    assert_int_equal(res.exit_code, 0);
    close(release);
    assert_int_equal(waitpid(holder, &status, 0), holder);

    holder = busy_program(path, sizeof(path), -1, &release);
    assert_int_equal(proc_run(&o, &res, &err), 0);
    close(release);
    assert_int_equal(waitpid(holder, &status, 0), holder);
    assert_int_equal(res.exit_code, 127);
    assert_non_null(strstr(res.tail, "exec failed: the file is open for writing"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_child_left_behind_ends_with_the_command, setup),
        cmocka_unit_test_setup(test_pipe_held_outside_the_group, setup),
        cmocka_unit_test_setup(test_deadline_kills_the_group, setup),
        cmocka_unit_test_setup(test_deadline_with_output_closed, setup),
        cmocka_unit_test_setup(test_exit_status_and_tail, setup),
        cmocka_unit_test_setup(test_no_such_program, setup),
        cmocka_unit_test_setup(test_text_file_busy, setup),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(pidpath);
    return failed;
}
