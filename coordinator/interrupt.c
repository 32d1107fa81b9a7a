/* interrupt: see interrupt.h. */
#include "interrupt.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t count;
static volatile sig_atomic_t last;

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
    return last == SIGTERM ? "SIGTERM" : "SIGINT";
}
