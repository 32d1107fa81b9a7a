/* interrupt: see interrupt.h. */
#include "interrupt.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t count;
static volatile sig_atomic_t last;
static const char *requested; /* why, when not a signal */

static void on_signal(int sig)
{
    last = sig;
    if (count < 2)
        count++;
}

void interrupt_install(void)
{
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
