/* step.c — the two-level training step on the GPU (dc_step_compute and
 * dc_step_sgd's device half): the heads, their gradients and momentum and
 * the body's momentum in flat device buffers; per step the targets and the
 * grouping by super-class go up with the images, the forward, the super
 * head over the batch, each sub head on its super-class's rows (gathered:
 * contiguous), the gradients back through the body, and 5 numbers down.
 * Includes: gpu/gpu_internal.h. */
#include "gpu/gpu_internal.h"

#include <stdio.h>
#include <string.h>

struct dc_gpu_step {
    dc_gpu_model *g;
    int S, K, D, B;
    int64_t nsup, nsub; /* floats of the super head (w, b) and of one sub head */
    float *hp, *hg, *hm; /* heads: params, gradients, momentum: super, then subs */
    float *mom;          /* body momentum */
    float *h, *dh, *hs, *dhs, *ls, *dls, *lsub, *dlsub;
    double *lsup_r, *lsub_r, *stats;
    int32_t *hsup, *hsub, *ints; /* ints: sup (B), sorted sub targets (B), rows (B) */
    int32_t *hints;              /* pinned host copy */
    double *hstats;              /* pinned */
    float *hstage;               /* the heads' gradients on the host (distributed) */
};

void dc_gpu_step_free(dc_gpu_step *gs)
{
    if (!gs) return;
    void *b[] = {gs->hp, gs->hg, gs->hm, gs->mom, gs->h, gs->lsup_r, gs->hsup, gs->ints};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
        if (b[i]) cudaFree(b[i]);
    if (gs->hints) cudaFreeHost(gs->hints);
    if (gs->hstats) cudaFreeHost(gs->hstats);
    dc_free(gs->hstage);
    dc_free(gs);
}

static dc_status step_create(dc_gpu_step *gs, const dc_stepper *st)
{
    int S = st->S, K = st->k_sub, D = st->D, B = st->max_batch;
    gs->S = S;
    gs->K = K;
    gs->D = D;
    gs->B = B;
    gs->nsup = (int64_t)S * D + S;
    gs->nsub = (int64_t)K * D + K;
    int64_t nh = gs->nsup + (int64_t)S * gs->nsub;
    size_t freeb = 0, totalb = 0;
    CU(cudaMemGetInfo(&freeb, &totalb));
    int64_t need = 4 * (3 * nh + st->nparams + 4 * (int64_t)B * D + 2 * (int64_t)B * S + 2 * (int64_t)B * K) +
                   8 * (2 * (int64_t)B + 5) + 4 * 5 * (int64_t)B;
    if (need > (int64_t)freeb)
        return dc_set_error(DC_STATUS_NOMEM,
                            "the training step's heads and buffers need %.2f GiB of GPU memory, more than the %.2f "
                            "GiB free: fewer clusters or a smaller --batch-size",
                            need / 1073741824.0, freeb / 1073741824.0);
    int64_t t = 0;
    /* the heads' bias gradients go through the model's reduction scratch */
    int hc = S > K ? S : K;
    int64_t np = 2 * (int64_t)hc * dcg_chan_parts(B, hc, 1);
    dc_gpu_model *g = gs->g;
    if (np > g->npart) {
        CU(cudaFree(g->part));
        g->part = NULL;
        TRY(dcg_dmalloc(&g->part, 8 * (size_t)np, &t));
        g->npart = np;
    }
    if (2 * (int64_t)hc + 2 > g->nsums) {
        CU(cudaFree(g->sums));
        g->sums = NULL;
        g->nsums = 2 * (int64_t)hc + 2;
        TRY(dcg_dmalloc(&g->sums, 8 * (size_t)g->nsums, &t));
    }
    TRY(dcg_dmalloc(&gs->hp, 4 * (size_t)nh, &t));
    TRY(dcg_dmalloc(&gs->hg, 4 * (size_t)nh, &t));
    TRY(dcg_dmalloc(&gs->hm, 4 * (size_t)nh, &t));
    TRY(dcg_dmalloc(&gs->mom, 4 * (size_t)st->nparams, &t));
    size_t nf = 4 * (size_t)B * D + 2 * (size_t)B * S + 2 * (size_t)B * K;
    TRY(dcg_dmalloc(&gs->h, 4 * nf, &t));
    gs->dh = gs->h + (size_t)B * D;
    gs->hs = gs->dh + (size_t)B * D;
    gs->dhs = gs->hs + (size_t)B * D;
    gs->ls = gs->dhs + (size_t)B * D;
    gs->dls = gs->ls + (size_t)B * S;
    gs->lsub = gs->dls + (size_t)B * S;
    gs->dlsub = gs->lsub + (size_t)B * K;
    TRY(dcg_dmalloc(&gs->lsup_r, 8 * (size_t)(2 * B + 5), &t));
    gs->lsub_r = gs->lsup_r + B;
    gs->stats = gs->lsub_r + B;
    TRY(dcg_dmalloc(&gs->hsup, 4 * 5 * (size_t)B, &t));
    gs->hsub = gs->hsup + B;
    gs->ints = gs->hsub + B;
    CU(cudaMemsetAsync(gs->mom, 0, 4 * (size_t)st->nparams, gs->g->s));
    CU(cudaMemsetAsync(gs->hm, 0, 4 * (size_t)nh, gs->g->s));
    CU(cudaMallocHost((void **)&gs->hints, 4 * 3 * (size_t)B));
    CU(cudaMallocHost((void **)&gs->hstats, 8 * 5));
    if (st->comm && !(gs->hstage = dc_malloc(4 * (size_t)nh, "head gradients"))) return DC_STATUS_NOMEM;
    return DC_OK;
}

dc_status dc_gpu_step_create(dc_gpu_step **out, dc_gpu_model *g, const dc_stepper *st)
{
    *out = NULL;
    dc_gpu_step *gs = dc_calloc(1, sizeof *gs, "GPU training step");
    if (!gs) return DC_STATUS_NOMEM;
    gs->g = g;
    CU(cudaSetDevice(g->dev.gpu));
    dc_status s = step_create(gs, st);
    if (s) {
        dc_gpu_step_free(gs);
        return s;
    }
    *out = gs;
    return DC_OK;
}

static float *head_at(float *base, const dc_gpu_step *gs, int s) /* s = -1: super */
{
    return s < 0 ? base : base + gs->nsup + (int64_t)s * gs->nsub;
}

dc_status dc_gpu_step_sync(dc_gpu_step *gs, dc_stepper *st, dc_head *sup, dc_head *subs, int to_host, int what)
{
    dc_gpu_model *g = gs->g;
    enum cudaMemcpyKind k = to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
    for (int s = -1; s < gs->S && (what & DC_GPU_HEADS); s++) {
        dc_head *h = s < 0 ? sup : &subs[s];
        size_t n = 4 * (size_t)((int64_t)h->out * h->in + h->out);
        /* a head's w, b (and dw, db; mw, mb) are contiguous */
        if (to_host) {
            CU(cudaMemcpyAsync(h->w, head_at(gs->hp, gs, s), n, k, g->s));
            CU(cudaMemcpyAsync(h->dw, head_at(gs->hg, gs, s), n, k, g->s));
            CU(cudaMemcpyAsync(h->mw, head_at(gs->hm, gs, s), n, k, g->s));
        } else {
            CU(cudaMemcpyAsync(head_at(gs->hp, gs, s), h->w, n, k, g->s));
            CU(cudaMemcpyAsync(head_at(gs->hm, gs, s), h->mw, n, k, g->s));
        }
    }
    if (what & DC_GPU_MOMENTUM)
        CU(cudaMemcpyAsync(to_host ? (void *)st->momentum : (void *)gs->mom,
                           to_host ? (void *)gs->mom : (void *)st->momentum, 4 * (size_t)st->nparams, k, g->s));
    CU(cudaStreamSynchronize(g->s));
    return DC_OK;
}

dc_status dc_gpu_step_compute(dc_gpu_step *gs, dc_stepper *st, dc_model *m, const dc_head *sup, const dc_head *subs,
                              const float *x, const int32_t *sup_t, const int32_t *sub_t, int N, dc_step_stats *stats)
{
    (void)sup;
    (void)subs;
    dc_gpu_model *g = gs->g;
    int S = gs->S, Kc = gs->K, D = gs->D;
    dcg_clear_stale("a step");
    const float NG = (float)st->gcount[S];
    /* targets: sup (batch order), sub (grouped order), rows */
    int32_t *hi = gs->hints;
    for (int i = 0; i < N; i++) hi[i] = sup_t[i];
    for (int j = 0; j < N; j++) {
        hi[N + j] = sub_t[st->rows[j]];
        hi[2 * N + j] = st->rows[j];
    }
    int32_t *dsup = gs->ints, *dsub = gs->ints + N, *drows = gs->ints + 2 * N;
    CU(cudaMemcpyAsync(gs->ints, hi, 4 * 3 * (size_t)N, cudaMemcpyHostToDevice, g->s));
    CU(cudaMemsetAsync(g->grads, 0, 4 * (size_t)m->nparams, g->s));
    CU(cudaMemsetAsync(gs->hg, 0, 4 * (size_t)(gs->nsup + (int64_t)S * gs->nsub), g->s));

    TRY(dc_gpu_forward(g, m, x, N, 1));
    const float *feat = g->out[m->nlayers - 1];
    K(dcg_relu_fwd(gs->h, feat, (int64_t)N * D, g->s));

    /* super head over the whole batch */
    float *sw = head_at(gs->hp, gs, -1), *sdw = head_at(gs->hg, gs, -1);
    TRY(dcg_linear_fwd(g, gs->ls, gs->h, sw, sw + (int64_t)S * D, N, D, S));
    K(dcg_xent(gs->dls, gs->lsup_r, gs->hsup, gs->ls, dsup, N, S, 1.0f / NG, g->s));
    TRY(dcg_linear_bwd(g, gs->dh, sdw, sdw + (int64_t)S * D, gs->dls, gs->h, sw, N, D, S, 1.0f, 0.0f));

    /* sub heads, each on its super-class's rows (grouped: contiguous) */
    K(dcg_gather_rows(gs->hs, gs->h, drows, N, D, g->s));
    for (int s = 0; s < S; s++) {
        int lo = st->start[s], ns = st->start[s + 1] - lo;
        if (ns <= 0) continue;
        float *w = head_at(gs->hp, gs, s), *dw = head_at(gs->hg, gs, s);
        float *hs = gs->hs + (int64_t)lo * D, *lg = gs->lsub + (int64_t)lo * Kc, *dl = gs->dlsub + (int64_t)lo * Kc;
        TRY(dcg_linear_fwd(g, lg, hs, w, w + (int64_t)Kc * D, ns, D, Kc));
        K(dcg_xent(dl, gs->lsub_r + lo, gs->hsub + lo, lg, dsub + lo, ns, Kc, 1.0f / NG, g->s));
        float scale = NG / (float)st->gcount[s];
        TRY(dcg_linear_bwd(g, gs->dhs + (int64_t)lo * D, dw, dw + (int64_t)Kc * D, dl, hs, w, ns, D, Kc, scale, 0.0f));
    }
    K(dcg_scatter_add_rows(gs->dh, gs->dhs, drows, N, D, g->s));
    K(dcg_step_stats(gs->stats, gs->lsup_r, gs->hsup, gs->lsub_r, gs->hsub, drows, N, g->s));
    CU(cudaMemcpyAsync(gs->hstats, gs->stats, 8 * 5, cudaMemcpyDeviceToHost, g->s));

    /* through the ReLU into the body */
    K(dcg_relu_bwd(gs->hs, gs->dh, gs->h, (int64_t)N * D, g->s));
    TRY(dcg_backward(g, m, gs->hs, 0));
    CU(cudaStreamSynchronize(g->s));
    double *v = gs->hstats;
    double lsup = v[0], lsub = v[1];
    stats->correct_super = (int)v[2];
    stats->correct_sub = (int)v[3];
    stats->correct_both = (int)v[4];
    if (st->comm) {
        double r[5] = {lsup, lsub, v[2], v[3], v[4]};
        dc_status cs = dc_comm_allreduce_f64(st->comm, r, 5);
        if (cs) return cs;
        lsup = r[0];
        lsub = r[1];
        stats->correct_super = (int)r[2];
        stats->correct_sub = (int)r[3];
        stats->correct_both = (int)r[4];
        /* gradients summed over the ranks, staged through the host */
        int64_t nh = gs->nsup + (int64_t)S * gs->nsub;
        CU(cudaMemcpyAsync(m->grads, g->grads, 4 * (size_t)m->nparams, cudaMemcpyDeviceToHost, g->s));
        float *tmp = gs->hstage;
        if (!tmp && !(tmp = gs->hstage = dc_malloc(4 * (size_t)nh, "head gradients"))) return DC_STATUS_NOMEM;
        CU(cudaMemcpyAsync(tmp, gs->hg, 4 * (size_t)nh, cudaMemcpyDeviceToHost, g->s));
        CU(cudaStreamSynchronize(g->s));
        dc_status rs = dc_comm_allreduce_f32(st->comm, m->grads, (size_t)m->nparams);
        if (rs == DC_OK) rs = dc_comm_allreduce_f32(st->comm, tmp, (size_t)nh);
        if (rs == DC_OK) {
            cudaError_t e = cudaMemcpyAsync(g->grads, m->grads, 4 * (size_t)m->nparams, cudaMemcpyHostToDevice, g->s);
            if (e == cudaSuccess) e = cudaMemcpyAsync(gs->hg, tmp, 4 * (size_t)nh, cudaMemcpyHostToDevice, g->s);
            if (e == cudaSuccess) e = cudaStreamSynchronize(g->s);
            if (e != cudaSuccess) rs = dcg_cuda_error(e, "staging the gradients");
        }
        if (rs) return rs;
    }
    stats->n = (int)st->gcount[S];
    stats->loss_super = lsup / NG;
    stats->loss_sub = lsub / NG;
    stats->loss = stats->loss_super + stats->loss_sub;
    return DC_OK;
}

dc_status dc_gpu_step_sgd(dc_gpu_step *gs, dc_stepper *st, dc_model *m, dc_head *sup, dc_head *subs, float lr,
                          float wd)
{
    dc_gpu_model *g = gs->g;
    dcg_clear_stale("SGD");
    K(dcg_sgd(g->params, g->grads, gs->mom, m->nparams, lr, MOMENTUM, wd, st->body_first, g->s));
    st->body_first = 0;
    for (int s = -1; s < gs->S; s++) {
        if (s >= 0 && st->gcount[s] <= 0) continue;
        dc_head *h = s < 0 ? sup : &subs[s];
        int64_t n = s < 0 ? gs->nsup : gs->nsub;
        K(dcg_sgd(head_at(gs->hp, gs, s), head_at(gs->hg, gs, s), head_at(gs->hm, gs, s), n, lr, MOMENTUM, wd,
                  !h->has_momentum, g->s));
        h->has_momentum = 1;
    }
    return DC_OK;
}
