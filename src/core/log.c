/* log.c — levelled logging with a redirectable sink, an optional tee file
 * (a run's log.txt) and a rank filter for distributed runs.
 * Includes: core.h, libc. */
#include "dc/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Process-wide configuration; set by the entry point before threads start. */
static struct {
    dc_log_level level;
    dc_log_hook hook;
    void *user;
    FILE *tee;
    int rank;
    int all_ranks;
    double t0;
} cfg = {DC_LOG_INFO, NULL, NULL, NULL, 0, 0, -1.0};

void dc_log_set_level(dc_log_level level) { cfg.level = level; }
dc_log_level dc_log_get_level(void) { return cfg.level; }

void dc_log_set_hook(dc_log_hook hook, void *user)
{
    cfg.hook = hook;
    cfg.user = user;
}

void dc_log_set_tee(FILE *f) { cfg.tee = f; }

void dc_log_set_rank(int rank, int all_ranks)
{
    cfg.rank = rank;
    cfg.all_ranks = all_ranks;
}

int dc_log_rank(void) { return cfg.rank; }

static const char level_char[] = {'D', 'I', 'W', 'E'};

void dc_logv(dc_log_level level, const char *fmt, va_list ap)
{
    if (level < cfg.level || level >= DC_LOG_OFF) return;
    if (cfg.rank != 0 && !cfg.all_ranks) return;
    if (cfg.t0 < 0) cfg.t0 = dc_time_now();

    char line[2048];
    int off;
    double t = dc_time_now() - cfg.t0;
    if (cfg.all_ranks)
        off = snprintf(line, sizeof line, "[%c %8.2fs r%d] ", level_char[level],
                       t, cfg.rank);
    else
        off = snprintf(line, sizeof line, "[%c %8.2fs] ", level_char[level], t);
    if (off < 0) off = 0;
    vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
    size_t len = strlen(line);
    while (len > 0 && line[len - 1] == '\n') line[--len] = '\0';

    if (cfg.hook)
        cfg.hook(level, line, cfg.user);
    else
        fprintf(stderr, "%s\n", line);
    if (cfg.tee) {
        fprintf(cfg.tee, "%s\n", line);
        fflush(cfg.tee);
    }
}

void dc_log(dc_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dc_logv(level, fmt, ap);
    va_end(ap);
}
