/* clock: the monotonic clock in milliseconds, for deadlines and durations (never the wall
 * clock, which an operator or NTP may step). The coordinator's engine wraps it as now_ms(), so
 * a test can give the loop a fake clock (client.h). */
#ifndef BATON_CLOCK_H
#define BATON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
