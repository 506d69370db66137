/* error.c — status names, the thread-local last-error message, always-on
 * assertions and the abort hook.
 * Includes: core.h, libc. */
#include "dc/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];

/* Process-wide; set once by the entry point before threads start. */
static dc_abort_hook abort_hook;

const char *dc_status_str(dc_status s)
{
    switch (s) {
    case DC_OK: return "ok";
    case DC_STATUS_IO: return "io";
    case DC_STATUS_FORMAT: return "format";
    case DC_STATUS_ARG: return "argument";
    case DC_STATUS_NOMEM: return "out-of-memory";
    case DC_STATUS_UNSUPPORTED: return "unsupported";
    case DC_STATUS_COMM: return "communication";
    case DC_STATUS_INTERRUPTED: return "interrupted";
    case DC_STATUS_INTERNAL: return "internal";
    }
    return "unknown";
}

const char *dc_last_error(void) { return last_error; }

const char *dc_version(void) { return DC_VERSION_STRING; }

dc_status dc_set_error(dc_status s, const char *fmt, ...)
{
    /* formatted apart first: the arguments may include dc_last_error()
     * itself, a message wrapped in context ("FILE: … (%s)") */
    char buf[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(last_error, buf, sizeof buf);
    return s;
}

void dc_clear_error(void) { last_error[0] = '\0'; }

void dc_set_abort_hook(dc_abort_hook hook) { abort_hook = hook; }

static DC_NORETURN void die(void)
{
    fflush(stdout);
    fflush(stderr);
    if (abort_hook) abort_hook();
    abort();
}

void dc_assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "deepercluster: assertion failed at %s:%d: %s\n", file,
            line, expr);
    die();
}

void dc_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("deepercluster: fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    die();
}
