/* step.c — one optimisation step of DeeperCluster's two-level loss
 * (SPEC §5; the original's src/trainer.py run on W processes, one
 * super-class each, with gradients averaged by DistributedDataParallel):
 * here a process takes any share of the global batch (all of it when
 * alone), samples grouped by super-class so that each sub-class head is
 * one GEMM; with several, batch norm is synchronised and the gradients
 * summed, so the step is the same at any process count.
 * Includes: dc/train.h, dc/nn.h, dc/kernels.h. */
#include "dc/comm.h"
#include "dc/kernels.h"
#include "dc/train.h"
#include "gpu/gpu.h"

#include <stdio.h>
#include <string.h>

#define MOMENTUM 0.9f

void dc_stepper_free(dc_stepper *st)
{
    if (!st) return;
    dc_gpu_step_free(st->gpu);
    dc_free(st->h);
    dc_free(st->rows);
    dc_free(st->momentum);
    dc_free(st->gcount);
    for (int i = 0; i < st->nreq; i++) dc_comm_wait(st->reqs[i]);
    dc_free(st->reqs);
    memset(st, 0, sizeof *st);
}

dc_status dc_stepper_init(dc_stepper *st, const dc_model *m, int S, int k_sub, int max_batch)
{
    memset(st, 0, sizeof *st);
    DC_ASSERT(S >= 1 && k_sub >= 1 && max_batch >= 1);
    st->S = S;
    st->k_sub = k_sub;
    st->D = m->feat_dim;
    st->max_batch = max_batch;
    size_t N = (size_t)max_batch, D = (size_t)m->feat_dim;
    /* floats: h, dh, hs, dhs (N·D each); ls, ps, dls (N·S); lsub, psub,
     * dlsub, tmp (N·k_sub) */
    size_t nf = 4 * N * D + 3 * N * (size_t)S + 4 * N * (size_t)k_sub;
    float *f = dc_calloc(nf, sizeof(float), "training step buffers");
    size_t nt = N > (size_t)S ? N : (size_t)S; /* tsub doubles as S cursors */
    int32_t *ints = dc_calloc(N + nt + (size_t)S + 1, sizeof(int32_t), "training step indices");
    float *mom = dc_calloc((size_t)m->nparams, sizeof(float), "momentum");
    int64_t *gc = dc_calloc((size_t)S + 1, sizeof(int64_t), "global class counts");
    if (!f || !ints || !mom || !gc) {
        dc_free(f);
        dc_free(ints);
        dc_free(mom);
        dc_free(gc);
        return DC_STATUS_NOMEM;
    }
    st->gcount = gc;
    st->h = f;
    st->dh = st->h + N * D;
    st->hs = st->dh + N * D;
    st->dhs = st->hs + N * D;
    st->ls = st->dhs + N * D;
    st->ps = st->ls + N * S;
    st->dls = st->ps + N * S;
    st->lsub = st->dls + N * S;
    st->psub = st->lsub + N * k_sub;
    st->dlsub = st->psub + N * k_sub;
    st->tmp = st->dlsub + N * k_sub;
    st->rows = ints;
    st->tsub = ints + N;
    st->start = ints + N + nt;
    st->momentum = mom;
    st->nparams = m->nparams;
    st->body_first = 1;
    if (m->gpu) {
        dc_status s = dc_gpu_step_create(&st->gpu, m->gpu, st);
        if (s) {
            char why[512];
            snprintf(why, sizeof why, "%s", dc_last_error());
            dc_stepper_free(st);
            return dc_set_error(s, "%s", why);
        }
        st->gpu_heads_stale = 1;
    }
    return DC_OK;
}

dc_status dc_step_sync(dc_stepper *st, dc_model *m, dc_head *super, dc_head *subs, int to_host)
{
    if (!st->gpu) return DC_OK;
    /* stale heads: the host's are the newer, whichever the direction */
    int what = DC_GPU_MOMENTUM | (st->gpu_heads_stale && to_host ? 0 : DC_GPU_HEADS);
    dc_status s = dc_model_sync(m, to_host);
    if (s == DC_OK) s = dc_gpu_step_sync(st->gpu, st, super, subs, to_host, what);
    if (s == DC_OK && !to_host) st->gpu_heads_stale = 0;
    if (s && !st->gpu_status) st->gpu_status = s;
    return s;
}

void dc_step_heads_changed(dc_stepper *st)
{
    if (st->gpu) st->gpu_heads_stale = 1;
}

dc_status dc_step_status(const dc_stepper *st)
{
    if (st->gpu_status) return st->gpu_status;
    return st->comm_status;
}

static void model_reduce(void *ctx, double *buf, int n)
{
    /* MPI's errors are fatal by default; a failure here cannot be undone */
    dc_status s = dc_comm_allreduce_f64((const dc_comm *)ctx, buf, (size_t)n);
    DC_ASSERT(s == DC_OK);
}

void dc_step_use_comm(dc_stepper *st, dc_model *m, const dc_comm *comm, int64_t sample_offset)
{
    int dist = comm && dc_comm_size(comm) > 1;
    st->comm = dist ? comm : NULL;
    m->reduce = dist ? model_reduce : NULL;
    m->reduce_ctx = dist ? (void *)comm : NULL;
    m->sample_offset = dist ? sample_offset : 0;
    if (dist && !st->reqs) {
        st->maxreq = 2 * m->nlayers + 2 * st->S + 4;
        st->reqs = dc_xcalloc((size_t)st->maxreq, sizeof *st->reqs);
        st->overlap = 1;
    }
}

void dc_step_set_overlap(dc_stepper *st, int overlap) { st->overlap = overlap; }

/* Starts the sum of buf (n floats) over the ranks. */
static void start_sum(dc_stepper *st, float *buf, int64_t n)
{
    DC_ASSERT(st->nreq < st->maxreq);
    if (n <= 0) return;
    dc_status s = dc_comm_iallreduce_f32(st->comm, buf, (size_t)n, &st->reqs[st->nreq++]);
    if (s && st->comm_status == DC_OK) st->comm_status = s;
}

/* The body's gradients [first, nparams) are final: start the sum of those
 * not started yet once they make a bucket, and let the started ones run. */
static void body_grads_ready(void *ctx, int64_t first)
{
    dc_stepper *st = ctx;
    if (st->issued - first >= DC_GRAD_BUCKET_FLOATS || first == 0) {
        start_sum(st, st->body_grads + first, st->issued - first);
        st->issued = first;
        st->early += st->in_backward;
    }
    dc_comm_progress(st->reqs, st->nreq);
}

int64_t dc_step_comm_bytes(const dc_stepper *st, const dc_model *m, int64_t *bn_bytes)
{
    int64_t bn = 0;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].kind == DC_LAYER_BN) bn += (4 * (int64_t)m->layers[i].c + 1) * 8;
    int64_t heads = ((int64_t)st->S * st->D + st->S + (int64_t)st->S * (st->k_sub * (int64_t)st->D + st->k_sub)) * 4;
    if (bn_bytes) *bn_bytes = bn;
    return m->nparams * 4 + heads + bn + (int64_t)(st->S + 1) * 8 + 5 * 8 + 16;
}

static void zero_head_grads(dc_head *h)
{
    memset(h->dw, 0, (size_t)h->out * h->in * sizeof(float));
    memset(h->db, 0, (size_t)h->out * sizeof(float));
}

/* The first index of the largest of z[0..n). */
static int argmax(const float *z, int n)
{
    int a = 0;
    for (int c = 1; c < n; c++)
        if (z[c] > z[a]) a = c;
    return a;
}

/* Group the samples by super-class (stable: batch order kept) into
 * st->rows, st->start[s] the first row of class s; count them over the
 * global batch in st->gcount (S + 1: the batch's size last). */
static void group_by_super(dc_stepper *st, const int32_t *sup, const int32_t *sub, int N)
{
    int S = st->S;
    for (int s = 0; s <= S; s++) st->start[s] = 0;
    for (int i = 0; i < N; i++) {
        DC_ASSERT(sup[i] >= 0 && sup[i] < S && sub[i] >= 0 && sub[i] < st->k_sub);
        st->start[sup[i] + 1]++;
    }
    for (int s = 0; s < S; s++) st->gcount[s] = st->start[s + 1];
    st->gcount[S] = N;
    if (st->comm && st->comm_status == DC_OK) st->comm_status = dc_comm_allreduce_i64(st->comm, st->gcount, (size_t)S + 1);
    for (int s = 0; s < S; s++) st->start[s + 1] += st->start[s];
    /* counting sort; tsub serves as the per-class cursor */
    for (int s = 0; s < S; s++) st->tsub[s] = st->start[s];
    for (int i = 0; i < N; i++) st->rows[st->tsub[sup[i]]++] = i;
}

/* Sub-class head s on its own samples: its loss summed over them, its
 * gradient (the mean over its samples, 1/n_s) into subs->dw/db, the
 * body's (the mean over the batch, 1/N) added to st->dh. */
static double sub_head_pass(dc_stepper *st, dc_head *head, int s, const int32_t *sup, const int32_t *sub, float NG,
                            dc_step_stats *stats)
{
    int S = st->S, K = st->k_sub, D = st->D;
    int lo = st->start[s], ns = st->start[s + 1] - lo;
    for (int j = 0; j < ns; j++) {
        int i = st->rows[lo + j];
        memcpy(st->hs + (size_t)j * D, st->h + (size_t)i * D, (size_t)D * sizeof(float));
        st->tsub[j] = sub[i];
    }
    float *lg = st->lsub + (size_t)lo * K, *pr = st->psub + (size_t)lo * K, *dl = st->dlsub + (size_t)lo * K;
    dc_linear_forward(lg, st->hs, head->w, head->b, ns, D, K);
    int hits = 0;
    double loss = dc_softmax_xent_forward(pr, &hits, lg, st->tsub, ns, K);
    stats->correct_sub += hits;
    /* joint precision: both heads right for the same sample */
    for (int j = 0; j < ns; j++) {
        int i = st->rows[lo + j];
        stats->correct_both += argmax(st->ls + (size_t)i * S, S) == sup[i] && argmax(lg + (size_t)j * K, K) == sub[i];
    }
    memset(dl, 0, (size_t)ns * K * sizeof(float));
    dc_softmax_xent_backward(dl, pr, st->tsub, ns, K, 1.0f / NG);
    /* head: (N / n_s) · Σ dlᵀ hs, i.e. the mean over its samples */
    memcpy(st->tmp, dl, (size_t)ns * K * sizeof(float));
    float scale = NG / (float)st->gcount[s];
    for (int64_t t = 0; t < (int64_t)ns * K; t++) st->tmp[t] *= scale;
    memset(st->dhs, 0, (size_t)ns * D * sizeof(float));
    dc_linear_backward(NULL, head->dw, head->db, st->tmp, st->hs, head->w, ns, D, K);
    dc_linear_backward(st->dhs, NULL, NULL, dl, st->hs, head->w, ns, D, K);
    for (int j = 0; j < ns; j++) {
        float *d = st->dh + (size_t)st->rows[lo + j] * D;
        const float *e = st->dhs + (size_t)j * D;
        for (int t = 0; t < D; t++) d[t] += e[t];
    }
    return loss;
}

/* The losses and counts of every rank, summed. */
static void reduce_stats(dc_stepper *st, double *lsup, double *lsub, dc_step_stats *stats)
{
    double v[5] = {*lsup, *lsub, stats->correct_super, stats->correct_sub, stats->correct_both};
    if (st->comm_status == DC_OK) st->comm_status = dc_comm_allreduce_f64(st->comm, v, 5);
    *lsup = v[0];
    *lsub = v[1];
    stats->correct_super = (int)v[2];
    stats->correct_sub = (int)v[3];
    stats->correct_both = (int)v[4];
    stats->n = (int)st->gcount[st->S];
}

/* The heads' gradients are final before the body's backward: their sums
 * start first. */
static void start_head_sums(dc_stepper *st, dc_head *super, dc_head *subs)
{
    start_sum(st, super->dw, (int64_t)super->out * super->in);
    start_sum(st, super->db, super->out);
    for (int s = 0; s < st->S; s++)
        if (st->gcount[s] > 0) {
            start_sum(st, subs[s].dw, (int64_t)subs[s].out * subs[s].in);
            start_sum(st, subs[s].db, subs[s].out);
        }
}

/* After the backward: the body's buckets not started yet (all of them
 * without overlap, at the same boundaries: the layers' offsets from the last
 * down), then every sum waited for. */
static void finish_sums(dc_stepper *st, dc_model *m)
{
    if (!st->overlap)
        for (int i = m->nlayers - 1; i >= 0; i--) {
            const dc_layer *l = &m->layers[i];
            if (l->w_off >= 0 && !l->fixed &&
                (l->kind == DC_LAYER_CONV || l->kind == DC_LAYER_BN || l->kind == DC_LAYER_LINEAR))
                body_grads_ready(st, l->w_off);
        }
    if (st->issued > 0) body_grads_ready(st, 0);
    for (int i = 0; i < st->nreq; i++) {
        dc_status s = dc_comm_wait(st->reqs[i]);
        st->reqs[i] = NULL;
        if (s && st->comm_status == DC_OK) st->comm_status = s;
    }
    st->nreq = 0;
}

void dc_step_compute(dc_stepper *st, dc_model *m, dc_head *super, dc_head *subs, const float *x,
                     const int32_t *sup, const int32_t *sub, int N, dc_step_stats *stats)
{
    DC_ASSERT(N >= 1 && N <= st->max_batch);
    int S = st->S, D = st->D;
    memset(stats, 0, sizeof *stats);
    stats->n = N;
    if (st->gpu) {
        if (st->gpu_status) return;
        group_by_super(st, sup, sub, N);
        dc_status s = DC_OK;
        if (st->gpu_heads_stale) s = dc_gpu_step_sync(st->gpu, st, super, subs, 0, DC_GPU_HEADS);
        if (s == DC_OK) st->gpu_heads_stale = 0;
        if (s == DC_OK) s = dc_gpu_step_compute(st->gpu, st, m, super, subs, x, sup, sub, N, stats);
        if (s && !st->gpu_status) {
            st->gpu_status = s;
            dc_log_error("%s", dc_last_error());
        }
        return;
    }
    dc_model_zero_grad(m);
    zero_head_grads(super);
    for (int s = 0; s < S; s++) zero_head_grads(&subs[s]);
    group_by_super(st, sup, sub, N);
    const float NG = (float)st->gcount[S]; /* the batch the means are over */

    const float *feat = dc_model_forward(m, x, N, 1);
    dc_relu_forward(st->h, feat, (int64_t)N * D);
    memset(st->dh, 0, (size_t)N * D * sizeof(float));

    /* Super-class head over the whole batch: mean CE. */
    dc_linear_forward(st->ls, st->h, super->w, super->b, N, D, S);
    double lsup = dc_softmax_xent_forward(st->ps, &stats->correct_super, st->ls, sup, N, S);
    memset(st->dls, 0, (size_t)N * S * sizeof(float));
    dc_softmax_xent_backward(st->dls, st->ps, sup, N, S, 1.0f / NG);
    dc_linear_backward(st->dh, super->dw, super->db, st->dls, st->h, super->w, N, D, S);

    double lsub = 0;
    for (int s = 0; s < S; s++)
        if (st->start[s + 1] > st->start[s]) lsub += sub_head_pass(st, &subs[s], s, sup, sub, NG, stats);
    if (st->comm) reduce_stats(st, &lsup, &lsub, stats);
    stats->loss_super = lsup / NG;
    stats->loss_sub = lsub / NG;
    stats->loss = stats->loss_super + stats->loss_sub;

    /* Through the ReLU into the body. */
    float *dfeat = st->hs; /* free again: reuse as (N, D) */
    memset(dfeat, 0, (size_t)N * D * sizeof(float));
    dc_relu_backward(dfeat, st->dh, st->h, (int64_t)N * D);
    if (st->comm) {
        st->nreq = 0;
        st->issued = m->nparams;
        st->body_grads = m->grads;
        start_head_sums(st, super, subs);
        m->grad_ready = st->overlap ? body_grads_ready : NULL;
        m->grad_ctx = st;
        st->in_backward = 1;
    }
    dc_model_backward(m, dfeat);
    if (st->comm) {
        st->in_backward = 0;
        m->grad_ready = NULL;
        finish_sums(st, m);
    }
}

static void head_sgd(dc_head *h, float lr, float wd)
{
    int first = !h->has_momentum;
    dc_sgd_step(h->w, h->dw, h->mw, (int64_t)h->out * h->in, lr, MOMENTUM, wd, first);
    dc_sgd_step(h->b, h->db, h->mb, h->out, lr, MOMENTUM, wd, first);
    h->has_momentum = 1;
}

void dc_step_sgd(dc_stepper *st, dc_model *m, dc_head *super, dc_head *subs, float lr, float wd)
{
    if (st->gpu) {
        if (st->gpu_status) return;
        dc_status s = dc_gpu_step_sgd(st->gpu, st, m, super, subs, lr, wd);
        if (s) {
            st->gpu_status = s;
            dc_log_error("%s", dc_last_error());
        }
        return;
    }
    dc_sgd_step(m->params, m->grads, st->momentum, m->nparams, lr, MOMENTUM, wd, st->body_first);
    st->body_first = 0;
    head_sgd(super, lr, wd);
    for (int s = 0; s < st->S; s++)
        if (st->gcount[s] > 0) head_sgd(&subs[s], lr, wd);
}
