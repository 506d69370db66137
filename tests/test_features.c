/* test_features.c — features streamed to an .npy in chunks are the bits of
 * one extraction written whole, whatever the chunk; a failure leaves no file. */
#include "dc/data.h"
#include "dc/io.h"
#include "dc/nn.h"
#include "dc/train.h"
#include "test.h"

#include <string.h>

/* The features of layer `name` for all of d: whole, then streamed with
 * chunks of 1 (rounded up to a batch), 5, and the default; equal files. */
static void check_layer(dc_model *m, const dc_dataset *d, const char *name)
{
    int64_t n = dc_dataset_size(d);
    int layer = dc_model_layer_find(m, name);
    CHECK(layer >= 0);
    int pool = dc_feature_pool_side(m, layer, 10000);
    int64_t dim = dc_feature_dim(m, layer, pool);
    float *x = dc_xmalloc((size_t)(n * dim) * sizeof *x);
    CHECK(dc_extract_features(x, m, d, n, layer, pool, NULL) == DC_OK);
    const char *whole = test_path("whole.npy");
    CHECK(dc_npy_write(whole, DC_DTYPE_F32, 2, (int64_t[]){n, dim}, x) == DC_OK);
    const int64_t chunks[3] = {1, 5, 0};
    for (int c = 0; c < 3; c++) {
        const char *p = test_path("streamed.npy");
        CHECK(dc_extract_features_npy(p, m, d, n, layer, pool, chunks[c], NULL) == DC_OK);
        dc_array a;
        CHECK(dc_npy_read(p, &a) == DC_OK);
        CHECK(a.ndim == 2 && a.shape[0] == n && a.shape[1] == dim);
        CHECK_MSG(memcmp(a.data, x, (size_t)(n * dim) * sizeof *x) == 0, "layer %s, chunk %lld: bits differ", name,
                  (long long)chunks[c]);
        CHECK(test_file_size(p) == test_file_size(whole));
        dc_array_free(&a);
    }
    dc_free(x);
}

int main(void)
{
    dc_log_set_level(DC_LOG_WARN);
    dc_dataset *d;
    CHECK(dc_dataset_open(test_fixture("images", "folder"), NULL, &d) == DC_OK);
    CHECK(dc_dataset_size(d) > 8); /* more images than two batches */
    dc_model m;
    CHECK(dc_model_init(&m, "vgg-s32", 1, dc_dataset_channels(d), 4, 7) == DC_OK);
    check_layer(&m, d, "final");
    check_layer(&m, d, "conv2"); /* pooled under 10,000 values */
    /* an unwritable path: an error naming it, no file, no temporary */
    const char *bad = test_path("no-such-dir/f.npy");
    int layer = dc_model_layer_find(&m, "final");
    CHECK(dc_extract_features_npy(bad, &m, d, dc_dataset_size(d), layer, 0, 0, NULL) == DC_STATUS_IO);
    CHECK_STR_CONTAINS(dc_last_error(), "no-such-dir/f.npy");
    dc_model_free(&m);
    dc_dataset_close(d);
    return TEST_SUMMARY();
}
