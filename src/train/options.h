/* options.h — the option table of `deepercluster train` (options.c), for
 * the program's parser and --help. Not public: callers of the library use
 * dc_train_config_parse. Includes: core/args.h, dc/train.h. */
#ifndef DC_TRAIN_OPTIONS_H
#define DC_TRAIN_OPTIONS_H

#include "core/args.h"
#include "dc/train.h"

enum { DC_TRAIN_MAX_OPTS = 40 };

/// Fills opts (room for DC_TRAIN_MAX_OPTS) with train's options, each
/// writing into c's fields (c holds the defaults shown by --help); returns
/// how many.
int dc_train_option_table(dc_train_config *c, dc_opt *opts);
/// The value of --method in argv (the first option), "deepercluster" when
/// absent: it decides the defaults the other options override.
const char *dc_train_method_arg(int argc, char **argv);

#endif
