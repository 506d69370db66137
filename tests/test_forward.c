/* test_forward.c — one forward pass of a converted PyTorch network against
 * PyTorch's own output. Driven by tests/test_convert.sh (which needs
 * python3-torch) through DC_FWD_WEIGHTS, DC_FWD_INPUT, DC_FWD_EXPECT;
 * without them it reports a skip. */
#include "dc/io.h"
#include "dc/nn.h"
#include "test.h"

#include <math.h>

int main(void)
{
    const char *wp = getenv("DC_FWD_WEIGHTS"), *ip = getenv("DC_FWD_INPUT"), *ep = getenv("DC_FWD_EXPECT");
    if (!wp || !ip || !ep) {
        printf("SKIP: run by tests/test_convert.sh\n");
        return TEST_SUMMARY();
    }
    dc_log_set_level(DC_LOG_WARN);
    dc_array in, ex;
    CHECK(dc_npy_read(ip, &in) == DC_OK);
    CHECK(dc_npy_read(ep, &ex) == DC_OK);
    dc_st_file *f;
    CHECK(dc_st_open(wp, &f) == DC_OK);
    if (!in.data || !ex.data || !f) return TEST_SUMMARY();
    const char *arch = dc_st_meta(f, "arch");
    int sobel = dc_st_find(f, "sobel.0.weight") != NULL, N = (int)in.shape[0], C = (int)in.shape[1];
    dc_model m;
    CHECK(dc_model_init(&m, arch ? arch : "vgg16", sobel, C, N, 1) == DC_OK);
    CHECK_MSG(dc_model_load_tensors(&m, f) == DC_OK, "%s", dc_last_error());
    const float *y = dc_model_forward(&m, in.data, N, 0);
    int64_t n = dc_array_numel(&ex);
    CHECK(n == (int64_t)N * m.feat_dim);
    double e = 0, v = 1e-12;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - ((float *)ex.data)[i]);
        if (d > e) e = d;
        if (fabs(((float *)ex.data)[i]) > v) v = fabs(((float *)ex.data)[i]);
    }
    printf("%s (sobel %d), batch %d: largest difference from PyTorch %.3g relative to the largest output\n",
           arch ? arch : "vgg16", sobel, N, e / v);
    CHECK_MSG(e / v < 1e-4, "relative error %g", e / v);
    dc_model_free(&m);
    dc_st_close(f);
    dc_array_free(&in);
    dc_array_free(&ex);
    return TEST_SUMMARY();
}
