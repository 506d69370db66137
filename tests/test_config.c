/* test_config.c — training options resolved from the method, the preset and
 * the data: the batch per super-class (the methods' 16/32/128 for a global
 * batch of 128, a quarter for vgg16, whose 128 images would not fit in
 * memory), the architecture from the image size, the epochs from the
 * preset, an explicit value kept. */
#include "dc/train.h"
#include "test.h"

#include <math.h>
#include <string.h>

/* The batch per super-class after resolving `method` on n images of `side`
 * pixels, with --arch `arch` (NULL: from the size) and --batch-size `batch`. */
static int resolved_batch(const char *method, const char *arch, int side, int batch, const char **arch_out)
{
    dc_train_config c;
    dc_train_config_defaults(&c, method);
    c.arch = arch;
    c.batch_size = batch;
    char buf[256];
    const char *why = dc_train_config_resolve(&c, 60000, side, buf, sizeof buf);
    CHECK(why == NULL);
    if (why) fprintf(stderr, "%s\n", why);
    if (arch_out) *arch_out = c.arch;
    return c.batch_size;
}

/* Defaults with one bad value, the i-th of main's list. */
static void spoiled(dc_train_config *c, int i)
{
    dc_train_config_defaults(c, NULL);
    c->data = "x";
    c->out = "y";
    switch (i) {
    case 0: c->epochs = -1; break;
    case 1: c->lr = NAN; break;
    case 2: c->wd = -1; break;
    case 3: c->sobel = 2; break;
    case 4: c->method = "simclr"; break;
    case 5: c->lr_schedule = "step"; break;
    case 6: c->warmup_epochs = -0.5; break;
    case 7: c->epochs = 3, c->warmup_epochs = 3.5; break;
    default: c->data = NULL; break;
    }
}

int main(void)
{
    dc_log_set_level(DC_LOG_WARN);
    const char *a = NULL;
    CHECK_EQ_INT(resolved_batch("deepercluster", NULL, 28, 0, &a), 16);
    CHECK(strcmp(a, "vgg-s32") == 0);
    CHECK_EQ_INT(resolved_batch("rotnet", NULL, 28, 0, NULL), 32);
    CHECK_EQ_INT(resolved_batch("deepcluster", NULL, 28, 0, NULL), 128);
    CHECK_EQ_INT(resolved_batch("deepercluster", NULL, 64, 0, &a), 16);
    CHECK(strcmp(a, "vgg-s64") == 0);
    CHECK_EQ_INT(resolved_batch("deepercluster", NULL, 500, 0, &a), 4);
    CHECK(strcmp(a, "vgg16") == 0);
    CHECK_EQ_INT(resolved_batch("rotnet", "vgg16", 28, 0, NULL), 8);
    CHECK_EQ_INT(resolved_batch("deepcluster", "vgg16", 28, 0, NULL), 32);
    /* an explicit batch is the user's */
    CHECK_EQ_INT(resolved_batch("deepercluster", "vgg16", 500, 16, NULL), 16);
    CHECK_EQ_INT(resolved_batch("rotnet", NULL, 28, 5, NULL), 5);
    /* the same through the public helper */
    CHECK_EQ_INT(dc_train_default_batch("deepercluster", dc_preset_find("vgg-s32")), 16);
    CHECK_EQ_INT(dc_train_default_batch("deepcluster", dc_preset_find("vgg16")), 32);
    /* epochs from the preset (vgg-s32: the quality table's 6), unless given */
    static const struct {
        int side, given, want;
    } ep[] = {{28, 0, 6}, {64, 0, 10}, {500, 0, 10}, {28, 3, 3}};
    for (size_t i = 0; i < sizeof ep / sizeof ep[0]; i++) {
        dc_train_config c;
        dc_train_config_defaults(&c, i == 1 ? "rotnet" : NULL);
        c.epochs = ep[i].given;
        char buf[256];
        CHECK(dc_train_config_resolve(&c, 60000, ep[i].side, buf, sizeof buf) == NULL);
        CHECK_EQ_INT(c.epochs, ep[i].want);
    }
    /* the program's option ranges, checked by the library for its callers */
    static const char *const msgs[] = {"--epochs: -1 is out of range (must be between 0 and 1000000)",
                                       "--lr: nan is out of range (must be between 1e-12 and 100)",
                                       "--wd: -1 is out of range (must be between 0 and 1)",
                                       "--sobel: 2 is out of range (must be between 0 and 1)",
                                       "--method simclr is not one of deepercluster, deepcluster, rotnet",
                                       "--lr-schedule step is not one of constant, cosine",
                                       "--warmup-epochs: -0.5 is out of range (must be between 0 and 1000000)",
                                       "--warmup-epochs 3.5 is longer than the run's 3 epochs",
                                       "the images (data) and the run directory (out) are both needed"};
    for (int i = 0; i < (int)(sizeof msgs / sizeof msgs[0]); i++) {
        dc_train_config c;
        spoiled(&c, i);
        char buf[256];
        const char *why = dc_train_config_resolve(&c, 60000, 28, buf, sizeof buf);
        CHECK((why != NULL) == (c.data != NULL)); /* resolve needs no paths */
        if (why) CHECK_STR_CONTAINS(why, msgs[i]);
        /* dc_train_run refuses it before touching anything */
        CHECK(dc_train_run(&c) == DC_STATUS_ARG);
        CHECK_STR_CONTAINS(dc_last_error(), msgs[i]);
    }
    /* the learning rate along the run: known answers */
    {
        dc_train_config c;
        dc_train_config_defaults(&c, NULL);
        c.lr = 0.1;
        c.epochs = 4;
        CHECK(strcmp(c.lr_schedule, "constant") == 0); /* the original's */
        CHECK(dc_train_lr_at(&c, 0, 0, 10) == 0.1 && dc_train_lr_at(&c, 3, 9, 10) == 0.1);
        c.warmup_epochs = 1; /* linear over the first 10 steps: 0.01, 0.02, ..., 0.1 */
        CHECK_CLOSE(dc_train_lr_at(&c, 0, 0, 10), 0.01, 1e-15);
        CHECK_CLOSE(dc_train_lr_at(&c, 0, 4, 10), 0.05, 1e-15);
        CHECK_CLOSE(dc_train_lr_at(&c, 0, 9, 10), 0.1, 1e-15);
        CHECK(dc_train_lr_at(&c, 1, 0, 10) == 0.1 && dc_train_lr_at(&c, 3, 9, 10) == 0.1);
        c.lr_schedule = "cosine"; /* after the warm-up: 0.05 (1 + cos(pi (t - 1) / 3)) */
        CHECK_CLOSE(dc_train_lr_at(&c, 1, 0, 10), 0.1, 1e-15);
        CHECK_CLOSE(dc_train_lr_at(&c, 2, 5, 10), 0.05, 1e-15);
        CHECK_CLOSE(dc_train_lr_at(&c, 3, 9, 10), 0.05 * (1 + cos(acos(-1.0) * 2.9 / 3)), 1e-15);
        CHECK(dc_train_lr_at(&c, 3, 9, 10) > 0 && dc_train_lr_at(&c, 3, 9, 10) < 0.001);
        c.warmup_epochs = 0.5; /* half an epoch of 10 steps: 5 steps */
        CHECK_CLOSE(dc_train_lr_at(&c, 0, 0, 10), 0.02, 1e-15);
        CHECK_CLOSE(dc_train_lr_at(&c, 0, 4, 10), 0.1, 1e-15);
        c.warmup_epochs = 0;
        CHECK_CLOSE(dc_train_lr_at(&c, 0, 0, 10), 0.1, 1e-15);
        CHECK_CLOSE(dc_train_lr_at(&c, 2, 0, 10), 0.05, 1e-15);
        /* non-increasing from the peak */
        double prev = 1;
        for (int e = 0; e < 4; e++)
            for (int st = 0; st < 10; st++) {
                double lr = dc_train_lr_at(&c, e, st, 10);
                CHECK(lr <= prev && lr > 0);
                prev = lr;
            }
    }
    return TEST_SUMMARY();
}
