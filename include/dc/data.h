/* dc/data.h — image data in: datasets (IDX and CIFAR binaries so far), the
 * exact augmentations of the original (SPEC §3: RandomResizedCrop with PIL's
 * bilinear filter, horizontal flip, rotation by multiples of 90°,
 * normalisation), and batch assembly, deterministic from (seed, epoch,
 * position in the epoch) whatever the thread count.
 * Includes: dc/core.h. */
#ifndef DC_DATA_H
#define DC_DATA_H

#include "dc/core.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An 8-bit image, rows of w·c bytes, channels interleaved (HWC); c is 1
/// (grey) or 3 (RGB).
typedef struct dc_image {
    const uint8_t *data;
    int h, w, c;
} dc_image;

/// Reusable decoding buffers (grown as needed, never shrunk): one per
/// thread; zero-initialise, release with dc_image_buf_free.
typedef struct dc_image_buf {
    uint8_t *file, *pix;
    size_t file_cap, pix_cap;
} dc_image_buf;

void dc_image_buf_free(dc_image_buf *b);

/// Decodes a JPEG or PNG file to 8-bit RGB (see decode.c for the modes);
/// JPEGs whose shorter side is at least 2·min_side (min_side > 0) are
/// decoded at 1/2, 1/4 or 1/8 size by the DCT, keeping the shorter side ≥
/// min_side. `out` points into `b`.
dc_status dc_decode_image(const char *path, int min_side, dc_image_buf *b, dc_image *out);
/// As dc_decode_image from len bytes in memory (`name` for messages); data
/// must not be b->file unless it came from there.
dc_status dc_decode_image_mem(const char *name, const uint8_t *data, size_t len, int min_side, dc_image_buf *b,
                              dc_image *out);

/// Encodes h×w 8-bit pixels (c = 1 grey or 3 RGB, rows packed) as a PNG in
/// memory: *out (dc_free) of *len bytes.
dc_status dc_png_encode(const uint8_t *pix, int h, int w, int c, uint8_t **out, size_t *len);

typedef struct dc_dataset dc_dataset;

/// Opens `src`, the kind detected from what it is: an IDX image file
/// (MNIST / Fashion-MNIST, gzipped or not; labels from `labels` or found
/// beside it by the conventional name), CIFAR-10/100 binary batches (a file
/// or a directory holding data_batch_*.bin / train.bin), an image folder
/// (JPEG/PNG found recursively, sorted; first-level sub-folders are the
/// classes) or a list file (.txt/.lst/.list, one image path per line).
/// Folder and list images are all decoded once here: broken files are
/// skipped, logged and listed (dc_dataset_skipped); none usable is an error.
/// Owned result: dc_dataset_close.
dc_status dc_dataset_open(const char *src, const char *labels, dc_dataset **out);
/// A dataset over n images the caller holds in memory: pixels (n, h, w, c)
/// uint8, row-major, c = 1 or 3; labels (n) non-negative, or NULL. Nothing
/// is copied: both arrays must stay valid and unchanged until
/// dc_dataset_close, which does not free them.
dc_status dc_dataset_wrap(const uint8_t *pixels, int64_t n, int h, int w, int c, const int32_t *labels,
                          dc_dataset **out);
void dc_dataset_close(dc_dataset *d);
int64_t dc_dataset_size(const dc_dataset *d);
/// Channels of the images (1 or 3) and their common size (0 if they vary).
int dc_dataset_channels(const dc_dataset *d);
int dc_dataset_height(const dc_dataset *d);
int dc_dataset_width(const dc_dataset *d);
/// Labels (size entries) or NULL when the set is unlabelled.
const int32_t *dc_dataset_labels(const dc_dataset *d);
int dc_dataset_nclasses(const dc_dataset *d);
/// A short description: "IDX 60000 x 28x28 grey (…/train-images-idx3-ubyte.gz)".
const char *dc_dataset_describe(const dc_dataset *d);
/// Image i of an in-memory set (IDX, CIFAR): a view valid while open.
dc_image dc_dataset_image(const dc_dataset *d, int64_t i);
/// Image i of any set: a view (in memory) or decoded into `buf` (files).
/// Thread-safe with one buf per thread.
dc_status dc_dataset_get(const dc_dataset *d, int64_t i, dc_image_buf *buf, dc_image *out);
/// File of image i (NULL for in-memory sets).
const char *dc_dataset_path(const dc_dataset *d, int64_t i);
/// Largest side among the images (after validation).
int dc_dataset_max_side(const dc_dataset *d);
/// JPEGs may be decoded smaller by the DCT, keeping the shorter side ≥
/// min_side (0: full size, the default).
void dc_dataset_set_decode_hint(dc_dataset *d, int min_side);
/// Files found but not decodable, with the reason (kept out of the set).
int64_t dc_dataset_nskipped(const dc_dataset *d);
void dc_dataset_skipped(const dc_dataset *d, int64_t i, const char **path, const char **why);

/* ------------------------------------------------------------------------ */
/* Transforms                                                               */
/* ------------------------------------------------------------------------ */

/// Per-channel normalisation: ImageNet's for RGB (0.485/0.456/0.406,
/// 0.229/0.224/0.225); their averages (0.449, 0.226) for grey images.
void dc_norm_constants(int c, float mean[3], float std[3]);

/// torchvision's RandomResizedCrop parameters (scale [0.08, 1], log-uniform
/// ratio [3/4, 4/3], 10 attempts, then the centred fallback) for an h×w
/// image: the crop's top, left, height and width.
void dc_rrc_params(dc_rng *r, int h, int w, int *top, int *left, int *ch, int *cw);
/// As dc_rrc_params with the area scale drawn from [min_scale, 1].
void dc_rrc_params_scale(dc_rng *r, int h, int w, double min_scale, int *top, int *left, int *ch, int *cw);

/// Resizes the region (top, left, ch, cw) of `src` to out_h×out_w with PIL's
/// bilinear filter (a triangle filter widened by the scale when shrinking,
/// as Image.resize(..., BILINEAR) with a box). out is float HWC in [0, 255].
void dc_resize_region(float *out, int out_h, int out_w, const dc_image *src, int top, int left, int ch,
                      int cw, float *tmp);
/// Floats of `tmp` dc_resize_region needs: ch·out_w·c.

/// One training sample (SPEC §3): RandomResizedCrop(size), flip with p=½,
/// rotation by rot·90° counter-clockwise, to [0,1], normalised; written as
/// CHW floats into `out` (c·size·size). Draws from `r`.
void dc_transform_train(float *out, const dc_image *img, int size, int rot, dc_rng *r, float *tmp);
/// As dc_transform_train with the crop's area drawn from [min_scale, 1] of
/// the image's (the original: 0.08).
void dc_transform_train_scale(float *out, const dc_image *img, int size, int rot, dc_rng *r, float *tmp,
                              double min_scale);
/// The clustering / evaluation transform: shorter side resized to
/// `resize`, centre crop size×size, normalised, CHW.
void dc_transform_eval(float *out, const dc_image *img, int resize, int size, float *tmp);
/// One of torchvision's TenCrop views after the same resize: crop 0 the
/// centre (= dc_transform_eval), 1–4 the top-left, top-right, bottom-left
/// and bottom-right corners, 5–9 the same five mirrored left to right.
void dc_transform_eval_crop(float *out, const dc_image *img, int resize, int size, int crop, float *tmp);
/// Scratch floats either transform needs for images up to max_side.
size_t dc_transform_tmp_size(int size, int resize, int max_side, int c);

/// Rotates a CHW float image (c, s, s) by rot·90° counter-clockwise, as the
/// original's rotate_img on the HWC array.
void dc_rotate90(float *out, const float *in, int c, int s, int rot);

/* ------------------------------------------------------------------------ */
/* Packs: a corpus as a few memory-mapped shards (src/data/pack_format.h)   */
/* ------------------------------------------------------------------------ */

typedef struct dc_pack_opts {
    int max_side;        /* resize so the shorter side is at most this (0: keep) */
    int64_t shard_bytes; /* start a new shard beyond this (default 1 GiB)         */
    int64_t max_images;  /* the first N images only (0: all)                      */
    int progress;        /* a progress bar (default 1)                            */
} dc_pack_opts;

typedef struct dc_pack_stats {
    int64_t images, bytes, resized, files; /* files: stored as their JPEG/PNG bytes */
    int shards;
} dc_pack_stats;

void dc_pack_opts_default(dc_pack_opts *o);
/// Writes the images of src (in order, with their labels) as a pack in
/// directory dir (created; refused if it already holds a pack). Opening dir
/// with dc_dataset_open then gives the same images — resized ones excepted.
dc_status dc_pack_write(const dc_dataset *src, const char *dir, const dc_pack_opts *o, dc_pack_stats *stats);

/* ------------------------------------------------------------------------ */
/* Loader: worker threads filling batches ahead of the step loop            */
/* ------------------------------------------------------------------------ */

/// Fills row `row` of job `job` in slot `slot`, on worker `worker` (an index
/// for per-worker scratch). Must depend on (job, row) only.
typedef dc_status (*dc_loader_fn)(void *ctx, int slot, int64_t job, int row, int worker);
typedef struct dc_loader dc_loader;

/// Starts nworkers threads serving nslots slots. Owned: dc_loader_stop.
dc_status dc_loader_start(dc_loader **out, int nworkers, int nslots, dc_loader_fn fn, void *ctx);
/// Queues job (rows 0 … nrows-1) in a slot that is not in use.
void dc_loader_submit(dc_loader *l, int slot, int64_t job, int nrows);
/// Waits until the slot's job is done; its first error, if any. The slot
/// is then free. A slot with no job returns at once.
dc_status dc_loader_wait(dc_loader *l, int slot);
/// Stops handing out rows, waits for the rows in progress, joins, frees.
void dc_loader_stop(dc_loader *l);

#ifdef __cplusplus
}
#endif
#endif
