/* main.c — the deepercluster command-line program: dispatches subcommands,
 * prints help and version. The only place that decides the process's exit
 * status. Includes: everything. */
#include "cli/cli.h"
#include "dc/io.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

static const dc_cmd commands[] = {
    {"train", "learn features from unlabelled images (DeeperCluster, DeepCluster, RotNet)", dc_cmd_train},
    {"features", "a layer's features for every image (.npy)", dc_cmd_features},
    {"eval", "linear probe, k-NN and cluster quality of frozen features", dc_cmd_eval},
    {"kmeans", "cluster a feature matrix (.npy): PCA-whitening, flat or two-level k-means", dc_cmd_kmeans},
    {"metrics", "NMI, ARI, accuracy and purity of an assignment against labels", dc_cmd_metrics},
    {"pack", "a dataset into a few memory-mapped shards, for large corpora", dc_cmd_pack},
    {"report", "an HTML page about a training run: curves, clusters, evaluations", dc_cmd_report},
    {"inspect", "describe a .npy, .safetensors or .json file", dc_cmd_inspect},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deepercluster <command> [options]\n"
            "       deepercluster <command> --help\n"
            "\n"
            "Unsupervised pre-training of convnet image features by hierarchical\n"
            "clustering and rotation prediction (DeeperCluster, ICCV 2019), in C.\n"
            "\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\noptions:\n"
               "  -h, --help     show this help\n"
               "  --version      print the version\n");
}

int main(int argc, char **argv)
{
    dc_cli_signals_start();
    setlocale(LC_ALL, "C");
    if (argc < 2) {
        usage(stderr);
        return DC_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return DC_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("deepercluster %s\n", DC_VERSION_STRING);
        return DC_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return DC_EXIT_OK;
        }
        for (int i = 0; i < NCOMMANDS; i++)
            if (strcmp(argv[2], commands[i].name) == 0) {
                char *hargv[] = {argv[2], "--help", NULL};
                return commands[i].fn(2, hargv);
            }
        fprintf(stderr, "deepercluster: unknown command '%s' (see deepercluster --help)\n", argv[2]);
        return DC_EXIT_USAGE;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    if (cmd[0] == '-')
        fprintf(stderr, "deepercluster: unknown option '%s' (see deepercluster --help)\n", cmd);
    else
        fprintf(stderr, "deepercluster: unknown command '%s' (see deepercluster --help)\n", cmd);
    return DC_EXIT_USAGE;
}
