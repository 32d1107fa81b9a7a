/* interrupt: see interrupt.h. */
#include "interrupt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t count;
static volatile sig_atomic_t last;
static const char *requested;      /* why, when not a signal */
static int pipe_fds[2] = {-1, -1}; /* the self-pipe: [0] polled, [1] written by the handler */

static void on_signal(int sig)
{
    int saved = errno;
    last = sig;
    if (count < 2)
        count++;
    if (pipe_fds[1] >= 0 && write(pipe_fds[1], "", 1) < 0) {
        /* full: a byte is there already, which is all a poll needs */
    }
    errno = saved;
}

int interrupt_fd(void)
{
    return pipe_fds[0];
}

int interrupt_drain(void)
{
    char buf[64];
    while (pipe_fds[0] >= 0 && read(pipe_fds[0], buf, sizeof(buf)) > 0)
        ;
    return count;
}

void interrupt_install(void)
{
    if (pipe_fds[0] < 0 && pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
        pipe_fds[0] = pipe_fds[1] = -1; /* then only an interrupted poll notices */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int interrupt_count(void)
{
    return count;
}

const char *interrupt_name(void)
{
    if (last == 0 && requested)
        return requested;
    return last == SIGTERM ? "SIGTERM" : "SIGINT";
}

void interrupt_request(const char *why)
{
    requested = why;
    if (count == 0) {
        last = 0;
        count = 1;
    }
}
