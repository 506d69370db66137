/* fuzz_target.c — fuzzing entry points for every file reader: .npy,
 * safetensors, IDX, CIFAR, list files, pack indexes and the JPEG/PNG
 * decoders. Each input
 * is written to a temporary file and opened as a user's file would be; any
 * crash, sanitizer report or hang is a bug, an error status is the expected
 * outcome for garbage.
 *
 * Two builds: `make fuzz` (clang -fsanitize=fuzzer,address,undefined, one
 * binary per reader: build/fuzz/fuzz_<kind>) for long sessions; and the
 * replay program (DC_FUZZ_REPLAY, built with the tests) that feeds the
 * committed corpus under the sanitizer build in `make check`. */
#define _POSIX_C_SOURCE 200809L
#include "dc/data.h"
#include "dc/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tmp_file(const char *suffix)
{
    static char path[256];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/dcfuzz-%ld%s", dir && *dir ? dir : "/tmp", (long)getpid(), suffix);
    return path;
}

static int write_file(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    if (n) fwrite(data, 1, n, f);
    fclose(f);
    return 0;
}

/* One input through one reader. */
static void run_one(const char *kind, const uint8_t *data, size_t n)
{
    dc_log_set_level(DC_LOG_OFF);
    if (!strcmp(kind, "npy")) {
        const char *p = tmp_file(".npy");
        write_file(p, data, n);
        dc_array a;
        if (dc_npy_map(p, &a) == DC_OK) dc_array_free(&a);
        if (dc_npy_read(p, &a) == DC_OK) dc_array_free(&a);
        unlink(p);
    } else if (!strcmp(kind, "safetensors")) {
        const char *p = tmp_file(".safetensors");
        write_file(p, data, n);
        dc_st_file *f;
        if (dc_st_open(p, &f) == DC_OK) {
            for (int i = 0; i < dc_st_count(f); i++) {
                const dc_st_tensor *t = dc_st_at(f, i);
                /* touch the bytes the header claims: out of bounds would show */
                uint8_t acc = 0;
                for (size_t b = 0; b < t->nbytes; b += 97) acc ^= ((const uint8_t *)t->data)[b];
                if (t->nbytes) acc ^= ((const uint8_t *)t->data)[t->nbytes - 1];
                dc_clear_error();
                if (acc == 0x5a) dc_clear_error(); /* keep the loop */
            }
            dc_st_close(f);
        }
        unlink(p);
    } else if (!strcmp(kind, "idx") || !strcmp(kind, "cifar") || !strcmp(kind, "list")) {
        const char *p = tmp_file(!strcmp(kind, "list") ? ".txt" : !strcmp(kind, "idx") ? "-images-idx3-ubyte" : ".bin");
        write_file(p, data, n);
        dc_dataset *d;
        if (dc_dataset_open(p, NULL, &d) == DC_OK) {
            dc_image_buf b = {0};
            for (int64_t i = 0; i < dc_dataset_size(d) && i < 8; i++) {
                dc_image im;
                dc_dataset_get(d, i, &b, &im);
            }
            dc_image_buf_free(&b);
            dc_dataset_close(d);
        }
        unlink(p);
    } else if (!strcmp(kind, "pack")) {
        /* the input is the index; beside it two shards of fixed bytes */
        char dir[256], path[300];
        snprintf(dir, sizeof dir, "%s", tmp_file(".pack"));
        mkdir(dir, 0777);
        snprintf(path, sizeof path, "%s/index.dcpack", dir);
        write_file(path, data, n);
        static uint8_t shard[4096];
        for (size_t i = 0; i < sizeof shard; i++) shard[i] = (uint8_t)(i * 131 + 7);
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/shard-%05d.bin", dir, k);
            write_file(path, shard, sizeof shard);
        }
        dc_dataset *d;
        if (dc_dataset_open(dir, NULL, &d) == DC_OK) {
            dc_image_buf b = {0};
            for (int64_t i = 0; i < dc_dataset_size(d) && i < 8; i++) {
                dc_image im;
                if (dc_dataset_get(d, i, &b, &im) == DC_OK) {
                    uint8_t acc = 0; /* touch every pixel the entry claims */
                    for (size_t q = 0; q < (size_t)im.h * im.w * im.c; q += 61) acc ^= im.data[q];
                    if (acc == 0x5a) dc_clear_error();
                }
            }
            dc_image_buf_free(&b);
            dc_dataset_close(d);
        }
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/shard-%05d.bin", dir, k);
            unlink(path);
        }
        snprintf(path, sizeof path, "%s/index.dcpack", dir);
        unlink(path);
        rmdir(dir);
    } else if (!strcmp(kind, "image")) {
        const char *p = tmp_file(".img");
        write_file(p, data, n);
        dc_image_buf b = {0};
        dc_image im;
        dc_decode_image(p, 0, &b, &im);
        dc_decode_image(p, 16, &b, &im);
        dc_image_buf_free(&b);
        unlink(p);
    }
}

#ifdef DC_FUZZ_REPLAY
int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fuzz_replay npy|safetensors|idx|cifar|list|pack|image FILE...\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        char *buf;
        size_t n;
        if (dc_read_file(argv[i], (size_t)1 << 26, &buf, &n) != DC_OK) {
            fprintf(stderr, "%s\n", dc_last_error());
            return 1;
        }
        run_one(argv[1], (const uint8_t *)buf, n);
        dc_free(buf);
    }
    printf("%s: %d inputs replayed\n", argv[1], argc - 2);
    return 0;
}
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    run_one(DC_FUZZ_KIND, data, n);
    return 0;
}
#endif
