/* test_decode.c — messy images (tools/gen_image_fixtures.py): JPEG grey,
 * RGB, CMYK, progressive and large (DCT down-scaling); PNG palette,
 * grey+alpha, RGBA, 16-bit, tiny — each equal to PIL's convert("RGB") (16-bit:
 * the high byte); broken files (empty, truncated, corrupt, not an image)
 * rejected with the reason; image folders (classes from sub-folders, broken
 * files skipped and listed) and list files. */
#include "dc/data.h"
#include "dc/io.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static const char *img_path(const char *rel)
{
    return test_fixture("images/folder", rel);
}

static void check_image(const char *rel, int jpeg)
{
    char exp[256];
    snprintf(exp, sizeof exp, "%s.npy", rel);
    for (char *p = exp; *p; p++)
        if (*p == '/') *p = '_';
    dc_array want;
    CHECK(dc_npy_read(test_fixture("images/expect", exp), &want) == DC_OK);
    dc_image_buf b = {0};
    dc_image im;
    dc_status s = dc_decode_image(img_path(rel), 0, &b, &im);
    CHECK_MSG(s == DC_OK, "%s: %s", rel, dc_last_error());
    if (s == DC_OK && want.data) {
        CHECK_MSG(im.h == want.shape[0] && im.w == want.shape[1] && im.c == 3, "%s: %dx%dx%d", rel, im.h, im.w, im.c);
        int64_t n = (int64_t)im.h * im.w * 3, maxd = 0;
        for (int64_t i = 0; i < n && im.h == want.shape[0] && im.w == want.shape[1]; i++) {
            int64_t dd = abs((int)im.data[i] - (int)((uint8_t *)want.data)[i]);
            if (dd > maxd) maxd = dd;
        }
        CHECK_MSG(maxd <= (jpeg ? 1 : 0), "%s: largest difference from PIL %lld", rel, (long long)maxd);
    }
    dc_array_free(&want);
    dc_image_buf_free(&b);
}

/* PNG encoder: what it writes decodes to the same pixels (grey comes
 * back as RGB with equal channels). */
static void test_png_encode(void)
{
    for (int c = 1; c <= 3; c += 2) {
        int h = 5, w = 7;
        uint8_t pix[5 * 7 * 3];
        for (int i = 0; i < h * w * c; i++) pix[i] = (uint8_t)(i * 37 + c);
        uint8_t *png = NULL;
        size_t len = 0;
        CHECK(dc_png_encode(pix, h, w, c, &png, &len) == DC_OK && len > 8 && memcmp(png, "\x89PNG", 4) == 0);
        const char *path = test_path(c == 1 ? "enc-grey.png" : "enc-rgb.png");
        test_write_bytes(path, png, len);
        dc_free(png);
        dc_image_buf b = {0};
        dc_image im;
        CHECK(dc_decode_image(path, 0, &b, &im) == DC_OK);
        CHECK(im.h == h && im.w == w && im.c == 3);
        int same = im.h == h && im.w == w && im.c == 3;
        for (int i = 0; same && i < h * w; i++)
            for (int k = 0; k < 3; k++) same &= im.data[i * 3 + k] == pix[i * c + (c == 1 ? 0 : k)];
        CHECK_MSG(same, "%d-channel PNG: decoded pixels differ", c);
        dc_image_buf_free(&b);
        remove(path);
    }
}

int main(void)
{
    test_png_encode();
    dc_log_set_level(DC_LOG_ERROR);
    const char *jpegs[] = {"cats/a_rgb.jpg", "cats/b_grey.jpg", "cats/c_cmyk.jpg", "cats/d_progressive.jpg"};
    const char *pngs[] = {"dogs/f_palette.png", "dogs/g_grey_alpha.png", "dogs/h_rgba.png", "dogs/i_grey16.png",
                          "dogs/j_rgb.png", "dogs/k_tiny.png"};
    for (int i = 0; i < 4; i++) check_image(jpegs[i], 1);
    for (int i = 0; i < 6; i++) check_image(pngs[i], 0);

    /* large JPEG: full size, then DCT-scaled keeping the shorter side >= 100 */
    dc_image_buf b = {0};
    dc_image im;
    CHECK(dc_decode_image(img_path("cats/sub/e_large.jpg"), 0, &b, &im) == DC_OK && im.h == 600 && im.w == 900);
    CHECK(dc_decode_image(img_path("cats/sub/e_large.jpg"), 100, &b, &im) == DC_OK && im.h == 150 && im.w == 225);
    CHECK(dc_decode_image(img_path("cats/sub/e_large.jpg"), 500, &b, &im) == DC_OK && im.h == 600);

    struct {
        const char *file, *why;
    } bad[] = {{"cats/x_empty.jpg", "empty file"},
               {"cats/y_truncated.jpg", "corrupt JPEG"},
               {"dogs/z_text.png", "not a JPEG or PNG image"},
               {"dogs/w_corrupt.png", "corrupt PNG"},
               {"dogs/absent.png", "cannot open"}};
    for (int i = 0; i < 5; i++) {
        CHECK_MSG(dc_decode_image(img_path(bad[i].file), 0, &b, &im) != DC_OK, "%s decoded", bad[i].file);
        CHECK_STR_CONTAINS(dc_last_error(), bad[i].why);
        CHECK_STR_CONTAINS(dc_last_error(), bad[i].file);
    }
    dc_image_buf_free(&b);

    /* the folder: 2 classes, 11 good images, 4 broken ones skipped */
    dc_dataset *d;
    dc_status s = dc_dataset_open(test_fixture("images", "folder"), NULL, &d);
    CHECK_MSG(s == DC_OK, "%s", dc_last_error());
    if (s == DC_OK) {
        CHECK_EQ_INT(dc_dataset_size(d), 11);
        CHECK_EQ_INT(dc_dataset_nskipped(d), 4);
        CHECK_EQ_INT(dc_dataset_nclasses(d), 2);
        CHECK(dc_dataset_channels(d) == 3 && dc_dataset_height(d) == 0 && dc_dataset_max_side(d) == 900);
        const int32_t *lab = dc_dataset_labels(d);
        CHECK(lab && lab[0] == 0 && lab[4] == 0 && lab[5] == 1 && lab[10] == 1);
        CHECK_STR_CONTAINS(dc_dataset_path(d, 4), "cats/sub/e_large.jpg");
        const char *p, *w;
        dc_dataset_skipped(d, 0, &p, &w);
        CHECK_STR_CONTAINS(p, "x_empty.jpg");
        CHECK_STR_CONTAINS(w, "empty file");
        dc_image_buf bb = {0};
        CHECK(dc_dataset_get(d, 2, &bb, &im) == DC_OK && im.w == 50 && im.h == 37);
        dc_dataset_set_decode_hint(d, 100);
        CHECK(dc_dataset_get(d, 4, &bb, &im) == DC_OK && im.h == 150);
        dc_image_buf_free(&bb);
        CHECK_STR_CONTAINS(dc_dataset_describe(d), "11 images in classes, 4 skipped");
        dc_dataset_close(d);
    }
    /* a list file: relative paths, a missing one skipped */
    const char *lp = test_path("list.txt");
    char text[1024];
    snprintf(text, sizeof text, "%s\n# a comment\n%s\n%s\n", img_path("cats/a_rgb.jpg"), img_path("dogs/j_rgb.png"),
             img_path("dogs/missing.png"));
    test_write_bytes(lp, text, strlen(text));
    CHECK(dc_dataset_open(lp, NULL, &d) == DC_OK);
    if (d) {
        CHECK(dc_dataset_size(d) == 2 && dc_dataset_nskipped(d) == 1 && dc_dataset_labels(d) == NULL);
        dc_dataset_close(d);
    }
    /* nothing usable */
    const char *only = test_path("broken-only");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s %s/", only, img_path("dogs/z_text.png"), only);
    CHECK(system(cmd) == 0);
    CHECK(dc_dataset_open(only, NULL, &d) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "no usable images (1 file skipped as broken)");
    const char *empty = test_path("empty-dir");
    snprintf(cmd, sizeof cmd, "mkdir -p %s", empty);
    CHECK(system(cmd) == 0);
    CHECK(dc_dataset_open(empty, NULL, &d) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "no JPEG or PNG files");
    return TEST_SUMMARY();
}
