/* dc/core.h — the bottom layer of deepercluster: status codes and error
 * messages, always-on assertions, logging, checked allocation, monotonic
 * timers, the counter-based RNG and the progress reporter.
 *
 * Includes: libc only. Every other module may include this header.
 *
 * Process-wide settings (log level, log sink, rank, abort hook) are set once by
 * the program's entry point before any worker thread starts; the library never
 * changes them itself. The last-error message is thread-local.
 */
#ifndef DC_CORE_H
#define DC_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DC_VERSION_STRING "0.1.0"
/// The version of the library linked at run time (DC_VERSION_STRING is the
/// one compiled against): a program can check that they agree.
const char *dc_version(void);

#if defined(__GNUC__)
#define DC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define DC_NORETURN __attribute__((noreturn))
#else
#define DC_PRINTF(a, b)
#define DC_NORETURN
#endif

/* ------------------------------------------------------------------------ */
/* Status codes and the last-error message                                  */
/* ------------------------------------------------------------------------ */

typedef enum dc_status {
    DC_OK = 0,
    DC_STATUS_IO,          /* open/read/write/rename failed                 */
    DC_STATUS_FORMAT,      /* a file's contents are malformed               */
    DC_STATUS_ARG,         /* a caller-supplied value is invalid            */
    DC_STATUS_NOMEM,       /* allocation failed                             */
    DC_STATUS_UNSUPPORTED, /* valid but not handled (e.g. big-endian dtype) */
    DC_STATUS_COMM,        /* distributed communication failed              */
    DC_STATUS_INTERRUPTED, /* stopped by a signal                           */
    DC_STATUS_INTERNAL,
} dc_status;

/// Short constant name of a status ("io", "format", ...). Never NULL.
const char *dc_status_str(dc_status s);

/// Message of the last error set on this thread ("" if none). Valid until the
/// next dc_set_error on the same thread.
const char *dc_last_error(void);

/// Records a formatted message as this thread's last error and returns `s`,
/// so that callers can write `return dc_set_error(DC_STATUS_IO, "...")`.
dc_status dc_set_error(dc_status s, const char *fmt, ...) DC_PRINTF(2, 3);

/// Clears this thread's last error.
void dc_clear_error(void);

/* ------------------------------------------------------------------------ */
/* Assertions (always on) and the abort hook                                */
/* ------------------------------------------------------------------------ */

/// Called by DC_ASSERT/dc_fatal after printing, before abort(). The MPI build
/// installs a hook that calls MPI_Abort so that no rank is left hanging.
typedef void (*dc_abort_hook)(void);
void dc_set_abort_hook(dc_abort_hook hook);

DC_NORETURN void dc_assert_fail(const char *file, int line, const char *expr);
DC_NORETURN void dc_fatal(const char *fmt, ...) DC_PRINTF(1, 2);

/// Invariant check for programmer errors: never compiled out.
#define DC_ASSERT(cond) \
    ((cond) ? (void)0 : dc_assert_fail(__FILE__, __LINE__, #cond))

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum dc_log_level {
    DC_LOG_DEBUG = 0,
    DC_LOG_INFO = 1,
    DC_LOG_WARN = 2,
    DC_LOG_ERROR = 3,
    DC_LOG_OFF = 4,
} dc_log_level;

/// A log sink receives one formatted line (no trailing newline).
typedef void (*dc_log_hook)(dc_log_level level, const char *line, void *user);

/// Messages below `level` are dropped. Default DC_LOG_INFO.
void dc_log_set_level(dc_log_level level);
dc_log_level dc_log_get_level(void);
/// Replaces the default sink (stderr). NULL restores the default.
void dc_log_set_hook(dc_log_hook hook, void *user);
/// Also appends every emitted line to `f` (e.g. a run's log.txt); NULL stops.
/// The caller keeps ownership of `f`.
void dc_log_set_tee(FILE *f);
/// Rank of this process; only rank 0 emits unless `all_ranks` is set, in
/// which case lines are prefixed with the rank.
void dc_log_set_rank(int rank, int all_ranks);
int dc_log_rank(void);

void dc_log(dc_log_level level, const char *fmt, ...) DC_PRINTF(2, 3);
void dc_logv(dc_log_level level, const char *fmt, va_list ap);
#define dc_log_debug(...) dc_log(DC_LOG_DEBUG, __VA_ARGS__)
#define dc_log_info(...) dc_log(DC_LOG_INFO, __VA_ARGS__)
#define dc_log_warn(...) dc_log(DC_LOG_WARN, __VA_ARGS__)
#define dc_log_error(...) dc_log(DC_LOG_ERROR, __VA_ARGS__)

/* ------------------------------------------------------------------------ */
/* Allocation                                                               */
/* ------------------------------------------------------------------------ */

/// Allocates `n` bytes aligned to 64 (for SIMD and cache lines). On failure
/// returns NULL and sets the last error (DC_STATUS_NOMEM) naming `what`.
/// Free with dc_free. n == 0 returns a valid unique pointer.
void *dc_malloc(size_t n, const char *what);
/// As dc_malloc, zero-filled; also fails cleanly when count*size overflows.
void *dc_calloc(size_t count, size_t size, const char *what);
/// Allocation that cannot fail: aborts with a message (for small bookkeeping).
void *dc_xmalloc(size_t n);
void *dc_xcalloc(size_t count, size_t size);
void *dc_xrealloc(void *p, size_t n);
char *dc_xstrdup(const char *s);
/// Frees memory from dc_malloc/dc_calloc/dc_x*; NULL is accepted.
void dc_free(void *p);

/// Test hook: after `n` more successful allocations on this thread, every
/// dc_malloc/dc_calloc fails (x-variants then abort). n < 0 disables it.
void dc_alloc_fail_after(long n);

/// Bytes of memory this process can use: physical memory plus swap, or the
/// control group's limit when lower (cgroup v2 memory.max, v1
/// memory.limit_in_bytes). 0 when unknown. Callers compare the buffers they
/// are about to fill against it, so that a configuration too large for the
/// machine fails with a message instead of being killed by the kernel.
int64_t dc_memory_total(void);
/// Bytes of memory free for new work now (Linux's MemAvailable, at most
/// dc_memory_total()), or 0 when unknown.
int64_t dc_memory_available(void);
/// What one job's big buffers may take: nine tenths of dc_memory_total(),
/// the rest left for libraries, stacks and small allocations (0: unknown).
int64_t dc_memory_budget(void);

/// Overflow-checked multiplication: returns 0 and sets *out, or -1.
int dc_mul_size(size_t a, size_t b, size_t *out);

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */
/* ------------------------------------------------------------------------ */

/// Seconds from an arbitrary fixed point, monotonic (CLOCK_MONOTONIC).
double dc_time_now(void);

/* ------------------------------------------------------------------------ */
/* Counter-based RNG: Philox4x32-10                                         */
/* ------------------------------------------------------------------------ */

/* A draw is a pure function of (seed, stream, epoch, sample, position), so a
 * sample's augmentation or a k-means initialisation does not depend on thread
 * scheduling or on how many draws other samples made. Streams name the
 * purpose of the draws (see dc_rng_stream below) so that purposes never
 * share random numbers. */

typedef enum dc_rng_stream {
    DC_RNG_STREAM_INIT = 1,    /* weight initialisation              */
    DC_RNG_STREAM_AUGMENT = 2, /* per-sample data augmentation       */
    DC_RNG_STREAM_SAMPLER = 3, /* epoch sampling and shuffling       */
    DC_RNG_STREAM_KMEANS = 4,  /* centroid init and empty splits     */
    DC_RNG_STREAM_PCA = 5,     /* PCA sub-sampling                   */
    DC_RNG_STREAM_DROPOUT = 6, /* dropout masks                      */
    DC_RNG_STREAM_EVAL = 7,    /* evaluation (probe splits, k-NN)    */
    DC_RNG_STREAM_TEST = 100,
} dc_rng_stream;

typedef struct dc_rng {
    uint32_t key[2];  /* from seed and stream                     */
    uint32_t ctr[4];  /* ctr[0..1]: block index; ctr[2..3]: sub    */
    uint32_t buf[4];  /* outputs of the current block             */
    int avail;        /* unread words left in buf                 */
} dc_rng;

/// Raw Philox4x32-10 block function (exposed for known-answer tests).
void dc_philox4x32_10(uint32_t out[4], const uint32_t ctr[4],
                      const uint32_t key[2]);

/// Initialises a generator for (seed, stream, a, b): `a` and `b` are two
/// further 32-bit coordinates, usually (epoch, sample index). Generators with
/// any coordinate different produce independent sequences.
void dc_rng_init(dc_rng *r, uint64_t seed, uint32_t stream, uint32_t a,
                 uint32_t b);

/// Jumps to output block `block` (4 words each) of the sequence, so that
/// chunks of one sequence can be drawn by different threads.
void dc_rng_seek(dc_rng *r, uint64_t block);

uint32_t dc_rng_u32(dc_rng *r);
uint64_t dc_rng_u64(dc_rng *r);
/// Uniform integer in [0, n), unbiased (rejection); n > 0.
uint64_t dc_rng_below(dc_rng *r, uint64_t n);
/// Uniform float in [0, 1) with 24 random bits.
float dc_rng_uniform(dc_rng *r);
/// Uniform double in [0, 1) with 53 random bits.
double dc_rng_uniform_double(dc_rng *r);
/// Standard normal (Box–Muller on two doubles).
double dc_rng_normal(dc_rng *r);
/// k distinct values of [0, n) in random order (k <= n), in O(k) memory.
void dc_rng_sample_distinct(dc_rng *r, uint64_t n, size_t k, int64_t *out);
/// Fisher–Yates shuffle of an int32 array.
void dc_rng_shuffle_i32(dc_rng *r, int32_t *a, size_t n);
/// The same shuffle (the same draws) of an int64 array.
void dc_rng_shuffle_i64(dc_rng *r, int64_t *a, size_t n);

/* ------------------------------------------------------------------------ */
/* Progress reporter                                                        */
/* ------------------------------------------------------------------------ */

/* On a terminal: a live bar redrawn in place at most every `tty_interval`
 * seconds: "label  [#####.....]  45.0%  1234/2742  512.3 it/s  ETA 0:03".
 * Otherwise (a file, a pipe, a cluster job's log): a plain line every
 * `plain_interval` seconds and one at the end. Silent on ranks other than 0
 * and when quiet. */

typedef struct dc_progress_opts {
    FILE *out;             /* default stderr                          */
    int force_tty;         /* -1 detect (default), 0 plain, 1 bar     */
    double tty_interval;   /* seconds between redraws (default 0.1)   */
    double plain_interval; /* seconds between plain lines (default 10) */
    int quiet;             /* 1: print nothing                        */
    const char *unit;      /* rate unit, default "it"                 */
    int width;             /* bar width in characters (default 30)    */
} dc_progress_opts;

typedef struct dc_progress dc_progress;

/// The defaults above; change fields, then pass to dc_progress_start.
/// Intervals of 0 redraw on every update.
dc_progress_opts dc_progress_opts_default(void);

/// Starts reporting `label`, `total` items (0 if unknown). opts may be NULL.
/// Returns an owned handle: end it with dc_progress_finish.
dc_progress *dc_progress_start(const char *label, uint64_t total,
                               const dc_progress_opts *opts);
/// Sets the number of items done so far (monotone) and redraws if due.
void dc_progress_update(dc_progress *p, uint64_t done);
/// Sets a short free-text suffix (e.g. "loss 2.31"); copied.
void dc_progress_set_note(dc_progress *p, const char *note);
/// Prints the final line and frees the handle. NULL is accepted.
void dc_progress_finish(dc_progress *p);

/// Formats seconds as "1:02:03" or "2:03" into buf (at least 16 bytes).
void dc_format_duration(char *buf, size_t n, double seconds);

#ifdef __cplusplus
}
#endif
#endif /* DC_CORE_H */
