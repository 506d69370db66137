/* cmd_pack.c — `deepercluster pack`: a dataset into a pack directory (a
 * few large shards and an index, memory-mapped when read).
 * Includes: cli, dc/data.h. */
#include "cli/cli.h"
#include "dc/data.h"

#include <stdio.h>

int dc_cmd_pack(int argc, char **argv)
{
    const char *data = NULL, *labels = NULL, *out = NULL;
    int64_t shard_mb = 1024;
    dc_pack_opts o;
    dc_pack_opts_default(&o);
    const dc_opt opts[] = {
        {"data", NULL, DC_OPT_STRING, &data, 0, 0, NULL, 1, "SRC", "images: folder, list, IDX, CIFAR (or a pack)"},
        {"labels", NULL, DC_OPT_STRING, &labels, 0, 0, NULL, 0, "FILE", "IDX labels, when not beside the images"},
        {"out", NULL, DC_OPT_STRING, &out, 0, 0, NULL, 1, "DIR", "the pack directory to write"},
        {"max-side", NULL, DC_OPT_INT, &o.max_side, 0, 65535, NULL, 0, "S",
         "resize images whose shorter side exceeds S to S (0: keep sizes)"},
        {"shard-mb", NULL, DC_OPT_I64, &shard_mb, 1, 1 << 20, NULL, 0, "MB", "shard size (default 1024)"},
        {"max-images", NULL, DC_OPT_I64, &o.max_images, 0, 1e12, NULL, 0, "N", "the first N images only (0: all)"},
    };
    dc_args a;
    int code;
    if (!dc_cli_parse(&a, "pack", "--data SRC --out DIR [--max-side S] [--shard-mb MB]",
                      "Packs a dataset into a directory of a few large shard files and an index, which\n"
                      "every command then reads memory-mapped (--data DIR): millions of images without\n"
                      "a file open each. JPEG/PNG files are stored as they are unless resized; IDX,\n"
                      "CIFAR and resized images as raw 8-bit pixels. Broken files are skipped (listed).",
                      opts, (int)(sizeof opts / sizeof opts[0]), 0, argc, argv, &code))
        return code;
    o.shard_bytes = shard_mb << 20;
    dc_dataset *d;
    if (dc_dataset_open(data, labels, &d)) return dc_cli_fail();
    for (int64_t i = 0; i < dc_dataset_nskipped(d); i++) {
        const char *p, *w;
        dc_dataset_skipped(d, i, &p, &w);
        fprintf(stderr, "skipped %s: %s\n", p, w);
    }
    dc_pack_stats st;
    dc_status s = dc_pack_write(d, out, &o, &st);
    dc_dataset_close(d);
    if (s == DC_STATUS_ARG) {
        fprintf(stderr, "deepercluster pack: %s\n", dc_last_error());
        return DC_EXIT_USAGE;
    }
    if (s) return dc_cli_fail();
    printf("%s: %lld images (%lld stored as their files, %lld resized), %.1f MB in %d shard%s\n", out,
           (long long)st.images, (long long)st.files, (long long)st.resized, st.bytes / 1e6, st.shards,
           st.shards == 1 ? "" : "s");
    return DC_EXIT_OK;
}
