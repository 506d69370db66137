/* test_core.c — status/error messages, assertions, logging, allocation,
 * timers and progress reporting. */
#define _POSIX_C_SOURCE 200809L
#include "dc/core.h"
#include "test.h"

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

static void test_errors(void)
{
    dc_clear_error();
    CHECK(strcmp(dc_last_error(), "") == 0);
    dc_status s = dc_set_error(DC_STATUS_FORMAT, "%s: bad %d", "x.npy", 7);
    CHECK(s == DC_STATUS_FORMAT);
    CHECK(strcmp(dc_last_error(), "x.npy: bad 7") == 0);
    /* the last message wrapped in context: its own text, once */
    dc_set_error(DC_STATUS_FORMAT, "%s: not a model (%s)", "w.json", dc_last_error());
    CHECK(strcmp(dc_last_error(), "w.json: not a model (x.npy: bad 7)") == 0);
    CHECK(strcmp(dc_status_str(DC_OK), "ok") == 0);
    CHECK(strcmp(dc_status_str(DC_STATUS_IO), "io") == 0);
    CHECK(strcmp(dc_status_str((dc_status)999), "unknown") == 0);
}

/* Runs fn in a child with stderr captured; returns its wait status. */
static int run_child(void (*fn)(void), char *out, size_t n)
{
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fds[0], out + got, n - 1 - got)) > 0) got += (size_t)r;
    out[got] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return st;
}

static void child_assert(void)
{
    int x = 1;
    DC_ASSERT(x == 2);
}

static void child_assert_ok(void) { DC_ASSERT(1 + 1 == 2); }

static int hook_called;
static void abort_hook(void) { fprintf(stderr, "hook ran\n"); }
static void child_assert_hook(void)
{
    dc_set_abort_hook(abort_hook);
    DC_ASSERT(0 && "with hook");
}

static void test_assert(void)
{
    char out[1024];
    int st = run_child(child_assert, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK_STR_CONTAINS(out, "test_core.c:");
    CHECK_STR_CONTAINS(out, "x == 2");
    st = run_child(child_assert_ok, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = run_child(child_assert_hook, out, sizeof out);
    CHECK(WIFSIGNALED(st));
    CHECK_STR_CONTAINS(out, "hook ran");
    (void)hook_called;
}

typedef struct {
    char lines[8][256];
    int n;
} log_capture;

static void capture(dc_log_level level, const char *line, void *user)
{
    log_capture *c = user;
    (void)level;
    if (c->n < 8) snprintf(c->lines[c->n++], 256, "%s", line);
}

static void test_log(void)
{
    log_capture c = {0};
    dc_log_set_hook(capture, &c);
    dc_log_set_level(DC_LOG_INFO);
    dc_log_debug("hidden %d", 1);
    dc_log_info("shown %d", 2);
    dc_log_warn("warned\n");
    CHECK_EQ_INT(c.n, 2);
    CHECK_STR_CONTAINS(c.lines[0], "shown 2");
    CHECK_STR_CONTAINS(c.lines[0], "[I ");
    CHECK_STR_CONTAINS(c.lines[1], "[W ");
    CHECK(strchr(c.lines[1], '\n') == NULL); /* trailing newline stripped */

    /* Rank filter: rank 1 is silent unless all ranks are asked for. */
    dc_log_set_rank(1, 0);
    dc_log_error("from rank one");
    CHECK_EQ_INT(c.n, 2);
    dc_log_set_rank(1, 1);
    dc_log_error("from rank one");
    CHECK_EQ_INT(c.n, 3);
    CHECK_STR_CONTAINS(c.lines[2], "r1]");
    dc_log_set_rank(0, 0);

    /* Tee into a file. */
    const char *p = test_path("log.txt");
    FILE *f = fopen(p, "w");
    dc_log_set_tee(f);
    dc_log_info("to the file");
    dc_log_set_tee(NULL);
    fclose(f);
    char buf[256] = {0};
    f = fopen(p, "r");
    CHECK(f && fgets(buf, sizeof buf, f));
    if (f) fclose(f);
    CHECK_STR_CONTAINS(buf, "to the file");

    dc_log_set_level(DC_LOG_OFF);
    dc_log_error("nothing");
    CHECK_EQ_INT(c.n, 4);
    dc_log_set_level(DC_LOG_INFO);
    dc_log_set_hook(NULL, NULL);
}

static void test_alloc(void)
{
    for (size_t n = 0; n < 300; n += 37) {
        void *p = dc_malloc(n, "test");
        CHECK(p != NULL && ((uintptr_t)p % 64) == 0);
        dc_free(p);
    }
    int *z = dc_calloc(100, sizeof(int), "zeros");
    int allzero = 1;
    for (int i = 0; i < 100; i++) allzero &= z[i] == 0;
    CHECK(allzero);
    dc_free(z);
    dc_free(NULL);

    /* Overflowing sizes fail cleanly. */
    CHECK(dc_calloc(SIZE_MAX / 2, 4, "huge") == NULL);
    CHECK_STR_CONTAINS(dc_last_error(), "overflow");
    CHECK(dc_malloc(SIZE_MAX - 8, "huge") == NULL);
    CHECK_STR_CONTAINS(dc_last_error(), "out of memory");
    CHECK_STR_CONTAINS(dc_last_error(), "huge");

    /* Injected failure after two allocations. */
    dc_alloc_fail_after(2);
    void *a = dc_malloc(8, "a"), *b = dc_malloc(8, "b"), *c = dc_malloc(8, "c");
    CHECK(a && b && c == NULL);
    dc_alloc_fail_after(-1);
    void *d = dc_malloc(8, "d");
    CHECK(d != NULL);
    dc_free(a);
    dc_free(b);
    dc_free(d);

    size_t out;
    CHECK(dc_mul_size(3, 5, &out) == 0 && out == 15);
    CHECK(dc_mul_size(SIZE_MAX, 2, &out) != 0);
    char *s = dc_xstrdup("hello");
    CHECK(strcmp(s, "hello") == 0);
    dc_free(s);
}

static void test_timer(void)
{
    double t0 = dc_time_now();
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double dt = dc_time_now() - t0;
    CHECK(dt >= 0.019 && dt < 5.0);
    char buf[32];
    dc_format_duration(buf, sizeof buf, 65);
    CHECK(strcmp(buf, "1:05") == 0);
    dc_format_duration(buf, sizeof buf, 3725);
    CHECK(strcmp(buf, "1:02:05") == 0);
    dc_format_duration(buf, sizeof buf, -1);
    CHECK(strcmp(buf, "--:--") == 0);
}

static size_t read_all(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
    return got;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

static void test_progress(void)
{
    char buf[8192];
    /* Plain mode, every update printed (interval 0). */
    const char *p = test_path("progress-plain.txt");
    FILE *f = fopen(p, "w");
    dc_progress_opts o = dc_progress_opts_default();
    o.out = f;
    o.force_tty = 0;
    o.plain_interval = 0;
    o.unit = "img";
    dc_progress *pr = dc_progress_start("extract", 200, &o);
    for (int i = 1; i <= 4; i++) dc_progress_update(pr, (uint64_t)i * 50);
    dc_progress_set_note(pr, "loss 1.5");
    dc_progress_finish(pr);
    fclose(f);
    read_all(p, buf, sizeof buf);
    CHECK_EQ_INT(count_char(buf, '\n'), 5);
    CHECK(strchr(buf, '\r') == NULL);
    CHECK_STR_CONTAINS(buf, "extract:  25.0%  50/200");
    CHECK_STR_CONTAINS(buf, "img/s");
    CHECK_STR_CONTAINS(buf, "ETA");
    CHECK_STR_CONTAINS(buf, "100.0%  200/200");
    CHECK_STR_CONTAINS(buf, "loss 1.5  done");

    /* Plain mode with the default interval: only the final line. */
    f = fopen(p, "w");
    o.out = f;
    o.plain_interval = 10;
    pr = dc_progress_start("quick", 3, &o);
    for (int i = 1; i <= 3; i++) dc_progress_update(pr, (uint64_t)i);
    dc_progress_finish(pr);
    fclose(f);
    read_all(p, buf, sizeof buf);
    CHECK_EQ_INT(count_char(buf, '\n'), 1);

    /* Terminal mode: redrawn in place with \r, one final newline. */
    f = fopen(p, "w");
    o.out = f;
    o.force_tty = 1;
    o.tty_interval = 0;
    o.width = 10;
    pr = dc_progress_start("train", 10, &o);
    dc_progress_update(pr, 5);
    dc_progress_update(pr, 10);
    dc_progress_finish(pr);
    fclose(f);
    read_all(p, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "\rtrain [#####.....]  50.0%");
    CHECK_STR_CONTAINS(buf, "\rtrain [##########] 100.0%");
    CHECK_EQ_INT(count_char(buf, '\n'), 1);
    CHECK_EQ_INT(count_char(buf, '\r'), 3);

    /* Unknown total: counts and rate only. */
    f = fopen(p, "w");
    o.out = f;
    o.force_tty = 0;
    o.plain_interval = 0;
    pr = dc_progress_start("scan", 0, &o);
    dc_progress_update(pr, 7);
    dc_progress_finish(pr);
    fclose(f);
    read_all(p, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "scan: 7  ");

    /* Quiet, and ranks other than 0: nothing. */
    f = fopen(p, "w");
    o.out = f;
    o.quiet = 1;
    pr = dc_progress_start("q", 5, &o);
    dc_progress_update(pr, 5);
    dc_progress_finish(pr);
    o.quiet = 0;
    dc_log_set_rank(3, 0);
    pr = dc_progress_start("r3", 5, &o);
    dc_progress_update(pr, 5);
    dc_progress_finish(pr);
    dc_log_set_rank(0, 0);
    fclose(f);
    CHECK_EQ_INT(test_file_size(p), 0);
    dc_progress_finish(NULL);
}

int main(void)
{
    test_errors();
    test_assert();
    test_log();
    test_alloc();
    test_timer();
    test_progress();
    return TEST_SUMMARY();
}
