/* progress.c — progress reporting for long work: a live bar with rate and
 * ETA on a terminal, periodic plain lines elsewhere (files, pipes, schedulers'
 * logs), nothing on ranks other than 0.
 * Includes: core.h, libc (POSIX isatty/fileno). */
#define _POSIX_C_SOURCE 200809L
#include "dc/core.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct dc_progress {
    dc_progress_opts o;
    char label[64];
    char note[64];
    uint64_t total, done;
    int tty;
    double t0, last_draw;
    int drawn; /* a bar is on screen and needs a final newline */
};

dc_progress_opts dc_progress_opts_default(void)
{
    dc_progress_opts o = {NULL, -1, 0.1, 10.0, 0, "it", 30};
    return o;
}

void dc_format_duration(char *buf, size_t n, double s)
{
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, n, "--:--");
        return;
    }
    unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%lu:%02lu", t / 60, t % 60);
}

dc_progress *dc_progress_start(const char *label, uint64_t total,
                               const dc_progress_opts *opts)
{
    dc_progress *p = dc_xcalloc(1, sizeof *p);
    p->o = opts ? *opts : dc_progress_opts_default();
    if (!p->o.out) p->o.out = stderr;
    if (!p->o.unit) p->o.unit = "it";
    if (p->o.width <= 0 || p->o.width > 200) p->o.width = 30;
    if (dc_log_rank() != 0) p->o.quiet = 1;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    if (p->o.force_tty >= 0) p->tty = p->o.force_tty;
    else p->tty = isatty(fileno(p->o.out));
    p->t0 = p->last_draw = dc_time_now();
    return p;
}

void dc_progress_set_note(dc_progress *p, const char *note)
{
    snprintf(p->note, sizeof p->note, "%s", note ? note : "");
}

/* One status text: "45.0%  1234/2742  512.3 it/s  ETA 0:03  note". */
static void format_status(const dc_progress *p, double now, int final,
                          char *buf, size_t n)
{
    double el = now - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0.0;
    char eta[24], elapsed[24];
    dc_format_duration(elapsed, sizeof elapsed, el);
    size_t off = 0;
    if (p->total > 0) {
        double frac = (double)p->done / (double)p->total;
        off += (size_t)snprintf(buf + off, n - off, "%5.1f%%  %llu/%llu", 100.0 * frac,
                                (unsigned long long)p->done,
                                (unsigned long long)p->total);
    } else {
        off += (size_t)snprintf(buf + off, n - off, "%llu", (unsigned long long)p->done);
    }
    if (off < n)
        off += (size_t)snprintf(buf + off, n - off, "  %.1f %s/s", rate, p->o.unit);
    if (off < n) {
        if (final || p->total == 0) {
            off += (size_t)snprintf(buf + off, n - off, "  %s", elapsed);
        } else {
            double left = rate > 0 ? (double)(p->total - p->done) / rate : -1;
            if (p->done > p->total) left = 0;
            dc_format_duration(eta, sizeof eta, left);
            off += (size_t)snprintf(buf + off, n - off, "  ETA %s", eta);
        }
    }
    if (off < n && p->note[0]) snprintf(buf + off, n - off, "  %s", p->note);
}

static void draw(dc_progress *p, double now, int final)
{
    char status[256];
    format_status(p, now, final, status, sizeof status);
    FILE *f = p->o.out;
    if (p->tty) {
        char bar[204];
        int w = p->o.width, fill = 0;
        if (p->total > 0) {
            double frac = (double)p->done / (double)p->total;
            if (frac > 1) frac = 1;
            fill = (int)(frac * w);
        }
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = '\0';
        /* \r returns to column 0; \033[K clears what a longer line left. */
        fprintf(f, "\r%s [%s] %s\033[K", p->label, bar, status);
        if (final) fputc('\n', f);
        p->drawn = !final;
    } else {
        fprintf(f, "%s: %s%s\n", p->label, status, final ? "  done" : "");
    }
    fflush(f);
    p->last_draw = now;
}

void dc_progress_update(dc_progress *p, uint64_t done)
{
    if (done > p->done) p->done = done;
    if (p->o.quiet) return;
    double now = dc_time_now();
    double every = p->tty ? p->o.tty_interval : p->o.plain_interval;
    if (now - p->last_draw >= every) draw(p, now, 0);
}

void dc_progress_finish(dc_progress *p)
{
    if (!p) return;
    if (!p->o.quiet) draw(p, dc_time_now(), 1);
    dc_free(p);
}
