/* dc/io.h — files: atomic writes, whole-file reads, memory maps, and the
 * interchange formats every other module uses: .npy arrays, safetensors
 * weight files and JSON documents (through cJSON).
 *
 * Includes: dc/core.h, cJSON. Errors are returned as dc_status with a
 * message (dc_last_error) that names the file and the problem.
 */
#ifndef DC_IO_H
#define DC_IO_H

#include "dc/core.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

/* An atomic file: written to "<path>.tmp.<pid>", then flushed, fsync'd and
 * renamed over <path>, and the directory fsync'd. Until commit succeeds the
 * previous <path> is untouched; on any failure the temporary is removed. */
typedef struct dc_afile {
    FILE *f;
    char *path;
    char *tmp;
    int failed; /* a write failed: commit refuses */
} dc_afile;

dc_status dc_afile_open(dc_afile *a, const char *path);
dc_status dc_afile_write(dc_afile *a, const void *buf, size_t n);
/// Finishes the file and frees `a`'s resources, whatever the outcome.
dc_status dc_afile_commit(dc_afile *a);
/// Abandons the file (removes the temporary); `a` may be zero-initialised.
void dc_afile_abort(dc_afile *a);

/// Writes `n` bytes to `path` atomically.
dc_status dc_write_file_atomic(const char *path, const void *buf, size_t n);

/// Reads a whole file into a new NUL-terminated buffer (caller frees with
/// dc_free). Files larger than `max_bytes` are refused.
dc_status dc_read_file(const char *path, size_t max_bytes, char **out,
                       size_t *len);

/// A read-only memory map of a whole file. A zero-byte file maps to
/// data == NULL, size == 0.
typedef struct dc_mapped {
    const uint8_t *data;
    size_t size;
} dc_mapped;

dc_status dc_map_file(const char *path, dc_mapped *m);
void dc_unmap_file(dc_mapped *m);

/* ------------------------------------------------------------------------ */
/* Typed n-dimensional arrays                                               */
/* ------------------------------------------------------------------------ */

typedef enum dc_dtype {
    DC_DTYPE_F32 = 0,
    DC_DTYPE_I32,
    DC_DTYPE_I64,
    DC_DTYPE_U8,
} dc_dtype;

#define DC_MAX_DIMS 8

/// Bytes per element.
size_t dc_dtype_size(dc_dtype t);
/// Safetensors-style name: "F32", "I32", "I64", "U8".
const char *dc_dtype_name(dc_dtype t);

/// An array read from a file. `data` is either owned (read) or a view into a
/// private memory map (mapped); dc_array_free releases both kinds.
typedef struct dc_array {
    dc_dtype dtype;
    int ndim;
    int64_t shape[DC_MAX_DIMS];
    void *data;
    size_t nbytes;
    void *owned_;      /* internal: heap block to free        */
    dc_mapped map_;    /* internal: mapping to unmap          */
} dc_array;

/// Product of the shape (1 for a 0-d array).
int64_t dc_array_numel(const dc_array *a);
/// Releases what `a` holds and zeroes it; NULL and zeroed arrays are accepted.
void dc_array_free(dc_array *a);

/// Checks dtype, rank and shape (a -1 in `shape` matches any extent; shape
/// may be NULL to check only rank). On mismatch the error names `what`.
dc_status dc_array_expect(const dc_array *a, const char *what, dc_dtype dtype,
                          int ndim, const int64_t *shape);

/* ------------------------------------------------------------------------ */
/* .npy (NumPy format versions 1.0 and 2.0; C order, little-endian)          */
/* ------------------------------------------------------------------------ */

/// Writes an array atomically. version: 0 picks 1.0 when the header fits,
/// else 2.0; 1 or 2 forces that version.
dc_status dc_npy_write(const char *path, dc_dtype dtype, int ndim,
                       const int64_t *shape, const void *data);
dc_status dc_npy_write_version(const char *path, dc_dtype dtype, int ndim,
                               const int64_t *shape, const void *data,
                               int version);
/// An array written in pieces, in C order (more rows than fit in memory):
/// open with the whole shape, write the data as it comes, commit. The file
/// appears atomically at commit, which refuses one short of its shape; a
/// write past the shape is refused. abort (or a failed commit) leaves
/// nothing behind.
typedef struct dc_npy_writer {
    dc_afile a;
    size_t left; /* bytes still to write */
} dc_npy_writer;
dc_status dc_npy_writer_open(dc_npy_writer *w, const char *path, dc_dtype dtype, int ndim,
                             const int64_t *shape);
dc_status dc_npy_writer_write(dc_npy_writer *w, const void *data, size_t nbytes);
dc_status dc_npy_writer_commit(dc_npy_writer *w);
void dc_npy_writer_abort(dc_npy_writer *w);
/// Reads an array into owned memory.
dc_status dc_npy_read(const char *path, dc_array *out);
/// Maps an array (read-only pages, no copy): for files larger than memory.
dc_status dc_npy_map(const char *path, dc_array *out);

/// The header of a .npy file without reading its data: dtype, rank and
/// shape into `meta` (its data pointer NULL), the data's byte offset into
/// *data_off; the file's size is checked against the shape.
dc_status dc_npy_header(const char *path, dc_array *meta, size_t *data_off);

/* ------------------------------------------------------------------------ */
/* Row sources: float32 matrices larger than memory                         */
/* ------------------------------------------------------------------------ */

/* n rows of d floats read a block of consecutive rows at a time, from
 * memory (a view: nothing is copied), from a file (a .npy's data) with
 * pread into one buffer — the file is never mapped, so what it adds to the
 * resident set is that buffer — or from a function that fetches rows
 * (e.g. from other processes). Not for several threads at once. */
/// Fetches rows idx[0 … count) (ascending) or, when idx is NULL, rows
/// [first, first + count) into dst (count × d).
typedef dc_status (*dc_rows_fetch)(void *ctx, const int64_t *idx, int64_t first, int64_t count, float *dst);
typedef struct dc_rows {
    int64_t n;
    int d;
    const float *mem;    /* in memory; NULL otherwise                */
    int fd;              /* file: its descriptor (-1 otherwise)      */
    int64_t off;         /* file: byte offset of row 0               */
    char *path;          /* file: for messages                       */
    dc_rows_fetch fetch; /* a function's rows (NULL otherwise)       */
    void *ctx;
    float *buf;          /* file, function: cap rows, grown on demand */
    int64_t cap;
} dc_rows;

/// x (n×d) as a row source; nothing to free (dc_rows_close is harmless).
void dc_rows_memory(dc_rows *r, const float *x, int64_t n, int d);
/// A float32 2-D .npy as a row source with a buffer of `cap` rows (at
/// least 1); dc_rows_close.
dc_status dc_rows_open_npy(dc_rows *r, const char *path, int64_t cap);
/// The rows `fetch` gives (with ctx), n of d floats, read `cap` at a time;
/// dc_rows_close.
dc_status dc_rows_function(dc_rows *r, int64_t n, int d, dc_rows_fetch fetch, void *ctx, int64_t cap);
/// Rows [lo, hi) of `src` as a row source of their own (a file source gets
/// its own descriptor and buffer of `cap` rows); not for function sources.
dc_status dc_rows_slice(dc_rows *out, const dc_rows *src, int64_t lo, int64_t hi, int64_t cap);
/// Rows [row, row + count) into *out, valid until the next call on r (the
/// buffer grows to count rows when smaller). Fails with the file's name on
/// a read error.
dc_status dc_rows_read(dc_rows *r, int64_t row, int64_t count, const float **out);
/// Rows idx[0 … cnt) of r copied into dst (cnt×d): any order, repeats
/// allowed, but ascending for a function source; runs of consecutive
/// indices are read at once.
dc_status dc_rows_gather(dc_rows *r, const int64_t *idx, int64_t cnt, float *dst);
/// Whether r is read a block at a time (a file or a function), not a view
/// of memory.
int dc_rows_streamed(const dc_rows *r);
void dc_rows_close(dc_rows *r);

/* ------------------------------------------------------------------------ */
/* safetensors                                                              */
/* ------------------------------------------------------------------------ */

/* Layout: u64 little-endian header length, a JSON header
 * {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}},
 * padded with spaces to a multiple of 8, then the raw tensors. */

typedef struct dc_st_writer dc_st_writer;

dc_st_writer *dc_st_writer_new(void);
/// Adds a tensor. The name is copied; `data` is borrowed until write/free.
/// Adding a name twice is a programmer error (asserts).
void dc_st_writer_add(dc_st_writer *w, const char *name, dc_dtype dtype,
                      int ndim, const int64_t *shape, const void *data);
/// Sets a metadata string (copied); setting a key again replaces it.
void dc_st_writer_set_meta(dc_st_writer *w, const char *key, const char *value);
/// Writes the file atomically; tensors are stored in the order added.
dc_status dc_st_writer_write(const dc_st_writer *w, const char *path);
void dc_st_writer_free(dc_st_writer *w);

typedef struct dc_st_tensor {
    const char *name;
    dc_dtype dtype;
    int ndim;
    int64_t shape[DC_MAX_DIMS];
    const void *data; /* inside the map; not necessarily aligned */
    size_t nbytes;
} dc_st_tensor;

typedef struct dc_st_file dc_st_file;

/// Maps and validates a safetensors file. Owned result: dc_st_close.
dc_status dc_st_open(const char *path, dc_st_file **out);
void dc_st_close(dc_st_file *f);
const char *dc_st_path(const dc_st_file *f);
int dc_st_count(const dc_st_file *f);
const dc_st_tensor *dc_st_at(const dc_st_file *f, int i);
/// NULL when absent.
const dc_st_tensor *dc_st_find(const dc_st_file *f, const char *name);
/// Metadata value for `key`, NULL when absent.
const char *dc_st_meta(const dc_st_file *f, const char *key);
int dc_st_meta_count(const dc_st_file *f);
void dc_st_meta_at(const dc_st_file *f, int i, const char **key,
                   const char **value);
/// Copies tensor `name` into `dst` after checking that it exists and has
/// this dtype and shape (-1 = any extent); errors name file and tensor.
dc_status dc_st_read(const dc_st_file *f, const char *name, dc_dtype dtype,
                     int ndim, const int64_t *shape, void *dst);

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */
/* ------------------------------------------------------------------------ */

/// Parses `len` bytes; `name` (a path) is used in the error message, which
/// gives the line and column of the first error. Owned result: cJSON_Delete.
dc_status dc_json_parse(const char *text, size_t len, const char *name,
                        cJSON **out);
/// Reads and parses a JSON file (at most 256 MiB).
dc_status dc_json_read(const char *path, cJSON **out);
/// Writes `j` pretty-printed with a final newline, atomically.
dc_status dc_json_write(const char *path, const cJSON *j);
/// Appends `j` as one line (JSON Lines), flushed and fsync'd.
dc_status dc_json_append_line(const char *path, const cJSON *j);

/// Typed lookups: return DC_STATUS_FORMAT naming `name`/key when the key is
/// missing or has another type.
dc_status dc_json_get_number(const cJSON *obj, const char *key,
                             const char *name, double *out);
dc_status dc_json_get_string(const cJSON *obj, const char *key,
                             const char *name, const char **out);

#ifdef __cplusplus
}
#endif
#endif /* DC_IO_H */
