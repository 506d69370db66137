/* hkmeans.c — two-level k-means (SPEC §4.3–4.5; the original's
 * src/clustering.py): level 1 into m super-clusters over all points, then
 * level 2 into k/m sub-clusters inside each super-cluster over its members
 * only. Each k-means run draws from its own RNG coordinate (level 1: group
 * 0; super-cluster c: group 1 + c), so the result does not depend on the
 * order the super-clusters are processed in.
 * Includes: dc/cluster.h, core. */
#define _POSIX_C_SOURCE 200809L
#include "dc/cluster.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void dc_hkmeans_result_free(dc_hkmeans_result *r)
{
    if (!r) return;
    dc_free(r->super);
    dc_free(r->sub);
    dc_free(r->super_centroids);
    dc_free(r->sub_centroids);
    dc_free(r->super_counts);
    dc_free(r->sub_counts);
    memset(r, 0, sizeof *r);
}

/* The mean of rows idx (or all rows when idx is NULL) into c (d). */
void dc_mean_rows(float *c, const float *x, const int64_t *idx, int64_t cnt, int d)
{
    double *acc = dc_xcalloc((size_t)d, sizeof *acc);
    for (int64_t i = 0; i < cnt; i++) {
        const float *row = x + (idx ? idx[i] : i) * d;
        for (int j = 0; j < d; j++) acc[j] += row[j];
    }
    for (int j = 0; j < d; j++) c[j] = cnt ? (float)(acc[j] / (double)cnt) : 0.0f;
    dc_free(acc);
}

dc_status dc_hkmeans_level2_rows(dc_hkmeans_result *r, int c, dc_rows *members, const int64_t *idx,
                                 const dc_kmeans_params *p, const float *warm_sub, double *obj, int *splits)
{
    int d = r->d, k_sub = r->k_sub;
    char label[64];
    snprintf(label, sizeof label, "level-2 k-means %d/%d", c + 1, r->m);
    dc_kmeans_params p2 = *p;
    p2.k = k_sub;
    p2.group = 1u + (uint32_t)c;
    p2.label = label;
    dc_kmeans_result k2;
    dc_status st = dc_kmeans_train_rows(&k2, members, &p2, warm_sub ? warm_sub + (size_t)c * k_sub * d : NULL);
    if (st) return st;
    for (int64_t i = 0; i < members->n; i++) r->sub[idx[i]] = k2.assign[i];
    memcpy(r->sub_centroids + (size_t)c * k_sub * d, k2.centroids, (size_t)k_sub * d * sizeof(float));
    memcpy(r->sub_counts + (size_t)c * k_sub, k2.counts, (size_t)k_sub * sizeof(int64_t));
    *obj = k2.passes[k2.npasses - 1].obj;
    *splits = k2.total_splits;
    dc_kmeans_result_free(&k2);
    return DC_OK;
}

dc_status dc_hkmeans_level2(dc_hkmeans_result *r, const float *x, int c, const dc_kmeans_params *p,
                            const float *warm_sub, int64_t *idx, float *buf, double *obj, int *splits)
{
    int d = r->d, k_sub = r->k_sub;
    int64_t cnt = 0;
    for (int64_t i = 0; i < r->n; i++)
        if (r->super[i] == c) idx[cnt++] = i;
    float *sub_c = r->sub_centroids + (size_t)c * k_sub * d;
    *obj = 0;
    *splits = 0;
    if (cnt == 0) return DC_OK; /* only when n < m */
    if (k_sub == 1) {
        for (int64_t i = 0; i < cnt; i++) r->sub[idx[i]] = 0;
        dc_mean_rows(sub_c, x, idx, cnt, d);
        r->sub_counts[(size_t)c * k_sub] = cnt;
        return DC_OK;
    }
    for (int64_t i = 0; i < cnt; i++) memcpy(buf + i * d, x + idx[i] * d, (size_t)d * sizeof(float));
    dc_rows members;
    dc_rows_memory(&members, buf, cnt, d);
    return dc_hkmeans_level2_rows(r, c, &members, idx, p, warm_sub, obj, splits);
}

dc_status dc_hkmeans_result_init(dc_hkmeans_result *r, int64_t n, int d, int m, const dc_kmeans_params *p)
{
    memset(r, 0, sizeof *r);
    if (m < 1) return dc_set_error(DC_STATUS_ARG, "hierarchical k-means: m must be at least 1");
    if (p->k < m || p->k % m != 0)
        return dc_set_error(DC_STATUS_ARG,
                            "hierarchical k-means: k = %d is not a multiple of the %d super-clusters",
                            p->k, m);
    const char *why = dc_kmeans_params_check(p, n);
    if (why) return dc_set_error(DC_STATUS_ARG, "hierarchical k-means: %s", why);
    r->m = m;
    r->k_sub = p->k / m;
    r->d = d;
    r->n = n;
    r->super = dc_malloc((size_t)n * sizeof(int32_t), "super-cluster assignments");
    r->sub = dc_malloc((size_t)n * sizeof(int32_t), "sub-cluster assignments");
    r->super_centroids = dc_calloc((size_t)m * d, sizeof(float), "super-cluster centroids");
    r->sub_centroids = dc_calloc((size_t)p->k * d, sizeof(float), "sub-cluster centroids");
    r->super_counts = dc_calloc((size_t)m, sizeof(int64_t), "super-cluster counts");
    r->sub_counts = dc_calloc((size_t)p->k, sizeof(int64_t), "sub-cluster counts");
    if (!r->super || !r->sub || !r->super_centroids || !r->sub_centroids || !r->super_counts ||
        !r->sub_counts) {
        dc_hkmeans_result_free(r);
        return DC_STATUS_NOMEM;
    }
    return DC_OK;
}

dc_kmeans_params dc_hkmeans_level1_params(const dc_kmeans_params *p, int m)
{
    dc_kmeans_params p1 = *p;
    p1.k = m;
    p1.group = 0;
    p1.label = "level-1 k-means";
    return p1;
}

void dc_hkmeans_set_level1(dc_hkmeans_result *r, const dc_kmeans_result *k1, const float *x)
{
    if (!k1) {
        for (int64_t i = 0; i < r->n; i++) r->super[i] = 0;
        dc_mean_rows(r->super_centroids, x, NULL, r->n, r->d);
        r->super_counts[0] = r->n;
        return;
    }
    memcpy(r->super_centroids, k1->centroids, (size_t)r->m * r->d * sizeof(float));
    memcpy(r->super_counts, k1->counts, (size_t)r->m * sizeof(int64_t));
    r->obj1 = k1->passes[k1->npasses - 1].obj;
    r->splits1 = k1->total_splits;
}

dc_status dc_rows_mean(float *c, dc_rows *x, const int64_t *idx, int64_t cnt, float *blk, int64_t B)
{
    int d = x->d;
    double *acc = dc_xcalloc((size_t)d, sizeof *acc);
    dc_status s = DC_OK;
    for (int64_t b0 = 0; b0 < cnt && s == DC_OK; b0 += B) {
        int64_t nb = cnt - b0 < B ? cnt - b0 : B;
        const float *rows = blk;
        if (idx) s = dc_rows_gather(x, idx + b0, nb, blk);
        else s = dc_rows_read(x, b0, nb, &rows);
        for (int64_t i = 0; i < nb && s == DC_OK; i++)
            for (int j = 0; j < d; j++) acc[j] += rows[i * d + j];
    }
    for (int j = 0; j < d; j++) c[j] = cnt ? (float)(acc[j] / (double)cnt) : 0.0f;
    dc_free(acc);
    return s;
}

/* "<scratch>/<what>.<pid>.npy" into buf. */
static void scratch_path(char *buf, size_t n, const dc_cluster_memory *mem, const char *what)
{
    snprintf(buf, n, "%s/%s.%ld.npy", mem && mem->scratch ? mem->scratch : ".", what, (long)getpid());
}

/* Level 2 of super-cluster c from a file: its members read into memory when
 * they fit the budget, else copied to a scratch file that the k-means
 * streams over (removed after); the same result either way. */
static dc_status level2_file(dc_hkmeans_result *r, dc_rows *x, int c, const dc_kmeans_params *p,
                             const float *warm_sub, int64_t *idx, float *buf, int64_t buf_rows,
                             const dc_cluster_memory *mem, double *obj, int *splits)
{
    int d = r->d, k_sub = r->k_sub;
    int64_t cnt = 0;
    for (int64_t i = 0; i < r->n; i++)
        if (r->super[i] == c) idx[cnt++] = i;
    float *sub_c = r->sub_centroids + (size_t)c * k_sub * d;
    *obj = 0;
    *splits = 0;
    if (cnt == 0) return DC_OK;
    dc_status st = DC_OK;
    if (k_sub == 1) {
        for (int64_t i = 0; i < cnt; i++) r->sub[idx[i]] = 0;
        r->sub_counts[(size_t)c * k_sub] = cnt;
        return dc_rows_mean(sub_c, x, idx, cnt, buf, buf_rows);
    }
    dc_rows members;
    char path[4200] = "";
    if (cnt <= buf_rows) {
        st = dc_rows_gather(x, idx, cnt, buf);
        dc_rows_memory(&members, buf, cnt, d);
    } else {
        scratch_path(path, sizeof path, mem, "level2");
        dc_log_info("level-2 k-means %d/%d: %lld members, over the memory budget: in the scratch file %s", c + 1,
                    r->m, (long long)cnt, path);
        dc_npy_writer w;
        st = dc_npy_writer_open(&w, path, DC_DTYPE_F32, 2, (int64_t[]){cnt, d});
        for (int64_t b0 = 0; b0 < cnt && st == DC_OK; b0 += buf_rows) {
            int64_t nb = cnt - b0 < buf_rows ? cnt - b0 : buf_rows;
            if ((st = dc_rows_gather(x, idx + b0, nb, buf)) == DC_OK)
                st = dc_npy_writer_write(&w, buf, (size_t)nb * d * sizeof(float));
        }
        if (st == DC_OK) st = dc_npy_writer_commit(&w);
        else dc_npy_writer_abort(&w);
        if (st == DC_OK) st = dc_rows_open_npy(&members, path, x->cap);
        if (st) path[0] ? (void)remove(path) : (void)0;
    }
    if (st) return st;
    st = dc_hkmeans_level2_rows(r, c, &members, idx, p, warm_sub, obj, splits);
    dc_rows_close(&members);
    if (path[0]) remove(path);
    return st;
}

dc_status dc_hkmeans_train(dc_hkmeans_result *r, const float *x, int64_t n,
                           int d, int m, const dc_kmeans_params *p,
                           const float *warm_super, const float *warm_sub)
{
    dc_rows src;
    dc_rows_memory(&src, x, n, d);
    return dc_hkmeans_train_rows(r, &src, m, p, warm_super, warm_sub, NULL);
}

dc_status dc_hkmeans_train_rows(dc_hkmeans_result *r, dc_rows *x, int m, const dc_kmeans_params *p,
                                const float *warm_super, const float *warm_sub, const dc_cluster_memory *mem)
{
    int64_t n = x->n;
    int d = x->d, file = dc_rows_streamed(x);
    dc_status st = dc_hkmeans_result_init(r, n, d, m, p);
    if (st) return st;
    int k_sub = r->k_sub;

    /* Level 1. */
    if (m > 1) {
        dc_kmeans_params p1 = dc_hkmeans_level1_params(p, m);
        dc_kmeans_result k1;
        st = dc_kmeans_train_rows(&k1, x, &p1, warm_super);
        if (st) {
            dc_hkmeans_result_free(r);
            return st;
        }
        memcpy(r->super, k1.assign, (size_t)n * sizeof(int32_t));
        dc_hkmeans_set_level1(r, &k1, NULL);
        dc_kmeans_result_free(&k1);
    } else if (!file) {
        dc_hkmeans_set_level1(r, NULL, x->mem);
    }

    /* Level 2: each super-cluster's members gathered into one buffer (from
     * a file: at most the budget's rows of them, the rest via scratch). */
    int64_t maxcnt = m == 1 ? n : 0;
    for (int c = 0; c < m; c++)
        if (r->super_counts[c] > maxcnt) maxcnt = r->super_counts[c];
    int64_t buf_rows = maxcnt;
    if (file) {
        int64_t fit = mem && mem->budget > 0 ? mem->budget / ((int64_t)d * (int64_t)sizeof(float)) : maxcnt;
        if (fit < x->cap) fit = x->cap; /* at least one read buffer's worth */
        if (buf_rows > fit) buf_rows = fit;
    }
    int64_t *idx = dc_malloc((size_t)(n ? n : 1) * sizeof *idx, "member indices");
    float *buf = k_sub > 1 || file ? dc_malloc((size_t)(buf_rows ? buf_rows : 1) * d * sizeof(float), "member features")
                                   : NULL;
    if (!idx || ((k_sub > 1 || file) && !buf)) {
        dc_free(idx);
        dc_free(buf);
        dc_hkmeans_result_free(r);
        return DC_STATUS_NOMEM;
    }
    if (m == 1 && file) { /* one super-cluster of every point, centred on their mean */
        for (int64_t i = 0; i < n; i++) r->super[i] = 0;
        r->super_counts[0] = n;
        st = dc_rows_mean(r->super_centroids, x, NULL, n, buf, buf_rows);
    }
    for (int c = 0; c < m && st == DC_OK; c++) {
        double obj = 0;
        int splits = 0;
        if (file) st = level2_file(r, x, c, p, warm_sub, idx, buf, buf_rows, mem, &obj, &splits);
        else st = dc_hkmeans_level2(r, x->mem, c, p, warm_sub, idx, buf, &obj, &splits);
        r->obj2 += obj;
        r->splits2 += splits;
    }
    if (k_sub == 1) {
        /* level 2 is trivial; its objective is the level-1 one */
        r->obj2 = r->obj1;
    }
    dc_free(idx);
    dc_free(buf);
    if (st) dc_hkmeans_result_free(r);
    return st;
}
