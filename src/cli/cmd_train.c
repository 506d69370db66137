/* cmd_train.c — `deepercluster train`: learn features from unlabelled
 * images by alternating hierarchical clustering and training (SPEC §1).
 * --method picks the defaults (deepercluster, deepcluster, rotnet); every
 * option can then override them; everything is validated against the data
 * before any work starts.
 * Includes: cli, dc/train.h. */
#include "cli/cli.h"
#include "dc/comm.h"
#include "dc/train.h"
#include "train/options.h"

#include <stdio.h>
#include <string.h>

int dc_cmd_train(int argc, char **argv)
{
    /* --method first: it decides the defaults the other options override */
    const char *method = dc_train_method_arg(argc - 1, argv + 1);
    if (strcmp(method, "deepercluster") && strcmp(method, "deepcluster") && strcmp(method, "rotnet")) {
        fprintf(stderr, "deepercluster train: --method: '%s' is not one of deepercluster|deepcluster|rotnet\n", method);
        return DC_EXIT_USAGE;
    }
    dc_train_config c;
    dc_train_config_defaults(&c, method);
    dc_opt opts[DC_TRAIN_MAX_OPTS];
    int nopts = dc_train_option_table(&c, opts);
    dc_args a;
    int code;
    if (!dc_cli_parse(&a, "train", "--data SRC --out RUN [options]",
                      "Learns image features without labels: every R epochs the images' features are\n"
                      "PCA-whitened and clustered in two levels; in between, the network learns to\n"
                      "predict (super-cluster x rotation, sub-cluster). Re-running the same command on\n"
                      "a run directory resumes it; SIGINT/SIGTERM checkpoint before stopping.",
                      opts, nopts, 0, argc, argv, &code))
        return code;
    dc_cli_set_threads(c.threads);
    c.stop = dc_cli_stop_flag();
    /* under mpirun/srun: one process of several (a single one otherwise) */
    dc_comm *world;
    dc_status s = dc_comm_init(NULL, NULL, &world);
    if (s) return dc_cli_fail();
    c.comm = world;
    s = dc_train_run(&c);
    if (dc_comm_size(world) > 1) {
        /* a rank that fails takes the others down, with its message, rather
         * than leave them waiting in a collective */
        if (s != DC_OK && s != DC_STATUS_INTERRUPTED) dc_comm_abort(world, dc_last_error());
    }
    dc_comm_finalize(world);
    if (s == DC_OK) return DC_EXIT_OK;
    if (s == DC_STATUS_ARG) {
        fprintf(stderr, "deepercluster train: %s\n", dc_last_error());
        return DC_EXIT_USAGE;
    }
    if (s == DC_STATUS_INTERRUPTED) {
        fprintf(stderr, "deepercluster train: %s\n", dc_last_error());
        return 130;
    }
    return dc_cli_fail();
}
