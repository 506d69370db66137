/* comm.c — the communication module: MPI when built with it (DC_HAVE_MPI)
 * and started by a launcher, the single-process backend otherwise. MPI is
 * initialised only under a launcher (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
 * SLURM's PMI variables), so a plain run never pays for it.
 * Includes: dc/comm.h, MPI (optional), libc. */
#define _POSIX_C_SOURCE 200809L
#include "dc/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DC_HAVE_MPI
#include <mpi.h>
#endif

struct dc_comm {
    int rank, size;
    int mpi;         /* 1: MPI backend */
#ifdef DC_HAVE_MPI
    MPI_Comm mc;
#endif
};

#ifdef DC_HAVE_MPI
static void abort_world(void) { MPI_Abort(MPI_COMM_WORLD, 1); }

static dc_status mpi_check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return DC_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return dc_set_error(DC_STATUS_COMM, "%s failed: %s", what, msg);
}
#endif

static int launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") || getenv("SLURM_STEP_ID");
}

dc_status dc_comm_init(int *argc, char ***argv, dc_comm **world)
{
    dc_comm *c = dc_xcalloc(1, sizeof *c);
    c->size = 1;
#ifdef DC_HAVE_MPI
    if (launched_by_mpi()) {
        int provided;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            dc_free(c);
            return dc_set_error(DC_STATUS_COMM, "MPI_Init failed");
        }
        c->mpi = 1;
        c->mc = MPI_COMM_WORLD;
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(c->mc, &c->rank);
        MPI_Comm_size(c->mc, &c->size);
        dc_set_abort_hook(abort_world);
    }
#else
    (void)argc;
    (void)argv;
    if (launched_by_mpi())
        dc_log_warn("started by an MPI launcher, but this build has no MPI: every process runs alone");
#endif
    dc_log_set_rank(c->rank, 0);
    *world = c;
    return DC_OK;
}

dc_comm *dc_comm_self(void)
{
    dc_comm *c = dc_xcalloc(1, sizeof *c);
    c->size = 1;
    return c;
}

void dc_comm_finalize(dc_comm *world)
{
    if (!world) return;
#ifdef DC_HAVE_MPI
    if (world->mpi) MPI_Finalize();
#endif
    dc_free(world);
}

const char *dc_comm_backend(const dc_comm *c) { return c->mpi ? "mpi" : "single"; }
int dc_comm_rank(const dc_comm *c) { return c->rank; }
int dc_comm_size(const dc_comm *c) { return c->size; }

dc_status dc_comm_split(const dc_comm *c, int color, int key, dc_comm **out)
{
    dc_comm *s = dc_xcalloc(1, sizeof *s);
    s->size = 1;
#ifdef DC_HAVE_MPI
    if (c->mpi) {
        dc_status st = mpi_check(MPI_Comm_split(c->mc, color, key, &s->mc), "MPI_Comm_split");
        if (st) {
            dc_free(s);
            return st;
        }
        s->mpi = 1;
        MPI_Comm_rank(s->mc, &s->rank);
        MPI_Comm_size(s->mc, &s->size);
    }
#else
    (void)c;
#endif
    (void)color;
    (void)key;
    *out = s;
    return DC_OK;
}

void dc_comm_free(dc_comm *c)
{
    if (!c) return;
#ifdef DC_HAVE_MPI
    if (c->mpi && c->mc != MPI_COMM_WORLD) MPI_Comm_free(&c->mc);
#endif
    dc_free(c);
}

#ifdef DC_HAVE_MPI
/* MPI counts are int: large buffers go in chunks. */
static dc_status allreduce(const dc_comm *c, void *buf, size_t n, MPI_Datatype t, size_t elem)
{
    const size_t chunk = (size_t)1 << 28;
    for (size_t off = 0; off < n; off += chunk) {
        int cnt = (int)(n - off < chunk ? n - off : chunk);
        dc_status s = mpi_check(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, cnt, t, MPI_SUM, c->mc),
                                "MPI_Allreduce");
        if (s) return s;
    }
    return DC_OK;
}
#endif

dc_status dc_comm_allreduce_f32(const dc_comm *c, float *buf, size_t n)
{
#ifdef DC_HAVE_MPI
    if (c->mpi) return allreduce(c, buf, n, MPI_FLOAT, sizeof *buf);
#endif
    (void)c;
    (void)buf;
    (void)n;
    return DC_OK;
}

dc_status dc_comm_allreduce_f64(const dc_comm *c, double *buf, size_t n)
{
#ifdef DC_HAVE_MPI
    if (c->mpi) return allreduce(c, buf, n, MPI_DOUBLE, sizeof *buf);
#endif
    (void)c;
    (void)buf;
    (void)n;
    return DC_OK;
}

dc_status dc_comm_allreduce_i64(const dc_comm *c, int64_t *buf, size_t n)
{
#ifdef DC_HAVE_MPI
    if (c->mpi) return allreduce(c, buf, n, MPI_INT64_T, sizeof *buf);
#endif
    (void)c;
    (void)buf;
    (void)n;
    return DC_OK;
}

dc_status dc_comm_bcast(const dc_comm *c, void *buf, size_t bytes, int root)
{
#ifdef DC_HAVE_MPI
    if (c->mpi) {
        DC_ASSERT(bytes <= (size_t)INT32_MAX);
        return mpi_check(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, c->mc), "MPI_Bcast");
    }
#endif
    (void)c;
    (void)buf;
    (void)bytes;
    DC_ASSERT(root == 0);
    return DC_OK;
}

dc_status dc_comm_allgatherv(const dc_comm *c, const void *send, size_t bytes, void *recv, const size_t *counts)
{
#ifdef DC_HAVE_MPI
    if (c->mpi) {
        int *cnt = dc_xmalloc((size_t)c->size * sizeof *cnt), *disp = dc_xmalloc((size_t)c->size * sizeof *disp);
        size_t off = 0;
        for (int r = 0; r < c->size; r++) {
            DC_ASSERT(counts[r] <= (size_t)INT32_MAX && off <= (size_t)INT32_MAX);
            cnt[r] = (int)counts[r];
            disp[r] = (int)off;
            off += counts[r];
        }
        DC_ASSERT(counts[c->rank] == bytes);
        dc_status s = mpi_check(MPI_Allgatherv(send, (int)bytes, MPI_BYTE, recv, cnt, disp, MPI_BYTE, c->mc),
                                "MPI_Allgatherv");
        dc_free(cnt);
        dc_free(disp);
        return s;
    }
#endif
    (void)c;
    (void)counts;
    if (bytes && recv != send) memmove(recv, send, bytes);
    return DC_OK;
}

dc_status dc_comm_alltoallv(const dc_comm *c, const void *send, const size_t *send_counts, void *recv,
                            const size_t *recv_counts)
{
#ifdef DC_HAVE_MPI
    if (c->mpi) {
        int W = c->size;
        int *sc = dc_xmalloc((size_t)W * 4 * sizeof *sc), *sd = sc + W, *rc = sc + 2 * W, *rd = sc + 3 * W;
        size_t so = 0, ro = 0;
        for (int r = 0; r < W; r++) {
            DC_ASSERT(send_counts[r] <= (size_t)INT32_MAX && so <= (size_t)INT32_MAX);
            DC_ASSERT(recv_counts[r] <= (size_t)INT32_MAX && ro <= (size_t)INT32_MAX);
            sc[r] = (int)send_counts[r];
            sd[r] = (int)so;
            rc[r] = (int)recv_counts[r];
            rd[r] = (int)ro;
            so += send_counts[r];
            ro += recv_counts[r];
        }
        dc_status s = mpi_check(MPI_Alltoallv(send, sc, sd, MPI_BYTE, recv, rc, rd, MPI_BYTE, c->mc), "MPI_Alltoallv");
        dc_free(sc);
        return s;
    }
#endif
    (void)c;
    DC_ASSERT(send_counts[0] == recv_counts[0]);
    if (send_counts[0] && recv != send) memmove(recv, send, send_counts[0]);
    return DC_OK;
}

struct dc_comm_req {
#ifdef DC_HAVE_MPI
    MPI_Request r;
#endif
    int done;
};

dc_status dc_comm_iallreduce_f32(const dc_comm *c, float *buf, size_t n, dc_comm_req **req)
{
    dc_comm_req *q = dc_xcalloc(1, sizeof *q);
    *req = q;
#ifdef DC_HAVE_MPI
    if (c->mpi) {
        DC_ASSERT(n <= (size_t)INT32_MAX);
        dc_status s = mpi_check(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, c->mc, &q->r),
                                "MPI_Iallreduce");
        if (s) q->done = 1;
        return s;
    }
#endif
    (void)c;
    (void)buf;
    (void)n;
    q->done = 1;
    return DC_OK;
}

void dc_comm_progress(dc_comm_req *const *reqs, int n)
{
#ifdef DC_HAVE_MPI
    for (int i = 0; i < n; i++)
        if (reqs[i] && !reqs[i]->done) {
            int flag = 0;
            MPI_Test(&reqs[i]->r, &flag, MPI_STATUS_IGNORE);
            if (flag) reqs[i]->done = 1;
        }
#else
    (void)reqs;
    (void)n;
#endif
}

dc_status dc_comm_wait(dc_comm_req *req)
{
    dc_status s = DC_OK;
#ifdef DC_HAVE_MPI
    if (req && !req->done) s = mpi_check(MPI_Wait(&req->r, MPI_STATUS_IGNORE), "MPI_Wait");
#endif
    dc_free(req);
    return s;
}

dc_status dc_comm_barrier(const dc_comm *c)
{
#ifdef DC_HAVE_MPI
    if (c->mpi) return mpi_check(MPI_Barrier(c->mc), "MPI_Barrier");
#endif
    (void)c;
    return DC_OK;
}

void dc_comm_abort(const dc_comm *c, const char *message)
{
    fprintf(stderr, "deepercluster: rank %d: %s\n", c->rank, message);
    fflush(stderr);
#ifdef DC_HAVE_MPI
    if (c->mpi) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    exit(1);
}
