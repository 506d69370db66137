/* test_eval.c — the evaluation protocols on synthetic features with known
 * answers: the linear probe reaches ~100% on a linearly separable set and
 * near the best possible on thousands of correlated columns and on
 * ill-conditioned features (by averaging its iterates), the
 * weighted k-NN matches a hand-computed case, cluster evaluation recovers
 * well-separated blobs. */
#include "dc/eval.h"
#include "test.h"

#include <math.h>

int main(void)
{
    dc_log_set_level(DC_LOG_WARN);
    /* Linearly separable: class c has feature c set high, plus noise. */
    enum { NTR = 2000, NTE = 500, D = 20, C = 4 };
    float *xtr = dc_xmalloc(NTR * D * sizeof(float)), *xte = dc_xmalloc(NTE * D * sizeof(float));
    int32_t ytr[NTR], yte[NTE];
    dc_rng r;
    dc_rng_init(&r, 3, DC_RNG_STREAM_TEST, 0, 0);
    for (int i = 0; i < NTR + NTE; i++) {
        float *x = i < NTR ? xtr + i * D : xte + (i - NTR) * D;
        int32_t c = (int32_t)dc_rng_below(&r, C);
        for (int j = 0; j < D; j++) x[j] = (float)dc_rng_normal(&r) * 0.5f;
        x[c] += 3.0f;
        if (i < NTR) ytr[i] = c;
        else yte[i - NTR] = c;
    }
    float *ctr = dc_xmalloc(NTR * D * sizeof(float)), *cte = dc_xmalloc(NTE * D * sizeof(float));
    memcpy(ctr, xtr, NTR * D * sizeof(float));
    memcpy(cte, xte, NTE * D * sizeof(float));
    dc_probe_params p = dc_probe_params_default();
    p.epochs = 5;
    dc_probe_result pr;
    CHECK(dc_linear_probe(&pr, xtr, ytr, NTR, xte, yte, NTE, D, C, &p) == DC_OK);
    printf("linear probe on a separable set: top-1 %.4f (lr %g, held-out %.4f)\n", pr.top1, pr.lr, pr.val_top1);
    CHECK(pr.top1 > 0.98);
    CHECK(pr.top5 == -1); /* 4 classes: no top-5 */
    CHECK(pr.val_top1 > 0.95);
    {
        /* Thousands of correlated columns, as conv features: a factor shared
         * by every column (after standardisation the covariance's top
         * eigenvalue is about 0.8·D), the class in a weak direction across
         * all of them (separable at about 96%). SGD needs a rate well
         * under 0.01 here: the grid's old bottom scored 0.55. */
        enum { N2 = 2000, M2 = 1000, D2 = 2048 };
        float *a = dc_xmalloc((size_t)N2 * D2 * sizeof(float)), *b = dc_xmalloc((size_t)M2 * D2 * sizeof(float));
        int32_t *ya = dc_xmalloc(N2 * sizeof(int32_t)), *yb2 = dc_xmalloc(M2 * sizeof(int32_t));
        dc_rng_init(&r, 5, DC_RNG_STREAM_TEST, 0, 0);
        for (int i = 0; i < N2 + M2; i++) {
            float *x = i < N2 ? a + (size_t)i * D2 : b + (size_t)(i - N2) * D2;
            int32_t c = (int32_t)dc_rng_below(&r, 2);
            float g = (float)dc_rng_normal(&r);
            for (int j = 0; j < D2; j++)
                x[j] = g + 0.5f * (float)dc_rng_normal(&r) + 0.02f * (float)(2 * c - 1) * ((j & 1) ? 1.f : -1.f);
            if (i < N2) ya[i] = c;
            else yb2[i - N2] = c;
        }
        dc_probe_params q = dc_probe_params_default();
        q.epochs = 5;
        CHECK(dc_linear_probe(&pr, a, ya, N2, b, yb2, M2, D2, 2, &q) == DC_OK);
        printf("linear probe on %d correlated columns: top-1 %.4f (lr %g)\n", D2, pr.top1, pr.lr);
        CHECK(pr.top1 > 0.9);
        CHECK(pr.lr < 0.01);
        dc_free(a);
        dc_free(b);
        dc_free(ya);
        dc_free(yb2);
    }

    {
        /* Ill-conditioned, as a trained network's final layer: 40 latent
         * factors with standard deviations from 10 down to 0.05 mixed into
         * 128 columns, the 10 classes told apart only by five of the weak
         * factors. The last iterate of SGD keeps bouncing along the strong
         * directions at the rates that move the weak ones; the mean of the
         * second half's iterates does not. */
        enum { N3 = 4000, M3 = 2000, D3 = 128, L3 = 40, C3 = 10 };
        float *A = dc_xmalloc((size_t)L3 * D3 * sizeof(float)), mu[C3][L3], sd[L3];
        float *a = dc_xmalloc((size_t)N3 * D3 * sizeof(float)), *b = dc_xmalloc((size_t)M3 * D3 * sizeof(float));
        float *a0 = dc_xmalloc((size_t)N3 * D3 * sizeof(float)), *b0 = dc_xmalloc((size_t)M3 * D3 * sizeof(float));
        int32_t *ya = dc_xmalloc(N3 * sizeof(int32_t)), *yb3 = dc_xmalloc(M3 * sizeof(int32_t));
        dc_rng_init(&r, 9, DC_RNG_STREAM_TEST, 0, 0);
        for (int l = 0; l < L3; l++) sd[l] = 10.0f * powf(0.005f, (float)l / (L3 - 1));
        for (int q = 0; q < L3 * D3; q++) A[q] = (float)dc_rng_normal(&r);
        for (int c = 0; c < C3; c++)
            for (int l = 0; l < L3; l++)
                mu[c][l] = (l >= 30 && l <= 38 && l % 2 == 0) ? 4.0f * sd[l] * (float)dc_rng_normal(&r) : 0.0f;
        for (int i = 0; i < N3 + M3; i++) {
            float *x = i < N3 ? a + (size_t)i * D3 : b + (size_t)(i - N3) * D3, h[L3];
            int32_t c = (int32_t)dc_rng_below(&r, C3);
            for (int l = 0; l < L3; l++) h[l] = sd[l] * (float)dc_rng_normal(&r) + mu[c][l];
            for (int j = 0; j < D3; j++) {
                float v = 0.01f * (float)dc_rng_normal(&r);
                for (int l = 0; l < L3; l++) v += h[l] * A[l * D3 + j];
                x[j] = v;
            }
            if (i < N3) ya[i] = c;
            else yb3[i - N3] = c;
        }
        memcpy(a0, a, (size_t)N3 * D3 * sizeof(float));
        memcpy(b0, b, (size_t)M3 * D3 * sizeof(float));
        dc_probe_params q = dc_probe_params_default();
        dc_probe_result last, mean;
        q.average = 0;
        CHECK(dc_linear_probe(&last, a0, ya, N3, b0, yb3, M3, D3, C3, &q) == DC_OK);
        q.average = 1;
        CHECK(dc_linear_probe(&mean, a, ya, N3, b, yb3, M3, D3, C3, &q) == DC_OK);
        printf("linear probe on ill-conditioned features: last iterate %.4f (lr %g), mean of the second half %.4f (lr %g)\n",
               last.top1, last.lr, mean.top1, mean.lr);
        CHECK(mean.top1 > 0.92);
        CHECK(mean.top1 > last.top1 + 0.04);
        dc_free(A);
        dc_free(a);
        dc_free(b);
        dc_free(a0);
        dc_free(b0);
        dc_free(ya);
        dc_free(yb3);
    }

    double top1;
    CHECK(dc_knn_eval(&top1, ctr, ytr, NTR, cte, yte, NTE, D, C, 20, 0.07) == DC_OK);
    printf("k-NN on the same set: top-1 %.4f\n", top1);
    CHECK(top1 > 0.97);

    /* Hand-computed k-NN: 3 training points, k = 2. */
    float tr[3 * 2] = {1, 0, 0, 1, 1, 0.1f}, te[2 * 2] = {1, 0.05f, 0.1f, 1};
    int32_t ytr3[3] = {0, 1, 2}, yte2[2] = {2, 1};
    /* test 0 is nearest to tr 2 (cos 0.9999) then tr 0: votes e^(s/T)
     * favour label 2; test 1 nearest to tr 1: label 1 */
    CHECK(dc_knn_eval(&top1, tr, ytr3, 3, te, yte2, 2, 2, 3, 2, 0.07) == DC_OK);
    CHECK_CLOSE(top1, 1.0, 1e-12);
    CHECK(dc_knn_eval(&top1, tr, ytr3, 3, te, yte2, 2, 2, 3, 9, 0.07) == DC_STATUS_ARG);

    /* Clusters: four blobs recovered exactly. */
    enum { NB = 400 };
    float *xb = dc_xmalloc(NB * 8 * sizeof(float));
    int32_t yb[NB];
    for (int i = 0; i < NB; i++) {
        yb[i] = i % 4;
        for (int j = 0; j < 8; j++) xb[i * 8 + j] = (float)dc_rng_normal(&r) * 0.1f + (j == yb[i] ? 5.0f : 0.0f);
    }
    dc_cluster_scores sc;
    CHECK(dc_eval_clusters(&sc, xb, NB, 8, yb, 4, 0, 20, 1, 1) == DC_OK);
    printf("blobs: NMI %.4f ARI %.4f ACC %.4f\n", sc.nmi, sc.ari, sc.acc);
    CHECK(sc.nmi > 0.99 && sc.acc > 0.99);
    CHECK(dc_eval_clusters(&sc, xb, NB, 8, yb, 4, 4, 20, 3, 1) == DC_OK); /* through PCA + L2 */
    CHECK(sc.nmi > 0.95);

    /* Restarts: 10 blobs in 2-D on a line, k = 10; one k-means run from
     * random rows often merges neighbours and splits another blob, the best
     * of 20 runs (by objective, never by the labels) recovers them more
     * often over the same seeds. */
    enum { NL = 500 };
    float *xl = dc_xmalloc(NL * 2 * sizeof(float)), *xs = dc_xmalloc(NL * 2 * sizeof(float));
    int32_t yl[NL];
    for (int i = 0; i < NL; i++) {
        yl[i] = i % 10;
        xl[2 * i] = (float)(yl[i] * 10 + dc_rng_normal(&r));
        xl[2 * i + 1] = (float)dc_rng_normal(&r);
    }
    double nmi1 = 0, nmi20 = 0;
    int perfect1 = 0, perfect20 = 0;
    for (int seed = 1; seed <= 8; seed++) {
        memcpy(xs, xl, NL * 2 * sizeof(float));
        CHECK(dc_eval_clusters(&sc, xs, NL, 2, yl, 10, 0, 20, 1, (uint64_t)seed) == DC_OK);
        nmi1 += sc.nmi / 8;
        perfect1 += sc.acc > 0.99;
        memcpy(xs, xl, NL * 2 * sizeof(float));
        CHECK(dc_eval_clusters(&sc, xs, NL, 2, yl, 10, 0, 20, 20, (uint64_t)seed) == DC_OK);
        nmi20 += sc.nmi / 8;
        perfect20 += sc.acc > 0.99;
    }
    printf("restarts: mean NMI %.4f (1 run) %.4f (best of 20); perfect %d vs %d of 8\n", nmi1, nmi20, perfect1,
           perfect20);
    CHECK(perfect20 > perfect1);
    CHECK(nmi20 > nmi1);
    CHECK(dc_eval_clusters(&sc, xs, NL, 2, yl, 10, 0, 20, 0, 1) == DC_STATUS_ARG);

    /* Several clusterings: run r is the single clustering from seed + r, the
     * mean and sample sd are those of the runs' scores; one run is
     * dc_eval_clusters exactly (sd 0). Through PCA + L2 to check that the
     * whitening is done once and kept. */
    {
        enum { R = 5 };
        double v[R], m = 0, var = 0, ma = 0, mc = 0;
        for (int t = 0; t < R; t++) {
            memcpy(xs, xl, NL * 2 * sizeof(float));
            CHECK(dc_eval_clusters(&sc, xs, NL, 2, yl, 10, 0, 20, 1, (uint64_t)(40 + t)) == DC_OK);
            v[t] = sc.nmi;
            m += sc.nmi / R;
            ma += sc.ari / R;
            mc += sc.acc / R;
        }
        for (int t = 0; t < R; t++) var += (v[t] - m) * (v[t] - m) / (R - 1);
        dc_cluster_scores mean, sd;
        memcpy(xs, xl, NL * 2 * sizeof(float));
        CHECK(dc_eval_clusters_runs(&mean, &sd, xs, NL, 2, yl, 10, 0, 20, 1, R, 40) == DC_OK);
        printf("runs: NMI %.4f ± %.4f over %d clusterings (by hand %.4f ± %.4f)\n", mean.nmi, sd.nmi, R, m, sqrt(var));
        CHECK(fabs(mean.nmi - m) < 1e-12 && fabs(mean.ari - ma) < 1e-12 && fabs(mean.acc - mc) < 1e-12);
        CHECK(fabs(sd.nmi - sqrt(var)) < 1e-9);
        CHECK(sd.nmi > 0); /* the seeds do disagree on this data (perfect1 < 8 above) */
        dc_cluster_scores one;
        memcpy(xs, xl, NL * 2 * sizeof(float));
        CHECK(dc_eval_clusters_runs(&mean, &sd, xs, NL, 2, yl, 10, 0, 20, 3, 1, 7) == DC_OK);
        memcpy(xs, xl, NL * 2 * sizeof(float));
        CHECK(dc_eval_clusters(&one, xs, NL, 2, yl, 10, 0, 20, 3, 7) == DC_OK);
        CHECK(mean.nmi == one.nmi && mean.ari == one.ari && mean.acc == one.acc && sd.nmi == 0 && sd.acc == 0);
        /* through PCA + L2 (32 -> 4 dimensions; the PCA fits every row here,
         * n <= d(d-1)/2, so it does not depend on the seed): the mean of the
         * single clusterings of fresh copies */
        enum { DW = 32 };
        float *xc = dc_xmalloc(NB * DW * sizeof(float)), *x0 = dc_xmalloc(NB * DW * sizeof(float));
        for (int i = 0; i < NB * DW; i++) x0[i] = (float)dc_rng_normal(&r) + (i % DW == yb[i / DW] ? 1.5f : 0.0f);
        double mp = 0;
        for (int t = 0; t < 3; t++) {
            memcpy(xc, x0, NB * DW * sizeof(float));
            CHECK(dc_eval_clusters(&sc, xc, NB, DW, yb, 4, 4, 20, 1, (uint64_t)(9 + t)) == DC_OK);
            mp += sc.nmi / 3;
        }
        memcpy(xc, x0, NB * DW * sizeof(float));
        CHECK(dc_eval_clusters_runs(&mean, NULL, xc, NB, DW, yb, 4, 4, 20, 1, 3, 9) == DC_OK);
        printf("runs through PCA: NMI %.4f (by hand %.4f)\n", mean.nmi, mp);
        CHECK(fabs(mean.nmi - mp) < 1e-12);
        CHECK(dc_eval_clusters_runs(&mean, &sd, xc, NB, DW, yb, 4, 0, 20, 1, 0, 9) == DC_STATUS_ARG);
        dc_free(xc);
        dc_free(x0);
    }
    dc_free(xl);
    dc_free(xs);
    CHECK(dc_linear_probe(&pr, xtr, ytr, 5, xte, yte, NTE, D, C, &p) == DC_STATUS_ARG);
    dc_free(xtr);
    dc_free(xte);
    dc_free(ctr);
    dc_free(cte);
    dc_free(xb);
    return TEST_SUMMARY();
}
