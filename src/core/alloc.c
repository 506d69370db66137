/* alloc.c — the one allocation choke point: 64-byte-aligned buffers,
 * overflow-checked sizes, clean failure with a message, a test hook that
 * injects allocation failure (as lua's debug_realloc does), and how much
 * memory the process may fill.
 * Includes: core.h, libc, POSIX sysconf. */
#define _GNU_SOURCE
#include "dc/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sysinfo.h>
#endif

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

/* A cgroup limit file's value: bytes, or -1 for "max", missing or junk. */
static int64_t cgroup_limit(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[64] = {0};
    int64_t v = -1;
    if (fgets(buf, sizeof buf, f)) {
        char *end;
        long long x = strtoll(buf, &end, 10);
        if (end != buf && x > 0) v = x;
    }
    fclose(f);
    return v;
}

int64_t dc_memory_total(void)
{
    int64_t total = 0;
#ifdef __linux__
    struct sysinfo si;
    if (sysinfo(&si) == 0) total = ((int64_t)si.totalram + (int64_t)si.totalswap) * (int64_t)si.mem_unit;
#endif
    if (total <= 0) {
        long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
        if (pages > 0 && size > 0) total = (int64_t)pages * size;
    }
    /* this process's memory cgroup (v2: "0::/path"; v1: "N:memory:/path")
     * and every cgroup above it, up to the root */
    char line[1024], dir[1024] = "", file[1200];
    int v2 = 1;
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *rest = strchr(line, ':'), *path = rest ? strchr(rest + 1, ':') : NULL;
        if (!path) continue;
        path[strcspn(path, "\n")] = '\0';
        if (strncmp(rest, ":memory:", 8) == 0 || (strncmp(rest, "::", 2) == 0 && !dir[0])) {
            v2 = strncmp(rest, "::", 2) == 0;
            snprintf(dir, sizeof dir, "%s", path + 1);
        }
    }
    if (f) fclose(f);
    for (;;) {
        snprintf(file, sizeof file, "/sys/fs/cgroup%s%s/%s", v2 ? "" : "/memory", strcmp(dir, "/") ? dir : "",
                 v2 ? "memory.max" : "memory.limit_in_bytes");
        int64_t v = cgroup_limit(file);
        if (v > 0 && (total <= 0 || v < total)) total = v;
        char *slash = strrchr(dir, '/');
        if (!slash || dir[0] == '\0' || strcmp(dir, "/") == 0) break;
        *slash = '\0';
        if (dir[0] == '\0') snprintf(dir, sizeof dir, "/");
    }
    return total;
}

int64_t dc_memory_budget(void) { return dc_memory_total() / 10 * 9; }

int64_t dc_memory_available(void)
{
    long long kb = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (kb < 0 && fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %lld kB", &kb) != 1) kb = -1;
        fclose(f);
    }
    int64_t avail = kb > 0 ? (int64_t)kb * 1024 : 0, total = dc_memory_total();
    return total > 0 && avail > total ? total : avail; /* a cgroup's limit caps it */
}
