/* test_data.c — datasets (IDX gz/raw with labels found beside, CIFAR-10/100
 * batches, malformed files), the transforms against PIL
 * (tools/gen_data_fixtures.py: mean absolute difference ≤ 1/255), crop
 * parameters, rotations, determinism. */
#include "dc/data.h"
#include "dc/io.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <zlib.h>

static const char *fixture(const char *name) { return test_fixture("data", name); }

/* PIL cases: our resampler within 1/255 on average of PIL's bytes. */
static void test_pil(void)
{
    cJSON *j;
    CHECK(dc_json_read(fixture("cases.json"), &j) == DC_OK);
    if (!j) return;
    int ncase = 0;
    double worst_mad = 0, worst_max = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, j)
    {
        dc_array im, ex;
        CHECK(dc_npy_read(fixture(cJSON_GetObjectItem(c, "image")->valuestring), &im) == DC_OK);
        CHECK(dc_npy_read(fixture(cJSON_GetObjectItem(c, "expect")->valuestring), &ex) == DC_OK);
        dc_image img = {im.data, (int)im.shape[0], (int)im.shape[1], (int)im.shape[2]};
        int size = (int)cJSON_GetObjectItem(c, "size")->valuedouble, ch = img.c;
        float *got = dc_xcalloc((size_t)size * size * ch, sizeof(float));
        float *tmp = dc_xcalloc(dc_transform_tmp_size(size, size, 4096, ch) + (size_t)img.h * size * ch, sizeof(float));
        if (strcmp(cJSON_GetObjectItem(c, "kind")->valuestring, "crop") == 0) {
            dc_resize_region(got, size, size, &img, (int)cJSON_GetObjectItem(c, "top")->valuedouble,
                             (int)cJSON_GetObjectItem(c, "left")->valuedouble,
                             (int)cJSON_GetObjectItem(c, "h")->valuedouble,
                             (int)cJSON_GetObjectItem(c, "w")->valuedouble, tmp);
        } else {
            float *chw = dc_xcalloc((size_t)size * size * ch, sizeof(float)), mean[3], std[3];
            dc_transform_eval(chw, &img, (int)cJSON_GetObjectItem(c, "resize")->valuedouble, size, tmp);
            dc_norm_constants(ch, mean, std);
            for (int k = 0; k < ch; k++)
                for (int p = 0; p < size * size; p++)
                    got[(size_t)p * ch + k] = (chw[(size_t)k * size * size + p] * std[k] + mean[k]) * 255.0f;
            dc_free(chw);
        }
        double mad = 0, mx = 0;
        int64_t n = (int64_t)size * size * ch;
        for (int64_t i = 0; i < n; i++) {
            double v = got[i] < 0 ? 0 : got[i] > 255 ? 255 : rint(got[i]);
            double e = fabs(v - ((uint8_t *)ex.data)[i]);
            mad += e;
            if (e > mx) mx = e;
        }
        mad /= (double)n;
        if (mad > worst_mad) worst_mad = mad;
        if (mx > worst_max) worst_max = mx;
        CHECK_MSG(mad <= 1.0, "%s: mean abs difference %.3f/255", cJSON_GetObjectItem(c, "expect")->valuestring, mad);
        dc_free(got);
        dc_free(tmp);
        dc_array_free(&im);
        dc_array_free(&ex);
        ncase++;
    }
    cJSON_Delete(j);
    CHECK_EQ_INT(ncase, 24);
    printf("resampling vs PIL: %d cases, worst mean abs difference %.3f/255, worst pixel %.0f/255\n", ncase,
           worst_mad, worst_max);
}

static void test_rotation_and_crop(void)
{
    enum { C = 2, S = 5 };
    float in[C * S * S], a[C * S * S], b[C * S * S];
    for (int i = 0; i < C * S * S; i++) in[i] = (float)i;
    memcpy(a, in, sizeof in);
    for (int k = 0; k < 4; k++) {
        dc_rotate90(b, a, C, S, 1);
        memcpy(a, b, sizeof b);
    }
    CHECK(memcmp(a, in, sizeof in) == 0);
    /* 90: out[r][c] = in[c][S-1-r] (np.flipud(np.transpose(img))) */
    dc_rotate90(b, in, C, S, 1);
    CHECK(b[1 * S + 2] == in[2 * S + (S - 1 - 1)]);
    dc_rotate90(a, in, C, S, 2);
    dc_rotate90(b, a, C, S, 2);
    CHECK(memcmp(b, in, sizeof in) == 0);
    dc_rotate90(a, in, C, S, 3);
    CHECK(a[S * S + 0 * S + 4] == in[S * S + (S - 1 - 4) * S + 0]);

    dc_rng r;
    dc_rng_init(&r, 1, DC_RNG_STREAM_TEST, 0, 0);
    int ok = 1, area_lo = 0;
    for (int i = 0; i < 2000; i++) {
        int t, l, h, w;
        dc_rrc_params(&r, 40, 60, &t, &l, &h, &w);
        ok &= t >= 0 && l >= 0 && h >= 1 && w >= 1 && t + h <= 40 && l + w <= 60;
        area_lo += h * w < 0.2 * 40 * 60;
    }
    CHECK(ok);
    CHECK(area_lo > 100); /* small crops happen (scale down to 0.08) */
    /* --crop-min-scale 0.5: no crop below half the area (rounding aside) */
    int below = 0, half_lo = 0;
    for (int i = 0; i < 2000; i++) {
        int t2, l2, h2, w2;
        dc_rrc_params_scale(&r, 40, 60, 0.5, &t2, &l2, &h2, &w2);
        below += h2 * w2 < 0.45 * 40 * 60;
        half_lo += h2 * w2 < 0.6 * 40 * 60;
    }
    CHECK_EQ_INT(below, 0);
    CHECK(half_lo > 100);
    /* A very wide image: every attempt fails, centred fallback at ratio 4/3. */
    int t, l, h, w;
    dc_rrc_params(&r, 10, 1000, &t, &l, &h, &w);
    CHECK(h <= 10 && w <= 1000);
}

static void write_idx(const char *path, int gz, uint32_t magic, const uint32_t *dims, int nd, const uint8_t *data,
                      size_t n)
{
    uint8_t head[16];
    int hl = 4 + 4 * nd;
    head[0] = head[1] = 0;
    head[2] = (uint8_t)(magic >> 8);
    head[3] = (uint8_t)magic;
    for (int i = 0; i < nd; i++)
        for (int b = 0; b < 4; b++) head[4 + 4 * i + b] = (uint8_t)(dims[i] >> (24 - 8 * b));
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, head, (unsigned)hl);
        gzwrite(f, data, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(head, 1, (size_t)hl, f);
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void test_idx_cifar(void)
{
    const char *dir = getenv("DC_TEST_TMP") ? getenv("DC_TEST_TMP") : "/tmp";
    char ip[512], lp[512];
    uint8_t px[3 * 4 * 5], lab[3] = {2, 0, 7};
    for (int i = 0; i < 60; i++) px[i] = (uint8_t)(i * 3);
    for (int gz = 0; gz <= 1; gz++) {
        snprintf(ip, sizeof ip, "%s/%d-t-images-idx3-ubyte%s", dir, (int)getpid(), gz ? ".gz" : "");
        snprintf(lp, sizeof lp, "%s/%d-t-labels-idx1-ubyte%s", dir, (int)getpid(), gz ? ".gz" : "");
        write_idx(ip, gz, 0x0803, (uint32_t[]){3, 4, 5}, 3, px, 60);
        write_idx(lp, gz, 0x0801, (uint32_t[]){3}, 1, lab, 3);
        dc_dataset *d;
        dc_status s = dc_dataset_open(ip, NULL, &d);
        CHECK_MSG(s == DC_OK, "%s", dc_last_error());
        if (s) continue;
        CHECK(dc_dataset_size(d) == 3 && dc_dataset_height(d) == 4 && dc_dataset_width(d) == 5 &&
              dc_dataset_channels(d) == 1);
        CHECK(dc_dataset_labels(d) && dc_dataset_labels(d)[2] == 7 && dc_dataset_nclasses(d) == 8);
        dc_image im = dc_dataset_image(d, 1);
        CHECK(im.data[3] == (uint8_t)((20 + 3) * 3));
        CHECK_STR_CONTAINS(dc_dataset_describe(d), "IDX: 3 grey 4x5 images, labelled");
        dc_dataset_close(d);
    }
    /* label count mismatch, truncated images, wrong magic */
    snprintf(ip, sizeof ip, "%s/%d-t-images-idx3-ubyte", dir, (int)getpid());
    snprintf(lp, sizeof lp, "%s/%d-t-labels-idx1-ubyte", dir, (int)getpid());
    write_idx(lp, 0, 0x0801, (uint32_t[]){2}, 1, lab, 2);
    dc_dataset *d;
    CHECK(dc_dataset_open(ip, NULL, &d) != DC_OK && d == NULL);
    CHECK_STR_CONTAINS(dc_last_error(), "2 labels for 3 images");
    write_idx(ip, 0, 0x0803, (uint32_t[]){3, 4, 5}, 3, px, 50);
    CHECK(dc_dataset_open(ip, NULL, &d) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "truncated");
    write_idx(ip, 0, 0x0801, (uint32_t[]){3}, 1, lab, 3);
    CHECK(dc_dataset_open(ip, NULL, &d) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "not a dataset");
    CHECK(dc_dataset_open("/nonexistent/x", NULL, &d) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "cannot open");
    test_write_bytes(ip, "", 0);
    CHECK(dc_dataset_open(ip, NULL, &d) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "empty file");

    /* CIFAR-10: two records, planes R, G, B → HWC */
    static uint8_t rec[2 * 3073];
    for (int r = 0; r < 2; r++) {
        rec[r * 3073] = (uint8_t)(r + 3);
        for (int p = 0; p < 3072; p++) rec[r * 3073 + 1 + p] = (uint8_t)(p / 1024 * 100 + r);
    }
    char cp[512];
    snprintf(cp, sizeof cp, "%s/%d-cifar.bin", dir, (int)getpid());
    test_write_bytes(cp, rec, sizeof rec);
    CHECK(dc_dataset_open(cp, NULL, &d) == DC_OK);
    if (d) {
        CHECK(dc_dataset_size(d) == 2 && dc_dataset_channels(d) == 3 && dc_dataset_nclasses(d) == 10);
        dc_image im = dc_dataset_image(d, 1);
        CHECK(im.data[0] == 1 && im.data[1] == 101 && im.data[2] == 201 && dc_dataset_labels(d)[1] == 4);
        dc_dataset_close(d);
    }
    test_write_bytes(cp, rec, 3000);
    CHECK(dc_dataset_open(cp, NULL, &d) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "not a dataset");
}

static void test_train_transform(void)
{
    uint8_t px[30 * 40 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 7);
    dc_image img = {px, 30, 40, 3};
    int S = 24;
    float *a = dc_xcalloc(3 * S * S, sizeof(float)), *b = dc_xcalloc(3 * S * S, sizeof(float));
    float *tmp = dc_xcalloc(dc_transform_tmp_size(S, S, 64, 3), sizeof(float));
    dc_rng r1, r2;
    dc_rng_init(&r1, 3, DC_RNG_STREAM_AUGMENT, 1, 17);
    dc_rng_init(&r2, 3, DC_RNG_STREAM_AUGMENT, 1, 17);
    dc_transform_train(a, &img, S, 0, &r1, tmp);
    dc_transform_train(b, &img, S, 0, &r2, tmp);
    CHECK(memcmp(a, b, 3 * S * S * sizeof(float)) == 0);
    /* rotation 1 of the same draw = rotate90 of rotation 0 */
    dc_rng_init(&r2, 3, DC_RNG_STREAM_AUGMENT, 1, 17);
    dc_transform_train(b, &img, S, 1, &r2, tmp);
    float *c = dc_xcalloc(3 * S * S, sizeof(float));
    dc_rotate90(c, a, 3, S, 1);
    CHECK(memcmp(b, c, 3 * S * S * sizeof(float)) == 0);
    int inrange = 1;
    for (int i = 0; i < 3 * S * S; i++) inrange &= a[i] > -2.2f && a[i] < 2.7f;
    CHECK(inrange);
    dc_free(a);
    dc_free(b);
    dc_free(c);
    dc_free(tmp);
}

static void test_fashion_mnist(void)
{
    const char *p = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
    dc_dataset *d;
    if (dc_dataset_open(p, NULL, &d) != DC_OK) {
        printf("SKIP Fashion-MNIST: %s\n", dc_last_error());
        return;
    }
    CHECK(dc_dataset_size(d) == 60000 && dc_dataset_height(d) == 28 && dc_dataset_nclasses(d) == 10);
    int64_t cnt[10] = {0};
    for (int64_t i = 0; i < 60000; i++) cnt[dc_dataset_labels(d)[i]]++;
    CHECK(cnt[0] == 6000 && cnt[9] == 6000);
    dc_dataset_close(d);
}

int main(void)
{
    test_pil();
    test_rotation_and_crop();
    test_idx_cifar();
    test_train_transform();
    test_fashion_mnist();
    return TEST_SUMMARY();
}
