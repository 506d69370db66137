/* time.c — monotonic wall-clock timer.
 * Includes: core.h, libc (POSIX clock_gettime). */
#define _POSIX_C_SOURCE 200809L
#include "dc/core.h"

#include <time.h>

double dc_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
