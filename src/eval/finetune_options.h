/* finetune_options.h — the option table of `deepercluster eval finetune`
 * (finetune_options.c), for the program's parser and --help and for
 * dc_finetune_main. Not public. Includes: core/args.h, dc/finetune.h. */
#ifndef DC_EVAL_FINETUNE_OPTIONS_H
#define DC_EVAL_FINETUNE_OPTIONS_H

#include "core/args.h"
#include "dc/finetune.h"

enum { DC_FINETUNE_MAX_OPTS = 24 };

/* The options' destinations: the library's config and what only the
 * program reads (--json, --record, --threads). */
typedef struct dc_finetune_args {
    dc_finetune_config c;
    const char *mode, *json, *record;
    int threads;
    int64_t seed;
} dc_finetune_args;

void dc_finetune_args_defaults(dc_finetune_args *a);
/// Fills opts (room for DC_FINETUNE_MAX_OPTS) with the options writing into
/// a; cli nonzero adds the program's own (--json, --record, --threads).
int dc_finetune_option_table(dc_finetune_args *a, dc_opt *opts, int cli);
/// Copies what the options set into a->c (the mode, the seed).
void dc_finetune_args_finish(dc_finetune_args *a);

#endif
