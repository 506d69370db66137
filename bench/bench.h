/* bench.h — what the benchmark programs share. */
#ifndef DC_BENCH_H
#define DC_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Peak resident memory of this process (VmHWM): unlike getrusage's
 * ru_maxrss, it does not inherit the forking parent's figure. */
static inline double peak_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kb = atof(line + 6);
    if (f) fclose(f);
    return kb / 1024.0;
}

#endif
