/* proc: run a command (an argv array, never a shell) with a deadline.
 *
 * The child gets its own process group, so a timeout kills everything it started (sql-migrate
 * under gamesrv, say): SIGTERM, then SIGKILL after PROC_KILL_GRACE_MS. Its stderr (and stdout,
 * unless a callback consumes it) is kept as a tail for the error message. A tick callback runs
 * at least once a second so that the caller can ping the systemd watchdog while it waits.
 *
 * The command ends when its own process does, or at its deadline: whatever it left behind in
 * its group is killed then, and a pipe still held open (by a process that left the group)
 * delays the result by PROC_DRAIN_MS at most, never past the deadline's kill. */
#ifndef BATON_PROC_H
#define BATON_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PROC_TAIL_MAX 2048
#define PROC_KILL_GRACE_MS 5000
/* After the command's own process exited: how long its remaining output is read. */
#define PROC_DRAIN_MS 1000
/* Without a pidfd: how often the command's own process is looked at. */
#define PROC_POLL_MS 100

struct proc_opts {
    const char *const *argv;    /* argv[0] is looked up in PATH */
    const char *const *env_add; /* NULL or NULL-terminated "KEY=VALUE" added to the environment */
    uint64_t timeout_ms;        /* 0: no deadline */
    /* NULL: stdout is kept in the tail. Otherwise gets every stdout chunk; < 0 aborts the run. */
    int (*on_stdout)(const void *buf, size_t len, void *userdata);
    void (*tick)(void *userdata); /* NULL or called at least once a second */
    void *userdata;
    /* NULL, or a file that holds "PGID STARTTIME" while the command runs, so that after a
     * crash of the caller proc_kill_leftover() can end what it left running. */
    const char *pidfile;
};

struct proc_result {
    int exit_code;            /* exit status, or -1 when killed by a signal */
    int term_signal;          /* the signal that ended it, 0 otherwise */
    bool timed_out;           /* the deadline passed and we killed it */
    char tail[PROC_TAIL_MAX]; /* last output (stderr, and stdout without on_stdout) */
};

/* Runs the command to its end. Returns 0 when it could be run and waited for (whatever its exit
 * code: look at *ret), a negative errno when it could not be started or the callback aborted. */
int proc_run(const struct proc_opts *opts, struct proc_result *ret, baton_err_t *err);

/* Kills the process group recorded in `pidfile` if that very process still exists (its start
 * time is compared, so a reused pid is never hit), then removes the file. Returns the number
 * of groups killed (0 or 1). */
int proc_kill_leftover(const char *pidfile);

/* One line for messages: "exit code 1: <last line of output>", "killed by signal 9", "timed out
 * after 30 s". */
void proc_describe(const struct proc_result *r, uint64_t timeout_ms, char *buf, size_t len);

#endif
