/* cluster_step.c — the clustering step (SPEC §4; the original's
 * main.py): features of every image under the clustering transform,
 * PCA-whitening + L2, two-level k-means (across the ranks when
 * distributed), the assignments and each cluster's nearest images written,
 * the heads reset; and the (super, sub) groups the sampler draws from.
 * Includes: train/run.h (dc/train.h, dc/cluster.h, dc/comm.h, dc/io.h). */
#define _POSIX_C_SOURCE 200809L
#include "train/run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define STREAM_ROWS 4096 /* rows per read from a scratch file or the other processes */

/* Image i's cluster as one index over all k: super · k/m + sub. */
int32_t dc_run_flat_cluster(const run_state *r, int64_t i)
{
    return r->assign[2 * i] * r->k_sub + r->assign[2 * i + 1];
}

/* Groups images by (super, sub) cluster for the sampler. */
void dc_run_build_groups(run_state *r)
{
    int G = r->m * r->k_sub;
    memset(r->mstart, 0, (size_t)(G + 1) * sizeof *r->mstart);
    for (int64_t i = 0; i < r->n; i++) r->mstart[dc_run_flat_cluster(r, i) + 1]++;
    for (int g = 0; g < G; g++) r->mstart[g + 1] += r->mstart[g];
    int64_t *pos = dc_xmalloc((size_t)G * sizeof *pos);
    memcpy(pos, r->mstart, (size_t)G * sizeof *pos);
    for (int64_t i = 0; i < r->n; i++) r->members[pos[dc_run_flat_cluster(r, i)]++] = i;
    dc_free(pos);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* assignments/epoch-NNN-nearest.npy, int64 (k, NEAREST): for each cluster
 * (super · k_sub + sub) the images nearest its centroid in the whitened
 * space, nearest first, -1 past its size: what the report shows. */
#define NEAREST 16
typedef struct nearest_cand {
    float dist;
    int64_t idx;
} nearest_cand;

static int cmp_cand(const void *a, const void *b)
{
    const nearest_cand *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* This rank's rows (global indices lo + i of x's rows) nearest each
 * cluster's centroid: at most NEAREST per cluster, by (distance, index) —
 * what one pass over every image in index order keeps. */
static dc_status local_nearest(run_state *r, dc_rows *x, int64_t lo, const dc_hkmeans_result *h, int64_t *best,
                               float *dist, int *cnt)
{
    int k = r->c->k, d = r->c->dim_pca;
    for (int64_t i = 0; i < (int64_t)k * NEAREST; i++) best[i] = -1;
    int64_t chunk = dc_rows_streamed(x) ? x->cap : (x->n > 0 ? x->n : 1);
    dc_status s = DC_OK;
    for (int64_t c0 = 0; c0 < x->n && s == DC_OK; c0 += chunk) {
        int64_t cn = x->n - c0 < chunk ? x->n - c0 : chunk;
        const float *xc;
        if ((s = dc_rows_read(x, c0, cn, &xc))) break;
        for (int64_t i = lo + c0; i < lo + c0 + cn; i++) {
            int c = h->super[i] * r->k_sub + h->sub[i];
            const float *cen = h->sub_centroids + (size_t)c * d, *xi = xc + (i - lo - c0) * d;
            float dd = 0;
            for (int j = 0; j < d; j++) dd += (xi[j] - cen[j]) * (xi[j] - cen[j]);
            /* insertion into the cluster's sorted list of at most NEAREST */
            int64_t *bi = best + (size_t)c * NEAREST;
            float *di = dist + (size_t)c * NEAREST;
            int m = cnt[c];
            if (m == NEAREST && dd >= di[m - 1]) continue;
            int pos = m < NEAREST ? m : NEAREST - 1;
            while (pos > 0 && di[pos - 1] > dd) {
                di[pos] = di[pos - 1];
                bi[pos] = bi[pos - 1];
                pos--;
            }
            di[pos] = dd;
            bi[pos] = i;
            if (m < NEAREST) cnt[c] = m + 1;
        }
    }
    return s;
}

/* Every rank's lists merged (all-gathered a range of clusters at a time):
 * the NEAREST smallest (distance, index) of each cluster, as one process
 * finds them. */
static dc_status merge_nearest(run_state *r, int64_t *best, float *dist)
{
    int k = r->c->k, W = r->W;
    int64_t per = (int64_t)NEAREST * (sizeof(int64_t) + sizeof(float)) * W, kc = ((int64_t)64 << 20) / per;
    if (kc < 1) kc = 1;
    if (kc > k) kc = k;
    size_t *cnt = dc_xmalloc((size_t)W * sizeof *cnt);
    int64_t *ball = dc_malloc((size_t)(kc * NEAREST * W) * sizeof *ball, "nearest members");
    float *dall = dc_malloc((size_t)(kc * NEAREST * W) * sizeof *dall, "nearest distances");
    nearest_cand *cand = dc_malloc((size_t)NEAREST * W * sizeof *cand, "nearest candidates");
    dc_status s = ball && dall && cand ? DC_OK : DC_STATUS_NOMEM;
    for (int64_t c0 = 0; c0 < k && s == DC_OK; c0 += kc) {
        int64_t nc = k - c0 < kc ? k - c0 : kc;
        for (int q = 0; q < W; q++) cnt[q] = (size_t)(nc * NEAREST) * sizeof(int64_t);
        if ((s = dc_comm_allgatherv(r->c->comm, best + c0 * NEAREST, cnt[0], ball, cnt))) break;
        for (int q = 0; q < W; q++) cnt[q] = (size_t)(nc * NEAREST) * sizeof(float);
        if ((s = dc_comm_allgatherv(r->c->comm, dist + c0 * NEAREST, cnt[0], dall, cnt))) break;
        for (int64_t c = 0; c < nc; c++) {
            int nn = 0;
            for (int q = 0; q < W; q++)
                for (int t = 0; t < NEAREST; t++) {
                    int64_t at = ((int64_t)q * nc + c) * NEAREST + t;
                    if (ball[at] >= 0) cand[nn++] = (nearest_cand){dall[at], ball[at]};
                }
            qsort(cand, (size_t)nn, sizeof *cand, cmp_cand);
            for (int t = 0; t < NEAREST; t++) {
                best[(c0 + c) * NEAREST + t] = t < nn ? cand[t].idx : -1;
                dist[(c0 + c) * NEAREST + t] = t < nn ? cand[t].dist : 0;
            }
        }
    }
    dc_free(cnt);
    dc_free(ball);
    dc_free(dall);
    dc_free(cand);
    return s;
}

/* assignments/epoch-NNN-nearest.npy, int64 (k, NEAREST): for each cluster
 * (super · k_sub + sub) the images nearest its centroid in the whitened
 * space, nearest first, -1 past its size: what the report shows. x: this
 * rank's rows (from lo); every rank takes part, rank 0 writes. */
static dc_status write_nearest(run_state *r, int epoch, dc_rows *x, int64_t lo, const dc_hkmeans_result *h)
{
    int k = r->c->k;
    int64_t *best = dc_malloc((size_t)k * NEAREST * sizeof(int64_t), "nearest members");
    float *dist = dc_malloc((size_t)k * NEAREST * sizeof(float), "nearest distances");
    int *cnt = dc_calloc((size_t)k, sizeof(int), "nearest counts");
    dc_status s = best && dist && cnt ? DC_OK : DC_STATUS_NOMEM;
    if (s == DC_OK) s = local_nearest(r, x, lo, h, best, dist, cnt);
    if (s == DC_OK && r->W > 1) s = merge_nearest(r, best, dist);
    char name[64];
    snprintf(name, sizeof name, "assignments/epoch-%03d-nearest.npy", epoch);
    if (s == DC_OK && r->rank == 0)
        s = dc_npy_write(dc_run_path(r, name), DC_DTYPE_I64, 2, (int64_t[]){k, NEAREST}, best);
    dc_free(best);
    dc_free(dist);
    dc_free(cnt);
    return s;
}

/* The PCA rank 0 fitted (status s there), to every rank: one fit, so that
 * no rank whitens differently. */
static dc_status share_pca(run_state *r, dc_pca *p, dc_status s, int din, int dout)
{
    const dc_comm *cm = r->c->comm;
    int64_t ok = s == DC_OK;
    dc_status cs = dc_comm_bcast(cm, &ok, sizeof ok, 0);
    if (cs) return cs;
    if (!ok) return r->rank == 0 ? s : dc_set_error(DC_STATUS_INTERNAL, "the PCA failed on rank 0");
    if (r->rank != 0) {
        p->d_in = din;
        p->d_out = dout;
        p->mean = dc_xmalloc((size_t)din * sizeof(float));
        p->proj = dc_xmalloc((size_t)dout * din * sizeof(float));
        p->eigvals = dc_xmalloc((size_t)dout * sizeof(float));
    }
    if ((cs = dc_comm_bcast(cm, p->mean, (size_t)din * sizeof(float), 0)) ||
        (cs = dc_comm_bcast(cm, p->proj, (size_t)dout * din * sizeof(float), 0)) ||
        (cs = dc_comm_bcast(cm, p->eigvals, (size_t)dout * sizeof(float), 0)) ||
        (cs = dc_comm_bcast(cm, &p->energy, sizeof p->energy, 0)))
        return cs;
    return DC_OK;
}

/* assignments/epoch-NNN.npy (int32, N x 2: super, sub) and .tsv: one line
 * per image, its file (image folders, lists) or its index, then super, sub. */
static dc_status write_assignments(run_state *r, int epoch)
{
    char name[64];
    snprintf(name, sizeof name, "assignments/epoch-%03d.npy", epoch);
    dc_status s = dc_npy_write(dc_run_path(r, name), DC_DTYPE_I32, 2, (int64_t[]){r->n, 2}, r->assign);
    if (s != DC_OK) return s;
    snprintf(name, sizeof name, "assignments/epoch-%03d.tsv", epoch);
    dc_afile af;
    s = dc_afile_open(&af, dc_run_path(r, name));
    if (s != DC_OK) return s;
    int paths = r->n > 0 && dc_dataset_path(r->d, 0) != NULL;
    const char *head = paths ? "path\tsuper\tsub\n" : "index\tsuper\tsub\n";
    dc_afile_write(&af, head, strlen(head));
    char line[64];
    for (int64_t i = 0; i < r->n; i++) {
        if (paths) {
            const char *p = dc_dataset_path(r->d, i);
            dc_afile_write(&af, p, strlen(p));
        } else {
            int len = snprintf(line, sizeof line, "%lld", (long long)i);
            dc_afile_write(&af, line, (size_t)len);
        }
        int len = snprintf(line, sizeof line, "\t%d\t%d\n", r->assign[2 * i], r->assign[2 * i + 1]);
        dc_afile_write(&af, line, (size_t)len);
    }
    return dc_afile_commit(&af);
}

/* The clustering's PCA of every image's features, this process holding
 * its own rows (local; s: how their extraction went): on one process the
 * fit on them; on several, a failed extraction anywhere stops every process
 * here, then each fits on the sampled rows gathered a block at a time from
 * their owners and rank 0's fit is the one all use. */
static dc_status fit_pca(run_state *r, int epoch, dc_rows *local, dc_status s, dc_pca *pca)
{
    dc_train_config *c = r->c;
    int D = local->d;
    int64_t sample = (int64_t)D * (D - 1) / 2;
    uint64_t seed = (uint64_t)c->seed * 1000003u + (uint64_t)epoch;
    if (r->W == 1) return s == DC_OK ? dc_pca_fit_rows(pca, local, c->dim_pca, sample, seed) : s;
    int64_t failed = s != DC_OK;
    dc_status cs = dc_comm_allreduce_i64(c->comm, &failed, 1);
    if (s == DC_OK && (cs || failed)) s = cs ? cs : dc_set_error(DC_STATUS_INTERNAL, "feature extraction failed on another rank");
    if (s) return s;
    dc_shard sh = {c->comm, local, r->n, D};
    dc_rows src;
    s = dc_rows_shard(&src, &sh, STREAM_ROWS);
    if (s == DC_OK) s = dc_pca_fit_rows(pca, &src, c->dim_pca, sample, seed);
    dc_rows_close(&src);
    if (r->rank != 0) dc_pca_free(pca);
    return share_pca(r, pca, s, D, c->dim_pca);
}

/* The features of this rank's images [lo, hi) under the clustering
 * transform (every image's on one process; no rank holds another's),
 * whitened by a PCA fitted on a sample of all of them — on several
 * processes every rank reads the sampled rows a block at a time, gathered
 * from their owners, and fits; rank 0's fit, saved, is the one all use —
 * L2-normalised in place, into *x ((hi − lo) × dim_pca; the features'
 * buffer shrunk: one buffer of features at any time). */
static dc_status whiten_features(run_state *r, int epoch, float **x, cJSON *j)
{
    dc_train_config *c = r->c;
    int D = r->model.feat_dim;
    int64_t lo = r->n * r->rank / r->W, hi = r->n * (r->rank + 1) / r->W, rows = hi - lo > 0 ? hi - lo : 1;
    float *feat = dc_malloc((size_t)rows * D * sizeof(float), "features");
    if (!feat) return DC_STATUS_NOMEM;
    dc_status s = dc_extract_features_range(feat, &r->model, r->d, lo, hi - lo, r->model.nlayers - 1, 0, "features");
    dc_pca pca = {0};
    dc_rows local;
    dc_rows_memory(&local, feat, hi - lo, D);
    s = fit_pca(r, epoch, &local, s, &pca);
    if (s == DC_OK) s = dc_pca_apply_inplace(&pca, feat, hi - lo, 1);
    if (s == DC_OK) {
        if (r->rank == 0) s = dc_pca_save(&pca, dc_run_path(r, "pca.safetensors"));
        cJSON_AddNumberToObject(j, "pca_energy", pca.energy);
    }
    dc_pca_free(&pca);
    if (s == DC_OK && c->dim_pca < D) feat = dc_xrealloc(feat, (size_t)rows * c->dim_pca * sizeof(float));
    if (s == DC_OK) *x = feat;
    else dc_free(feat);
    return s;
}

/* Cluster sizes: min / median / max to the log and stats, and a warning
 * when one cluster holds most of the data. */
static void record_sizes(run_state *r, int epoch, const dc_hkmeans_result *h, cJSON *j)
{
    int k = r->c->k;
    int64_t *sz = dc_xmalloc((size_t)k * sizeof *sz);
    memcpy(sz, h->sub_counts, (size_t)k * sizeof *sz);
    qsort(sz, (size_t)k, sizeof *sz, cmp_i64);
    cJSON *o = cJSON_AddObjectToObject(j, "sizes");
    cJSON_AddNumberToObject(o, "min", (double)sz[0]);
    cJSON_AddNumberToObject(o, "median", (double)sz[k / 2]);
    cJSON_AddNumberToObject(o, "max", (double)sz[k - 1]);
    dc_log_info("clustering epoch %d: %d clusters, sizes min %lld / median %lld / max %lld, %d empty splits", epoch,
                k, (long long)sz[0], (long long)sz[k / 2], (long long)sz[k - 1], h->splits1 + h->splits2);
    if (k >= 4 && sz[k - 1] > r->n / 2)
        dc_log_warn("clusters collapse: one cluster holds %lld of %lld images", (long long)sz[k - 1],
                    (long long)r->n);
    dc_free(sz);
}

int64_t dc_run_feature_budget(const dc_train_config *c)
{
    if (c->memory_mb > 0) return c->memory_mb << 20;
    int64_t avail = dc_memory_available();
    return avail > 0 ? avail / 2 : (int64_t)4 << 30;
}

/* "<--scratch or the run>/<what>.scratch.npy" into buf. */
static void scratch_file(const run_state *r, const char *what, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s.scratch.npy", r->c->scratch ? r->c->scratch : r->c->out, what);
}


/* whiten_features for this process's features over the budget: written to
 * a scratch file as they are extracted, the PCA fitted (several processes:
 * on the sampled rows gathered from every process's file, rank 0's fit
 * used) and applied a block at a time (the bits of whiten_features), the
 * whitened rows into memory (*x) when they fit, else into a second scratch
 * file (wpath); xr reads them either way. The features' file is removed
 * here. Under MPI each process's files carry its rank. */
static dc_status whiten_streamed(run_state *r, int epoch, int64_t budget, float **x, dc_rows *xr, char *wpath,
                                 size_t wlen, cJSON *j)
{
    dc_train_config *c = r->c;
    int D = r->model.feat_dim;
    int64_t lo = r->n * r->rank / r->W, hi = r->n * (r->rank + 1) / r->W, mine = hi - lo;
    char fpath[4200], what[64];
    snprintf(what, sizeof what, r->W > 1 ? "features.%d" : "features", r->rank);
    scratch_file(r, what, fpath, sizeof fpath);
    dc_log_info("clustering: %lld MB of features, over the memory budget of %lld MB: in the scratch file %s, read "
                "a block at a time", (long long)((mine * D * 4) >> 20), (long long)(budget >> 20), fpath);
    dc_status s = dc_extract_features_npy_range(fpath, &r->model, r->d, lo, mine, r->model.nlayers - 1, 0, 0,
                                                "features");
    dc_rows f = {.fd = -1};
    if (s == DC_OK) s = dc_rows_open_npy(&f, fpath, STREAM_ROWS);
    dc_pca pca = {0};
    s = fit_pca(r, epoch, &f, s, &pca);
    if (s == DC_OK && r->rank == 0) s = dc_pca_save(&pca, dc_run_path(r, "pca.safetensors"));
    int64_t bytes = mine * (int64_t)c->dim_pca * (int64_t)sizeof(float);
    if (s == DC_OK && bytes > budget) {
        snprintf(what, sizeof what, r->W > 1 ? "whitened.%d" : "whitened", r->rank);
        scratch_file(r, what, wpath, wlen);
        dc_log_info("clustering: %lld MB of whitened features: in the scratch file %s", (long long)(bytes >> 20), wpath);
    }
    if (s == DC_OK) s = dc_pca_whitened_rows(&pca, &f, bytes > budget ? wpath : NULL, x, xr);
    if (s == DC_OK) cJSON_AddNumberToObject(j, "pca_energy", pca.energy);
    dc_pca_free(&pca);
    dc_rows_close(&f);
    remove(fpath);
    return s;
}

/* SPEC §4.1–4.5: whitened features, then two-level k-means into r->assign
 * (and the centroids, for --warm-restart). */
static dc_status cluster_images(run_state *r, int epoch, cJSON *j)
{
    dc_train_config *c = r->c;
    int64_t budget = dc_run_feature_budget(c), lo = r->n * r->rank / r->W, hi = r->n * (r->rank + 1) / r->W;
    char wpath[4200] = "";
    float *x = NULL;
    dc_rows xr = {.fd = -1};
    dc_status s = DC_OK;
    /* over the budget on any process: every process streams (the same collectives everywhere) */
    int64_t over = (hi - lo) * (int64_t)r->model.feat_dim * (int64_t)sizeof(float) > budget;
    if (r->W > 1 && (s = dc_comm_allreduce_i64(c->comm, &over, 1)) != DC_OK) return s;
    if (over) {
        s = whiten_streamed(r, epoch, budget, &x, &xr, wpath, sizeof wpath, j);
    } else { /* this rank's rows */
        s = whiten_features(r, epoch, &x, j);
        dc_rows_memory(&xr, x, hi - lo, c->dim_pca);
    }
    dc_hkmeans_result h = {0};
    if (s == DC_OK) {
        dc_kmeans_params kp = dc_kmeans_params_default();
        kp.k = c->k;
        kp.niter = c->niter;
        kp.seed = (uint64_t)c->seed * 1000003u + (uint64_t)epoch;
        kp.progress = 1;
        if (c->gpu_kmeans && r->dev.gpu >= 0) {
            kp.gpu = r->dev.gpu;
            dc_log_info("clustering: k-means on cuda:%d", kp.gpu);
        }
        int warm = c->warm_restart && r->have_cent;
        if (r->W == 1) {
            char dir[4200];
            snprintf(dir, sizeof dir, "%s", c->scratch ? c->scratch : c->out);
            dc_cluster_memory mem = {budget, dir};
            s = dc_hkmeans_train_rows(&h, &xr, r->m, &kp, warm ? r->cent_super : NULL, warm ? r->cent_sub : NULL, &mem);
        } else {
            s = dc_hkmeans_train_dist_rows(&h, c->comm, &xr, r->n, lo, r->m, &kp, warm ? r->cent_super : NULL,
                                           warm ? r->cent_sub : NULL, 0);
        }
    }
    if (s == DC_OK) {
        for (int64_t i = 0; i < r->n; i++) {
            r->assign[2 * i] = h.super[i];
            r->assign[2 * i + 1] = h.sub[i];
        }
        memcpy(r->cent_super, h.super_centroids, (size_t)r->m * c->dim_pca * 4);
        memcpy(r->cent_sub, h.sub_centroids, (size_t)c->k * c->dim_pca * 4);
        r->have_cent = 1;
        cJSON_AddNumberToObject(j, "objective_super", h.obj1);
        cJSON_AddNumberToObject(j, "objective_sub", h.obj2);
        cJSON_AddNumberToObject(j, "empty_splits", h.splits1 + h.splits2);
        record_sizes(r, epoch, &h, j);
    }
    if (s == DC_OK) s = write_nearest(r, epoch, &xr, lo, &h);
    dc_hkmeans_result_free(&h);
    dc_rows_close(&xr);
    if (wpath[0]) remove(wpath);
    dc_free(x);
    return s;
}

/* The new assignment against the previous one (prev: NULL at the first)
 * and, when the data has labels (never used for training), against them. */
static void score_assignment(run_state *r, int epoch, const int32_t *prev, cJSON *j)
{
    int32_t *cur = dc_xmalloc((size_t)r->n * sizeof *cur);
    for (int64_t i = 0; i < r->n; i++) cur[i] = dc_run_flat_cluster(r, i);
    if (prev) {
        double nmi;
        dc_nmi(&nmi, cur, prev, r->n);
        cJSON_AddNumberToObject(j, "nmi_prev", nmi);
        r->nmi_prev = nmi;
        dc_log_info("clustering epoch %d: NMI with the previous assignment %.4f", epoch, nmi);
    } else {
        cJSON_AddNullToObject(j, "nmi_prev");
    }
    const int32_t *lab = dc_dataset_labels(r->d);
    dc_cluster_scores sc;
    if (lab && r->c->k > 1 && dc_cluster_scores_compute(&sc, cur, lab, r->n) == DC_OK) {
        cJSON *o = cJSON_AddObjectToObject(j, "labels");
        cJSON_AddNumberToObject(o, "nmi", sc.nmi);
        cJSON_AddNumberToObject(o, "ari", sc.ari);
        if (sc.acc >= 0) cJSON_AddNumberToObject(o, "acc", sc.acc);
        cJSON_AddNumberToObject(o, "purity", sc.purity);
        dc_log_info("clusters against the labels (not used for training): NMI %.4f, ARI %.4f, purity %.4f", sc.nmi,
                    sc.ari, sc.purity);
    }
    dc_free(cur);
}

dc_status dc_run_cluster_step(run_state *r, int epoch)
{
    dc_train_config *c = r->c;
    double t0 = dc_time_now();
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "clustering");
    cJSON_AddNumberToObject(j, "epoch", epoch);
    int32_t *prev = NULL;
    if (r->assign_epoch >= 0) {
        prev = dc_xmalloc((size_t)r->n * sizeof *prev);
        for (int64_t i = 0; i < r->n; i++) prev[i] = dc_run_flat_cluster(r, i);
    }
    dc_status s = DC_OK;
    if (c->k == 1 && r->m == 1) /* RotNet: no clustering, one pseudo-class */
        memset(r->assign, 0, (size_t)r->n * 2 * sizeof(int32_t));
    else
        s = cluster_images(r, epoch, j);
    if (s == DC_OK) {
        score_assignment(r, epoch, prev, j);
        if (r->rank == 0) s = write_assignments(r, epoch);
    }
    if (s == DC_OK) {
        r->assign_epoch = epoch;
        dc_run_build_groups(r);
        /* SPEC §4.7: new heads, fresh momentum; the body is kept */
        if (r->m > 1) dc_head_reset(&r->sup, (uint64_t)c->seed, 1000u + (uint32_t)epoch, 0);
        for (int q = 0; q < r->S; q++) dc_head_reset(&r->subs[q], (uint64_t)c->seed, 1000u + (uint32_t)epoch, 1u + (uint32_t)q);
        dc_step_heads_changed(&r->st);
        cJSON_AddNumberToObject(j, "seconds", dc_time_now() - t0);
        if (r->rank == 0) s = dc_json_append_line(dc_run_path(r, "stats.jsonl"), j);
    }
    cJSON_Delete(j);
    dc_free(prev);
    return s;
}
