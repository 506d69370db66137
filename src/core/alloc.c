/* alloc.c — the one allocation choke point: 64-byte-aligned buffers,
 * overflow-checked sizes, clean failure with a message, and a test hook that
 * injects allocation failure (as lua's debug_realloc does).
 * Includes: core.h, libc. */
#include "dc/core.h"

#include <stdlib.h>
#include <string.h>

enum { ALIGN = 64 };

static _Thread_local long fail_countdown = -1;

void dc_alloc_fail_after(long n) { fail_countdown = n; }

int dc_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

static void *raw_alloc(size_t n)
{
    if (fail_countdown == 0) return NULL;
    if (fail_countdown > 0) fail_countdown--;
    if (n > SIZE_MAX - ALIGN) return NULL;
    size_t rounded = (n + ALIGN - 1) / ALIGN * ALIGN;
    if (rounded == 0) rounded = ALIGN;
    return aligned_alloc(ALIGN, rounded);
}

void *dc_malloc(size_t n, const char *what)
{
    void *p = raw_alloc(n);
    if (!p)
        dc_set_error(DC_STATUS_NOMEM, "out of memory allocating %zu bytes for %s",
                     n, what ? what : "a buffer");
    return p;
}

void *dc_calloc(size_t count, size_t size, const char *what)
{
    size_t n;
    if (dc_mul_size(count, size, &n) != 0) {
        dc_set_error(DC_STATUS_NOMEM, "size overflow allocating %zu x %zu bytes for %s",
                     count, size, what ? what : "a buffer");
        return NULL;
    }
    void *p = dc_malloc(n, what);
    if (p) memset(p, 0, n);
    return p;
}

void *dc_xmalloc(size_t n)
{
    void *p = raw_alloc(n);
    if (!p) dc_fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *dc_xcalloc(size_t count, size_t size)
{
    size_t n;
    if (dc_mul_size(count, size, &n) != 0)
        dc_fatal("size overflow allocating %zu x %zu bytes", count, size);
    void *p = dc_xmalloc(n);
    memset(p, 0, n);
    return p;
}

void *dc_xrealloc(void *p, size_t n)
{
    /* Plain realloc keeps the block's alignment only up to malloc's; callers
     * of realloc are bookkeeping arrays, which do not need 64 bytes. */
    if (fail_countdown == 0) dc_fatal("out of memory reallocating %zu bytes", n);
    if (fail_countdown > 0) fail_countdown--;
    void *q = realloc(p, n ? n : 1);
    if (!q) dc_fatal("out of memory reallocating %zu bytes", n);
    return q;
}

char *dc_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = dc_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

void dc_free(void *p) { free(p); }
