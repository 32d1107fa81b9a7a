/* proc: see proc.h. */
#include "proc.h"
#include "clock.h"

#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Appends to a tail buffer that keeps the most recent PROC_TAIL_MAX - 1 bytes. */
static void tail_add(char *tail, size_t *len, const char *buf, size_t n)
{
    const size_t cap = PROC_TAIL_MAX - 1;
    if (n >= cap) {
        memcpy(tail, buf + n - cap, cap);
        *len = cap;
    } else {
        if (*len + n > cap) {
            size_t drop = *len + n - cap;
            memmove(tail, tail + drop, *len - drop);
            *len -= drop;
        }
        memcpy(tail + *len, buf, n);
        *len += n;
    }
    tail[*len] = '\0';
}

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
static unsigned long long start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    unsigned long long t = 0;
    if (p && sscanf(p + 2,
                    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                    "%*d %*d %llu",
                    &t) != 1)
        t = 0;
    return t;
}

int proc_kill_leftover(const char *pidfile)
{
    FILE *f = fopen(pidfile, "re");
    if (!f)
        return 0;
    int pgid = 0;
    unsigned long long recorded = 0;
    int n = fscanf(f, "%d %llu", &pgid, &recorded);
    fclose(f);
    int killed = 0;
    if (n == 2 && pgid > 1 && recorded) {
        /* The leader is ours when its start time matches. When it is gone (PDEATHSIG killed it
         * with the old agent), its id cannot have been reused while members of its group live:
         * Linux keeps a pid allocated while it names a process group. So the group is ours
         * unless a process with that pid exists and started at another time. */
        unsigned long long now = start_time(pgid);
        bool leader_gone = now == 0 && kill(pgid, 0) < 0 && errno == ESRCH;
        if ((now == recorded || leader_gone) && kill(-pgid, SIGKILL) == 0)
            killed = 1;
    }
    unlink(pidfile);
    return killed;
}

/* The child's environment, built before fork(): in a multi-threaded agent the child may only
 * make async-signal-safe calls until it execs. */
static char **build_env(const char *const *add)
{
    extern char **environ;
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    while (add && add[k])
        k++;
    char **env = calloc(n + k + 1, sizeof(char *));
    if (!env)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        /* What systemd gives the agent itself stays with it: a tool must not notify, feed the
         * watchdog or take sockets in the agent's name. */
        static const char *const own[] = {
            "NOTIFY_SOCKET=",  "WATCHDOG_PID=",  "WATCHDOG_USEC=",  "LISTEN_FDS=", "LISTEN_PID=",
            "LISTEN_FDNAMES=", "INVOCATION_ID=", "JOURNAL_STREAM=", NULL};
        bool skip = false;
        for (const char *const *p = own; *p && !skip; p++)
            skip = !strncmp(environ[i], *p, strlen(*p));
        if (skip)
            continue;
        bool replaced = false;
        for (size_t j = 0; j < k && !replaced; j++) {
            size_t eq = strcspn(add[j], "=");
            replaced = !strncmp(environ[i], add[j], eq) && environ[i][eq] == '=';
        }
        if (!replaced)
            env[m++] = environ[i];
    }
    for (size_t j = 0; j < k; j++)
        env[m++] = (char *)add[j];
    return env;
}

/* The file to exec: argv[0] itself when it names a path, else the first executable regular
 * file of that name in the PATH the child gets. Found before fork() (the child may only make
 * async-signal-safe calls) and run with execve(), never execvp(): when the kernel refuses a
 * file (ENOEXEC: no ELF, no #!), execvp hands it to /bin/sh, and the agent runs as root. */
static char *resolve(const char *name, char *const *env)
{
    if (strchr(name, '/'))
        return strdup(name);
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    for (char *const *e = env; *e; e++)
        if (!strncmp(*e, "PATH=", 5))
            path = *e + 5;
    for (const char *p = path;; p += strcspn(p, ":") + 1) {
        size_t len = strcspn(p, ":");
        char *full = NULL;
        struct stat sb;
        if (asprintf(&full, "%.*s%s%s", (int)len, p, len ? "/" : "", name) < 0)
            return NULL;
        if (stat(full, &sb) == 0 && S_ISREG(sb.st_mode) && access(full, X_OK) == 0)
            return full;
        free(full);
        if (!p[len])
            return strdup(name); /* not found: execve says so (ENOENT) */
    }
}

static void child_exec(const struct proc_opts *o, const char *file, char **env, int out_w,
                       int err_w)
{
    /* If the agent dies, its direct child dies with it; the rest of the group is ended by the
     * restarted agent (proc_kill_leftover). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The agent may block signals for its own loop; the command must start clean. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    dup2(out_w, STDOUT_FILENO);
    dup2(err_w, STDERR_FILENO);
    if (!strchr(file, '/')) { /* not in PATH: never a file of that name in our folder */
        static const char none[] = "exec failed: no such program in PATH\n";
        if (write(STDERR_FILENO, none, sizeof(none) - 1) < 0)
            _exit(127);
        _exit(127);
    }
    /* ETXTBSY: some process holds the file open for writing. A child forked by another of
     * the agent's threads holds a copy of every descriptor open at that instant until its own
     * exec, so a file just written and closed can be busy for a moment: tried again for up to
     * half a second, not reported as "not a program". */
    for (int tries = 0;; tries++) {
        execve(file, (char *const *)o->argv, env);
        if (errno != ETXTBSY || tries == 50)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* One precise line per cause (strerror is not async-signal-safe between fork and exec). */
    const char *why;
    switch (errno) {
    case ENOEXEC:
        why = "exec failed: not a program (no ELF, no #!), and no shell is tried\n";
        break;
    case ENOENT:
        why = "exec failed: no such program (or its #! interpreter is missing)\n";
        break;
    case EACCES:
        why = "exec failed: not executable (permission denied, or a noexec mount)\n";
        break;
    case ETXTBSY:
        why = "exec failed: the file is open for writing (text file busy)\n";
        break;
    default:
        why = "exec failed: no such program or not executable\n";
        break;
    }
    if (write(STDERR_FILENO, why, strlen(why)) < 0)
        _exit(127);
    _exit(127);
}

/* True once the leader has exited; it stays a zombie (WNOWAIT), so its pid, which names the
 * process group, cannot be reused before we kill the group. */
static bool leader_exited(pid_t pid)
{
    siginfo_t info = {0};
    return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

/* Without this record a crash of the agent would leave the tool unkillable by the next one:
 * refuse to run rather than run unrecorded. Not fsynced: it matters only while the machine is up
 * (a power loss ends the tool too), and it is written before every tool a step runs, inside the
 * node's downtime. */
static int record_pid(const char *pidfile, pid_t pid, baton_err_t *err)
{
    char line[64];
    int len = snprintf(line, sizeof(line), "%d %llu\n", (int)pid, start_time(pid));
    return fs_write_replace(pidfile, line, (size_t)len, 0600, false, err);
}

/* One command while it runs: its output pipes, its leader, its deadlines. */
struct watch {
    pid_t pid;
    int pidfd;            /* the leader's exit, seen at once (Linux 5.3); -1: looked for */
    int pipes[2];         /* stdout, stderr; -1 once closed */
    bool leader_done;     /* the leader exited */
    uint64_t deadline;    /* SIGTERM then (0: none, or past) */
    uint64_t kill_at;     /* SIGKILL then, after the grace (0: none) */
    uint64_t drain_until; /* the leader exited: its output read until then at most */
    size_t tail_len;
};

/* The clock's part of one turn: the leader's exit, the deadline and the grace after it. True
 * once the watch is over (the leader exited and its output was read, or the drain ran out). */
static bool watch_time(struct watch *w, struct proc_result *ret, uint64_t t)
{
    /* Checked before the deadline: after a pause of ours (SIGSTOP, a suspended VM) the clock
     * may be past it while the command finished in time, which is no time-out. */
    if (!w->leader_done && leader_exited(w->pid)) {
        /* The command is over. What it left in its group (a hook's `sleep 600 &`) ends with it
         * now, not when it lets go of our pipes; and the output still buffered is read for
         * PROC_DRAIN_MS at most, since a process that left the group (setsid) may hold a pipe
         * for ever. */
        w->leader_done = true;
        kill(-w->pid, SIGKILL);
        w->drain_until = t + PROC_DRAIN_MS;
        w->deadline = w->kill_at = 0;
    }
    if (w->leader_done && ((w->pipes[0] < 0 && w->pipes[1] < 0) || t >= w->drain_until))
        return true;
    if (w->deadline && t >= w->deadline) {
        ret->timed_out = true;
        kill(w->pid, SIGTERM); /* also a leader that left its group */
        kill(-w->pid, SIGTERM);
        w->kill_at = t + PROC_KILL_GRACE_MS;
        w->deadline = 0;
    }
    if (w->kill_at && t >= w->kill_at) {
        kill(w->pid, SIGKILL);
        kill(-w->pid, SIGKILL);
        w->kill_at = 0;
    }
    return false;
}

/* When the next turn is due: the first of its timers, and at least once a second (the tick). */
static uint64_t watch_wake(const struct watch *w, uint64_t t)
{
    uint64_t wake = t + 1000;
    if (w->deadline && w->deadline < wake)
        wake = w->deadline;
    if (w->kill_at && w->kill_at < wake)
        wake = w->kill_at;
    if (w->drain_until && w->drain_until < wake)
        wake = w->drain_until;
    if (!w->leader_done && w->pidfd < 0 && t + PROC_POLL_MS < wake)
        wake = t + PROC_POLL_MS;
    return wake;
}

/* Reads the pipes poll found ready: stdout to on_stdout (whose refusal ends the command), the
 * rest into the tail; a pipe at its end is closed. Returns r, or the refusal. */
static int watch_read(const struct proc_opts *o, struct watch *w, const struct pollfd *fds,
                      const int *which, int nfds, struct proc_result *ret, int r, baton_err_t *err)
{
    char buf[64 * 1024];
    for (int k = 0; k < nfds; k++) {
        int i = which[k];
        if (i == 2 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
            continue; /* the pidfd: the leader is looked at on the next turn */
        ssize_t got = read(w->pipes[i], buf, sizeof(buf));
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0) {
            close(w->pipes[i]);
            w->pipes[i] = -1;
            continue;
        }
        if (i == 0 && o->on_stdout) {
            if (r == 0 && o->on_stdout(buf, (size_t)got, o->userdata) < 0) {
                r = baton_err_set(err, -ECANCELED, "%s: output rejected", o->argv[0]);
                kill(-w->pid, SIGKILL);
            }
        } else {
            tail_add(ret->tail, &w->tail_len, buf, (size_t)got);
        }
    }
    return r;
}

int proc_run(const struct proc_opts *o, struct proc_result *ret, baton_err_t *err)
{
    int out[2], errp[2];
    memset(ret, 0, sizeof(*ret));
    if (pipe2(out, O_CLOEXEC) < 0)
        return baton_err_set(err, -errno, "pipe: %s", strerror(errno));
    if (pipe2(errp, O_CLOEXEC) < 0) {
        int e = errno;
        close(out[0]), close(out[1]);
        return baton_err_set(err, -e, "pipe: %s", strerror(e));
    }
    char **env = build_env(o->env_add);
    char *file = env ? resolve(o->argv[0], env) : NULL;
    pid_t pid = file ? fork() : -1;
    if (pid < 0) {
        int e = file ? errno : ENOMEM;
        free(env);
        free(file);
        close(out[0]), close(out[1]), close(errp[0]), close(errp[1]);
        return baton_err_set(err, -e, "fork for %s: %s", o->argv[0], strerror(e));
    }
    if (pid == 0)
        child_exec(o, file, env, out[1], errp[1]);
    free(env);
    free(file);
    setpgid(pid, pid); /* also here: no race with the child's own call */
    close(out[1]);
    close(errp[1]);
    baton_err_t werr = {0};
    if (o->pidfile && record_pid(o->pidfile, pid, &werr) < 0) {
        kill(-pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        close(out[0]), close(errp[0]);
        return baton_err_set(err, werr.code, "%s: %s", o->argv[0], werr.msg);
    }

    /* The leader's exit is seen at once through a pidfd (Linux 5.3); without one it is
     * looked for every PROC_POLL_MS. */
    struct watch w = {.pid = pid,
                      .pidfd = (int)syscall(SYS_pidfd_open, pid, 0),
                      .pipes = {out[0], errp[0]},
                      .deadline = o->timeout_ms ? mono_ms() + o->timeout_ms : 0};
    int r = 0;
    for (;;) {
        uint64_t t = mono_ms();
        if (watch_time(&w, ret, t))
            break;
        uint64_t wake = watch_wake(&w, t);
        struct pollfd fds[3];
        int nfds = 0, which[3];
        for (int i = 0; i < 2; i++)
            if (w.pipes[i] >= 0)
                which[nfds] = i, fds[nfds++] = (struct pollfd){.fd = w.pipes[i], .events = POLLIN};
        if (!w.leader_done && w.pidfd >= 0)
            which[nfds] = 2, fds[nfds++] = (struct pollfd){.fd = w.pidfd, .events = POLLIN};
        int n = poll(fds, (nfds_t)nfds, (int)(wake - t));
        if (o->tick)
            o->tick(o->userdata);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = baton_err_set(err, -errno, "poll: %s", strerror(errno));
            kill(-pid, SIGKILL);
            break;
        }
        r = watch_read(o, &w, fds, which, nfds, ret, r, err);
    }
    for (int i = 0; i < 2; i++)
        if (w.pipes[i] >= 0)
            close(w.pipes[i]);
    if (w.pidfd >= 0)
        close(w.pidfd);
    /* Whatever the command left running in its group does not outlive it (also when the loop
     * ended on an error before the leader did): killed before the leader is reaped, while its
     * pid still names the group and cannot be anyone else's. */
    kill(-pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (o->pidfile)
        unlink(o->pidfile);
    if (WIFEXITED(status)) {
        ret->exit_code = WEXITSTATUS(status);
    } else {
        ret->exit_code = -1;
        ret->term_signal = WTERMSIG(status);
    }
    return r;
}

void proc_describe(const struct proc_result *r, uint64_t timeout_ms, char *buf, size_t len)
{
    /* The last non-empty line of output says most about why a command failed. */
    char last[512] = "";
    const char *end = r->tail + strlen(r->tail);
    while (end > r->tail && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    const char *begin = end;
    while (begin > r->tail && begin[-1] != '\n')
        begin--;
    snprintf(last, sizeof(last), "%.*s", (int)(end - begin), begin);
    if (r->timed_out)
        snprintf(buf, len, "timed out after %llu s%s%s", (unsigned long long)(timeout_ms / 1000),
                 *last ? ": " : "", last);
    else if (r->term_signal)
        snprintf(buf, len, "killed by signal %d (%s)%s%s", r->term_signal,
                 strsignal(r->term_signal), *last ? ": " : "", last);
    else
        snprintf(buf, len, "exit code %d%s%s", r->exit_code, *last ? ": " : "", last);
}
