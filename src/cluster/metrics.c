/* metrics.c — clustering quality against labels, with scikit-learn's
 * definitions: normalized mutual information (arithmetic normalisation, the
 * default of sklearn.metrics.normalized_mutual_info_score), adjusted Rand
 * index (through the pair-confusion matrix), cluster accuracy (best
 * one-to-one matching by the Hungarian algorithm) and purity. The
 * contingency table is built sparse (sorted label pairs), so 100k clusters
 * against 100k clusters cost O(n log n), not a dense table.
 * Includes: dc/cluster.h, core, libm. */
#include "dc/cluster.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Dense relabelling 0..r-1 of arbitrary non-negative labels. */
static dc_status densify(int32_t *out, int *nlabels, const int32_t *in, int64_t n,
                         const char *what)
{
    int32_t maxv = 0;
    for (int64_t i = 0; i < n; i++) {
        if (in[i] < 0)
            return dc_set_error(DC_STATUS_ARG, "%s: negative label %d at index %lld", what, in[i],
                                (long long)i);
        if (in[i] > maxv) maxv = in[i];
    }
    int32_t *map = dc_malloc(((size_t)maxv + 1) * sizeof *map, "label map");
    if (!map) return DC_STATUS_NOMEM;
    for (int32_t v = 0; v <= maxv; v++) map[v] = -1;
    for (int64_t i = 0; i < n; i++) map[in[i]] = 0;
    int r = 0;
    for (int32_t v = 0; v <= maxv; v++)
        if (map[v] == 0) map[v] = r++;
    for (int64_t i = 0; i < n; i++) out[i] = map[in[i]];
    dc_free(map);
    *nlabels = r;
    return DC_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The contingency table as sorted (a, b, count) cells plus marginals. */
typedef struct {
    int ra, rb;
    int64_t *ca, *cb;     /* marginals (ra), (rb) */
    int32_t *ia, *ib;     /* cell coordinates     */
    int64_t *cnt;         /* cell counts          */
    int64_t ncell, n;
} table;

static void table_free(table *t)
{
    dc_free(t->ca);
    dc_free(t->cb);
    dc_free(t->ia);
    dc_free(t->ib);
    dc_free(t->cnt);
}

static dc_status table_build(table *t, const int32_t *a, const int32_t *b, int64_t n)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    int32_t *da = dc_malloc((size_t)n * sizeof *da, "labels");
    int32_t *db = dc_malloc((size_t)n * sizeof *db, "labels");
    uint64_t *key = dc_malloc((size_t)n * sizeof *key, "label pairs");
    dc_status s = (!da || !db || !key) ? DC_STATUS_NOMEM : DC_OK;
    if (s == DC_OK) s = densify(da, &t->ra, a, n, "predicted labels");
    if (s == DC_OK) s = densify(db, &t->rb, b, n, "true labels");
    if (s == DC_OK) {
        t->ca = dc_xcalloc((size_t)t->ra, sizeof *t->ca);
        t->cb = dc_xcalloc((size_t)t->rb, sizeof *t->cb);
        for (int64_t i = 0; i < n; i++) {
            t->ca[da[i]]++;
            t->cb[db[i]]++;
            key[i] = (uint64_t)da[i] << 32 | (uint32_t)db[i];
        }
        qsort(key, (size_t)n, sizeof *key, cmp_u64);
        int64_t cells = 0;
        for (int64_t i = 0; i < n; i++) cells += i == 0 || key[i] != key[i - 1];
        t->ia = dc_xmalloc((size_t)cells * sizeof *t->ia);
        t->ib = dc_xmalloc((size_t)cells * sizeof *t->ib);
        t->cnt = dc_xmalloc((size_t)cells * sizeof *t->cnt);
        int64_t c = -1;
        for (int64_t i = 0; i < n; i++) {
            if (i == 0 || key[i] != key[i - 1]) {
                c++;
                t->ia[c] = (int32_t)(key[i] >> 32);
                t->ib[c] = (int32_t)(key[i] & 0xffffffffu);
                t->cnt[c] = 0;
            }
            t->cnt[c]++;
        }
        t->ncell = cells;
    }
    dc_free(da);
    dc_free(db);
    dc_free(key);
    if (s) table_free(t);
    return s;
}

static double entropy(const int64_t *c, int r, int64_t n)
{
    double h = 0;
    for (int i = 0; i < r; i++)
        if (c[i] > 0) {
            double p = (double)c[i] / (double)n;
            h -= p * log(p);
        }
    return h;
}

static double table_nmi(const table *t)
{
    if ((t->ra == 1 && t->rb == 1) || t->n == 0) return 1.0;
    double n = (double)t->n, mi = 0;
    for (int64_t c = 0; c < t->ncell; c++) {
        double nij = (double)t->cnt[c];
        mi += nij / n * (log(nij) + log(n) - log((double)t->ca[t->ia[c]]) - log((double)t->cb[t->ib[c]]));
    }
    if (mi <= 0) return 0.0; /* sklearn: mi == 0 cannot be a perfect match */
    double ha = entropy(t->ca, t->ra, t->n), hb = entropy(t->cb, t->rb, t->n);
    double norm = 0.5 * (ha + hb);
    if (norm < DBL_EPSILON) norm = DBL_EPSILON;
    return mi / norm;
}

/* ARI from the pair-confusion matrix, as sklearn 1.2. */
static double table_ari(const table *t)
{
    double n = (double)t->n, sum_sq = 0, sa = 0, sb = 0;
    for (int64_t c = 0; c < t->ncell; c++) sum_sq += (double)t->cnt[c] * (double)t->cnt[c];
    for (int i = 0; i < t->ra; i++) sa += (double)t->ca[i] * (double)t->ca[i];
    for (int j = 0; j < t->rb; j++) sb += (double)t->cb[j] * (double)t->cb[j];
    double tp = sum_sq - n, fp = sa - sum_sq, fn = sb - sum_sq, tn = n * n - fp - fn - sum_sq;
    /* pred = a: fp counts pairs together in a but apart in b */
    if (fn == 0 && fp == 0) return 1.0;
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn));
}

static double table_purity(const table *t)
{
    int64_t *best = dc_xcalloc((size_t)t->ra, sizeof *best);
    for (int64_t c = 0; c < t->ncell; c++)
        if (t->cnt[c] > best[t->ia[c]]) best[t->ia[c]] = t->cnt[c];
    double s = 0;
    for (int i = 0; i < t->ra; i++) s += (double)best[i];
    dc_free(best);
    return t->n ? s / (double)t->n : 1.0;
}

double dc_hungarian_max(const double *w, int rows, int cols, int *col_of_row)
{
    /* Shortest augmenting paths with potentials (O(rows² · cols)) on the
     * cost max(w) − w, for rows ≤ cols; transposed otherwise. */
    int transpose = rows > cols;
    int R = transpose ? cols : rows, C = transpose ? rows : cols;
    double wmax = 0;
    for (int64_t i = 0; i < (int64_t)rows * cols; i++)
        if (w[i] > wmax) wmax = w[i];
#define COST(i, j) (wmax - (transpose ? w[(size_t)(j) * cols + (i)] : w[(size_t)(i) * cols + (j)]))
    double *u = dc_xcalloc((size_t)R + 1, sizeof *u), *v = dc_xcalloc((size_t)C + 1, sizeof *v);
    double *minv = dc_xmalloc(((size_t)C + 1) * sizeof *minv);
    int *p = dc_xcalloc((size_t)C + 1, sizeof *p), *way = dc_xcalloc((size_t)C + 1, sizeof *way);
    char *used = dc_xmalloc((size_t)C + 1);
    for (int i = 1; i <= R; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= C; j++) {
            minv[j] = DBL_MAX;
            used[j] = 0;
        }
        do {
            used[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = DBL_MAX;
            for (int j = 1; j <= C; j++) {
                if (used[j]) continue;
                double cur = COST(i0 - 1, j - 1) - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= C; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    double total = 0;
    if (col_of_row)
        for (int i = 0; i < rows; i++) col_of_row[i] = -1;
    for (int j = 1; j <= C; j++) {
        if (p[j] == 0) continue;
        int r = transpose ? j - 1 : p[j] - 1, c = transpose ? p[j] - 1 : j - 1;
        total += w[(size_t)r * cols + c];
        if (col_of_row) col_of_row[r] = c;
    }
#undef COST
    dc_free(u);
    dc_free(v);
    dc_free(minv);
    dc_free(p);
    dc_free(way);
    dc_free(used);
    return total;
}

#define ACC_MAX_LABELS 4096

static double table_acc(const table *t)
{
    if (t->ra > ACC_MAX_LABELS || t->rb > ACC_MAX_LABELS) return -1;
    double *w = dc_xcalloc((size_t)t->ra * t->rb, sizeof *w);
    for (int64_t c = 0; c < t->ncell; c++) w[(size_t)t->ia[c] * t->rb + t->ib[c]] = (double)t->cnt[c];
    double best = dc_hungarian_max(w, t->ra, t->rb, NULL);
    dc_free(w);
    return t->n ? best / (double)t->n : 1.0;
}

dc_status dc_cluster_scores_compute(dc_cluster_scores *s, const int32_t *pred,
                                    const int32_t *truth, int64_t n)
{
    memset(s, 0, sizeof *s);
    if (n < 1) return dc_set_error(DC_STATUS_ARG, "metrics: no samples");
    table t;
    dc_status st = table_build(&t, pred, truth, n);
    if (st) return st;
    s->nmi = table_nmi(&t);
    s->ari = table_ari(&t);
    s->purity = table_purity(&t);
    s->acc = table_acc(&t);
    table_free(&t);
    return DC_OK;
}

dc_status dc_nmi(double *out, const int32_t *a, const int32_t *b, int64_t n)
{
    *out = 0;
    if (n < 1) return dc_set_error(DC_STATUS_ARG, "metrics: no samples");
    table t;
    dc_status st = table_build(&t, a, b, n);
    if (st) return st;
    *out = table_nmi(&t);
    table_free(&t);
    return DC_OK;
}
