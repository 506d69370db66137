/* preset.c — the network presets (dc_preset_find): VGG-16 at 224 px as
 * the original, and the small vgg-s32 / vgg-s64 for 28–64 px images, each
 * a data record (a VGG cfg string, input size, classifier width, dropout,
 * the evaluation resize, the training crop, the default batch and epochs).
 * Includes: dc/nn.h. */
#include "dc/nn.h"

#include <string.h>

static const dc_preset presets[] = {
    /* crop_min_scale: the original's 0.08, except for 28/32-px images, where
     * an 8% crop is a few pixels blown up: 0.5 measured better (docs/results.md).
     * batch: VGG-16 holds about 220 MB per image in a step (activations,
     * their gradients), so 32 images (8 GiB) rather than 128 (29 GiB).
     * epochs: 6 for vgg-s32, the budget of the quality table (all 60,000
     * Fashion-MNIST images in 24 minutes on 2 cores, docs/results.md); 10 else. */
    {"vgg16", 224, "64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M", 4096, 0.5f, 256, 0.08f, 32, 10},
    {"vgg-s32", 32, "64 64 M 128 128 M 256 256 M", 512, 0.5f, 32, 0.5f, 128, 6},
    {"vgg-s64", 64, "64 64 M 128 128 M 256 256 M 512 512 M", 1024, 0.5f, 72, 0.08f, 128, 10},
};

const dc_preset *dc_preset_find(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

const char *dc_preset_names(void) { return "vgg16, vgg-s32, vgg-s64"; }

int dc_preset_batch(const dc_preset *p) { return p->batch > 0 ? p->batch : 128; }

int dc_preset_dim_pca(const dc_preset *p) { return p->hidden >= 4096 ? p->hidden : p->hidden / 16; }
