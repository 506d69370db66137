/* dc/comm.h — communication between processes for distributed runs, with
 * two backends behind one interface: MPI (OpenMPI; used when the program
 * was started by mpirun/srun) and a single-process backend (always there;
 * the whole build works and computes the same thing without MPI).
 * Collective calls must be made by every rank of the communicator in the
 * same order. Includes: dc/core.h. */
#ifndef DC_COMM_H
#define DC_COMM_H

#include "dc/core.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_comm dc_comm;

/// The world: MPI's when launched by an MPI launcher (and built with MPI),
/// else a single process. Also routes DC_ASSERT aborts to MPI_Abort and
/// sets the log rank. Owned: dc_comm_finalize.
dc_status dc_comm_init(int *argc, char ***argv, dc_comm **world);
/// A communicator of this process alone (no MPI); dc_comm_free.
dc_comm *dc_comm_self(void);
/// Frees the world and shuts MPI down. NULL is accepted.
void dc_comm_finalize(dc_comm *world);
/// "mpi" or "single".
const char *dc_comm_backend(const dc_comm *c);
int dc_comm_rank(const dc_comm *c);
int dc_comm_size(const dc_comm *c);

/// Sub-communicator of the ranks passing the same color, ordered by key.
/// Owned: dc_comm_free.
dc_status dc_comm_split(const dc_comm *c, int color, int key, dc_comm **out);
void dc_comm_free(dc_comm *c);

/// In-place sums over all ranks.
dc_status dc_comm_allreduce_f32(const dc_comm *c, float *buf, size_t n);
dc_status dc_comm_allreduce_f64(const dc_comm *c, double *buf, size_t n);
dc_status dc_comm_allreduce_i64(const dc_comm *c, int64_t *buf, size_t n);
/// Root's `bytes` bytes to every rank.
dc_status dc_comm_bcast(const dc_comm *c, void *buf, size_t bytes, int root);
/// Concatenation in rank order of every rank's `bytes` bytes into recv,
/// which holds the total; counts[r] = bytes of rank r (all ranks pass the
/// same counts).
dc_status dc_comm_allgatherv(const dc_comm *c, const void *send, size_t bytes, void *recv,
                             const size_t *counts);
/// Every rank's send_counts[r] bytes to rank r (in rank order, packed in
/// send), every rank's bytes for this one into recv in rank order
/// (recv_counts[r] from rank r, which must be what r sends here). At most
/// 2^31 - 1 bytes in all each way: callers exchange in chunks.
dc_status dc_comm_alltoallv(const dc_comm *c, const void *send, const size_t *send_counts, void *recv,
                            const size_t *recv_counts);
/// A reduction started and not yet waited for.
typedef struct dc_comm_req dc_comm_req;
/// Starts the in-place sum of buf (n floats) over all ranks and returns at
/// once (*req: for dc_comm_wait, which every start needs); buf must not be
/// touched until then. Ranks start their reductions in the same order. One
/// process: done at once.
dc_status dc_comm_iallreduce_f32(const dc_comm *c, float *buf, size_t n, dc_comm_req **req);
/// Lets started reductions advance (MPI progresses them only inside its
/// calls): call now and then while computing.
void dc_comm_progress(dc_comm_req *const *reqs, int n);
/// Waits for req to finish and frees it (NULL: nothing).
dc_status dc_comm_wait(dc_comm_req *req);
dc_status dc_comm_barrier(const dc_comm *c);
/// Prints "deepercluster: rank R: <message>" and stops every rank.
DC_NORETURN void dc_comm_abort(const dc_comm *c, const char *message);

#ifdef __cplusplus
}
#endif
#endif
