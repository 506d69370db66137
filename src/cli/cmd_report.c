/* cmd_report.c — `deepercluster report`: the HTML page of a training run.
 * Includes: cli, dc/eval.h. */
#include "cli/cli.h"
#include "dc/eval.h"

#include <stdio.h>

int dc_cmd_report(int argc, char **argv)
{
    const char *run = NULL, *out = NULL;
    dc_report_opts o;
    dc_report_opts_default(&o);
    const dc_opt opts[] = {
        {"run", NULL, DC_OPT_STRING, &run, 0, 0, NULL, 1, "RUN", "the training run directory"},
        {"out", NULL, DC_OPT_STRING, &out, 0, 0, NULL, 0, "FILE", "where to write (default RUN/report.html)"},
        {"max-super", NULL, DC_OPT_INT, &o.max_super, 1, 100000, NULL, 0, "N",
         "super-clusters in the cluster browser (default 32)"},
        {"subs", NULL, DC_OPT_INT, &o.subs_per_super, 1, 1000, NULL, 0, "N", "sub-clusters per super-cluster (6)"},
        {"thumbs", NULL, DC_OPT_INT, &o.thumbs_per_sub, 1, 16, NULL, 0, "N", "thumbnails per sub-cluster (8)"},
        {"thumb-side", NULL, DC_OPT_INT, &o.thumb_side, 8, 512, NULL, 0, "PX", "longest thumbnail side (64)"},
    };
    dc_args a;
    int code;
    if (!dc_cli_parse(&a, "report", "--run RUN [--out FILE] [options]",
                      "Writes one self-contained HTML page about a training run: loss, precision and\n"
                      "clustering curves, cluster sizes, a cluster browser with thumbnails of the\n"
                      "images nearest each centroid, evaluations beside the random baseline, and the\n"
                      "configuration. No scripts and nothing fetched: it opens anywhere.",
                      opts, (int)(sizeof opts / sizeof opts[0]), 0, argc, argv, &code))
        return code;
    char path[4200];
    if (!out) {
        snprintf(path, sizeof path, "%s/report.html", run);
        out = path;
    }
    if (dc_report_write(run, out, &o)) return dc_cli_fail();
    printf("%s\n", out);
    return DC_EXIT_OK;
}
