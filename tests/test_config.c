/* test_config.c — training options resolved from the method, the preset and
 * the data: the batch per super-class (the methods' 16/32/128 for a global
 * batch of 128, a quarter for vgg16, whose 128 images would not fit in
 * memory), the architecture from the image size, an explicit value kept. */
#include "dc/train.h"
#include "test.h"

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
    return TEST_SUMMARY();
}
