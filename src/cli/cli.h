/* cli.h — what the subcommands share: the command table entry type, exit
 * codes and the error printer. Includes: dc/core.h. */
#ifndef DC_CLI_H
#define DC_CLI_H

#include "core/args.h"
#include "dc/core.h"

#include <stdatomic.h>
#include <stdint.h>

enum { DC_EXIT_OK = 0, DC_EXIT_FAIL = 1, DC_EXIT_USAGE = 2 };

/// A subcommand: argv[0] is the command name.
typedef int (*dc_cmd_fn)(int argc, char **argv);

typedef struct dc_cmd {
    const char *name;
    const char *summary;
    dc_cmd_fn fn;
} dc_cmd;

/// Prints "deepercluster: error: <dc_last_error()>" and returns DC_EXIT_FAIL.
int dc_cli_fail(void);

/// Parses a command's options; on --help prints usage and sets *exit_code to
/// 0, on error prints the one-line message and sets it to 2. Returns 1 when
/// the command should go on.
int dc_cli_parse(dc_args *a, const char *cmd, const char *synopsis,
                 const char *description, const dc_opt *opts, int nopts,
                 int max_pos, int argc, char **argv, int *exit_code);

/// Sets the OpenMP thread count when threads > 0; returns the count in use.
int dc_cli_set_threads(int threads);

/// Reads integer labels from a .npy (int32, int64 or uint8; shape (N,) or
/// (N, C)) into a new int32 array, row-major (caller frees with dc_free).
dc_status dc_cli_load_labels(const char *path, int32_t **out, int64_t *n,
                             int *ncols);

/// The --device and --precision options' help.
#define DEVICE_HELP "auto (a GPU when one is visible, else the CPU), cpu, cuda or cuda:N"
#define PRECISION_HELP "GPU arithmetic: fp32 (IEEE) or tf32 (tensor cores, the default)"

/// Blocks SIGINT/SIGTERM in every thread and takes them on a watcher
/// thread; call first in main, before any thread exists.
void dc_cli_signals_start(void);
/// The flag the watcher sets (to the signal number) on the first SIGINT or
/// SIGTERM; from this call on, a first signal no longer ends the process.
atomic_int *dc_cli_stop_flag(void);

int dc_cmd_inspect(int argc, char **argv);
int dc_cmd_eval(int argc, char **argv);
int dc_cmd_features(int argc, char **argv);
int dc_cmd_train(int argc, char **argv);
int dc_cmd_kmeans(int argc, char **argv);
int dc_cmd_metrics(int argc, char **argv);
int dc_cmd_report(int argc, char **argv);
int dc_cmd_pack(int argc, char **argv);

#endif
