/* args.h — table-driven GNU-style option parsing for the subcommands:
 * `--name VALUE`, `--name=VALUE`, flags without values, `--` to end options,
 * `-h`/`--help`. Underscore spellings (`--super_classes`) are accepted for
 * every option, and extra aliases (the original's names) per option.
 * Numbers are checked completely: malformed, non-finite or out-of-range
 * values are errors with a one-line message.
 * Includes: dc/core.h. In the library (not public) so that the training
 * options it parses are the same for the program and for callers of
 * dc_train_main (the Python package). */
#ifndef DC_CLI_ARGS_H
#define DC_CLI_ARGS_H

#include "dc/core.h"

#include <stdint.h>
#include <stdio.h>

typedef enum dc_opt_kind {
    DC_OPT_INT,    /* int *                                   */
    DC_OPT_I64,    /* int64_t *                               */
    DC_OPT_DOUBLE, /* double *                                */
    DC_OPT_STRING, /* const char ** (points into argv)        */
    DC_OPT_CHOICE, /* const char **; one of `choices`         */
    DC_OPT_FLAG,   /* int *, set to 1; takes no value         */
} dc_opt_kind;

typedef struct dc_opt {
    const char *name;     /* without dashes: "super-classes"               */
    const char *aliases;  /* space-separated other names, or NULL          */
    dc_opt_kind kind;
    void *dest;           /* holds the default on entry                    */
    double min, max;      /* inclusive bounds for numbers (if min < max)   */
    const char *choices;  /* DC_OPT_CHOICE: "a|b|c"                        */
    int required;
    const char *metavar;  /* "K", "FILE", ...                              */
    const char *help;
} dc_opt;

enum { DC_ARGS_OK = 0, DC_ARGS_HELP = 1, DC_ARGS_ERROR = 2 };

#define DC_ARGS_MAX_OPTS 64

typedef struct dc_args {
    const char *pos[16]; /* positional arguments, in order  */
    int npos;
    char seen[DC_ARGS_MAX_OPTS]; /* seen[i]: option i was given */
    char err[512];       /* the message when DC_ARGS_ERROR   */
} dc_args;

/// Parses argv[0..argc) (argv[0] is the first argument, not the program)
/// into the options' destinations. `prog` ("deepercluster kmeans") starts
/// error messages. At most `max_pos` positional arguments are accepted.
int dc_args_parse(dc_args *a, const char *prog, const dc_opt *opts, int nopts,
                  int max_pos, int argc, char **argv);

/// Prints "usage: <prog> <synopsis>", the description and the option table
/// with each option's current value as its default.
void dc_args_usage(FILE *f, const char *prog, const char *synopsis,
                   const char *description, const dc_opt *opts, int nopts);

#endif
