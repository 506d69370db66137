/* train_run.c — deepercluster as a library: DeeperCluster training on a set
 * of images in one call, as `deepercluster train --data DATA --out RUN`
 * with its defaults, then the learned network's features for the same
 * images.
 *
 *   cc train_run.c $(pkg-config --cflags --libs deepercluster) -o train_run
 *   ./train_run DATA RUN [EPOCHS [MAX_IMAGES]]
 *
 * RUN is the program's run directory (config.json, stats.jsonl,
 * checkpoint.safetensors, assignments/ …); running again resumes it. */
#include <dc/data.h>
#include <dc/nn.h>
#include <dc/train.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s DATA RUN [EPOCHS [MAX_IMAGES]]\n", argv[0]);
        return 2;
    }
    dc_train_config c;
    dc_train_config_defaults(&c, "deepercluster"); /* or "deepcluster", "rotnet" */
    c.data = argv[1];
    c.out = argv[2];
    if (argc > 3) c.epochs = atoi(argv[3]);
    if (argc > 4) c.max_images = atoi(argv[4]);
    /* What depends on the data (architecture, k, batch) is resolved and
     * every option checked inside; DC_STATUS_ARG says what to change. */
    dc_status s = dc_train_run(&c);
    if (s) {
        fprintf(stderr, "train_run: %s\n", dc_last_error());
        return s == DC_STATUS_ARG ? 2 : 1;
    }

    /* The trained network, from the run's checkpoint. */
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", c.out);
    dc_dataset *d;
    dc_model m;
    if (dc_dataset_open(c.data, NULL, &d) || dc_model_load_file(&m, path, dc_dataset_channels(d), 0)) {
        fprintf(stderr, "train_run: %s\n", dc_last_error());
        return 1;
    }
    dc_dataset_set_decode_hint(d, m.preset->eval_resize); /* as the program */
    int layer = dc_model_layer_find(&m, "final");
    float *x = malloc((size_t)dc_feature_dim(&m, layer, 0) * sizeof *x);
    if (!x || dc_extract_features(x, &m, d, 1, layer, 0, NULL)) {
        fprintf(stderr, "train_run: %s\n", x ? dc_last_error() : "out of memory");
        return 1;
    }
    printf("%s (%s): the first image's %d features begin %.6f %.6f %.6f\n", path, m.preset->name, m.feat_dim, x[0],
           x[1], x[2]);
    free(x);
    dc_model_free(&m);
    dc_dataset_close(d);
    return 0;
}
