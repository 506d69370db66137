/* file.c — atomic file writes (temporary, fsync, rename, directory fsync),
 * whole-file reads and read-only memory maps.
 * Includes: dc/io.h, libc, POSIX. */
#define _POSIX_C_SOURCE 200809L
#include "dc/io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void afile_release(dc_afile *a)
{
    dc_free(a->path);
    dc_free(a->tmp);
    a->path = a->tmp = NULL;
    a->f = NULL;
}

dc_status dc_afile_open(dc_afile *a, const char *path)
{
    memset(a, 0, sizeof *a);
    size_t n = strlen(path) + 32;
    a->path = dc_xstrdup(path);
    a->tmp = dc_xmalloc(n);
    snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        int e = errno;
        dc_status s = dc_set_error(DC_STATUS_IO, "%s: cannot create file: %s",
                                   path, strerror(e));
        afile_release(a);
        return s;
    }
    return DC_OK;
}

dc_status dc_afile_write(dc_afile *a, const void *buf, size_t n)
{
    if (a->failed) return DC_STATUS_IO;
    if (n && fwrite(buf, 1, n, a->f) != n) {
        a->failed = 1;
        return dc_set_error(DC_STATUS_IO, "%s: write failed: %s", a->path,
                            strerror(errno));
    }
    return DC_OK;
}

/* fsync of the directory makes the rename itself durable. */
static void sync_dir_of(const char *path)
{
    char *copy = dc_xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    dc_free(copy);
}

dc_status dc_afile_commit(dc_afile *a)
{
    dc_status s = DC_OK;
    if (a->failed) {
        s = DC_STATUS_IO; /* message already set by the failing write */
    } else if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0) {
        s = dc_set_error(DC_STATUS_IO, "%s: write failed: %s", a->path,
                         strerror(errno));
    }
    if (fclose(a->f) != 0 && s == DC_OK)
        s = dc_set_error(DC_STATUS_IO, "%s: write failed: %s", a->path,
                         strerror(errno));
    if (s == DC_OK && rename(a->tmp, a->path) != 0)
        s = dc_set_error(DC_STATUS_IO, "%s: cannot replace file: %s", a->path,
                         strerror(errno));
    if (s != DC_OK) unlink(a->tmp);
    else sync_dir_of(a->path);
    afile_release(a);
    return s;
}

void dc_afile_abort(dc_afile *a)
{
    if (a->f) {
        fclose(a->f);
        unlink(a->tmp);
    }
    afile_release(a);
}

dc_status dc_write_file_atomic(const char *path, const void *buf, size_t n)
{
    dc_afile a;
    dc_status s = dc_afile_open(&a, path);
    if (s) return s;
    dc_afile_write(&a, buf, n);
    return dc_afile_commit(&a);
}

dc_status dc_read_file(const char *path, size_t max_bytes, char **out,
                       size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return dc_set_error(DC_STATUS_IO, "%s: cannot open: %s", path,
                            strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return dc_set_error(DC_STATUS_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return dc_set_error(DC_STATUS_FORMAT, "%s: file too large (%lld bytes, limit %zu)",
                            path, (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = dc_malloc(n + 1, path);
    if (!buf) {
        fclose(f);
        return DC_STATUS_NOMEM;
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        dc_free(buf);
        return dc_set_error(DC_STATUS_IO, "%s: read failed", path);
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return DC_OK;
}

dc_status dc_map_file(const char *path, dc_mapped *m)
{
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return dc_set_error(DC_STATUS_IO, "%s: cannot open: %s", path,
                            strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return dc_set_error(DC_STATUS_IO, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return dc_set_error(DC_STATUS_IO, "%s: cannot map: %s", path,
                                strerror(e));
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return DC_OK;
}

void dc_unmap_file(dc_mapped *m)
{
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}
