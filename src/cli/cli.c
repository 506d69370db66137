/* cli.c — helpers shared by the subcommands (see cli.h).
 * Includes: cli/cli.h, libc. */
#include "cli/cli.h"

#include <stdio.h>

int dc_cli_fail(void)
{
    fprintf(stderr, "deepercluster: error: %s\n", dc_last_error());
    return DC_EXIT_FAIL;
}

int dc_cli_parse(dc_args *a, const char *cmd, const char *synopsis,
                 const char *description, const dc_opt *opts, int nopts,
                 int max_pos, int argc, char **argv, int *exit_code)
{
    char prog[64];
    snprintf(prog, sizeof prog, "deepercluster %s", cmd);
    int r = dc_args_parse(a, prog, opts, nopts, max_pos, argc - 1, argv + 1);
    if (r == DC_ARGS_HELP) {
        dc_args_usage(stdout, prog, synopsis, description, opts, nopts);
        *exit_code = DC_EXIT_OK;
        return 0;
    }
    if (r == DC_ARGS_ERROR) {
        fprintf(stderr, "%s\n", a->err);
        *exit_code = DC_EXIT_USAGE;
        return 0;
    }
    return 1;
}
