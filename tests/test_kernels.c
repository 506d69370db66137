/* test_kernels.c — every layer kernel: the fast path equals the reference
 * on awkward shapes, and backward passes equal central finite differences
 * of a random linear functional of the forward output (computed in double,
 * inputs kept away from ReLU kinks and max-pool ties). */
#include "dc/kernels.h"
#include "test.h"

#include <math.h>
#include <stdint.h>

static dc_rng rng;

static float *randv(int64_t n, float scale)
{
    float *v = dc_xmalloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(dc_rng_normal(&rng) * scale);
    return v;
}

static float *zeros(int64_t n) { return dc_xcalloc((size_t)n, sizeof(float)); }

static double maxrel(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 1e-6;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > num) num = e;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return num / den;
}

/* ---- finite differences: L(x) = Σ r·f(x) -------------------------------- */

typedef void (*fwd_fn)(void *ctx, float *out);

static double functional(fwd_fn f, void *ctx, float *out, const float *r, int64_t nout)
{
    f(ctx, out);
    double s = 0;
    for (int64_t i = 0; i < nout; i++) s += (double)r[i] * out[i];
    return s;
}

/* Compares analytic gradient `g` of L with respect to x[0..n) with central
 * differences at up to 40 positions. Returns the largest relative error. */
static double fd_check(fwd_fn f, void *ctx, float *x, const float *g, int64_t n, const float *r,
                       int64_t nout, float h)
{
    float *out = zeros(nout);
    double worst = 0;
    int64_t step = n > 40 ? n / 40 : 1;
    for (int64_t i = 0; i < n; i += step) {
        float keep = x[i];
        x[i] = keep + h;
        double lp = functional(f, ctx, out, r, nout);
        x[i] = keep - h;
        double lm = functional(f, ctx, out, r, nout);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        double err = fabs(num - g[i]) / (fabs(num) + fabs(g[i]) + 1e-2);
        if (err > worst) worst = err;
    }
    dc_free(out);
    return worst;
}

/* ---- convolution ------------------------------------------------------- */

typedef struct {
    float *in, *w, *b;
    int N, C, H, W, OC, K, S, P;
} conv_ctx;

static void conv_fwd(void *c, float *out)
{
    conv_ctx *x = c;
    dc_conv2d_forward_ref(out, x->in, x->w, x->b, x->N, x->C, x->H, x->W, x->OC, x->K, x->S, x->P);
}

static void test_conv(void)
{
    static const int shapes[][8] = {
        /* N, C, H, W, OC, K, stride, pad */
        {1, 3, 7, 5, 5, 3, 1, 1}, {2, 2, 9, 9, 4, 3, 2, 0}, {3, 5, 6, 7, 3, 5, 1, 2},
        {1, 1, 4, 4, 2, 1, 1, 0}, {2, 4, 11, 8, 6, 3, 2, 1}, {1, 3, 5, 5, 7, 1, 2, 1},
        {4, 16, 8, 8, 24, 3, 1, 1}, {1, 2, 70, 66, 3, 3, 1, 1}, /* over 4096 positions: chunked dw */
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *q = shapes[s];
        int N = q[0], C = q[1], H = q[2], W = q[3], OC = q[4], K = q[5], S = q[6], P = q[7];
        int OH = dc_conv_out_size(H, K, S, P), OW = dc_conv_out_size(W, K, S, P);
        int64_t nin = (int64_t)N * C * H * W, nw = (int64_t)OC * C * K * K, nout = (int64_t)N * OC * OH * OW;
        float *in = randv(nin, 1), *w = randv(nw, 0.5f), *b = randv(OC, 0.5f);
        float *o1 = zeros(nout), *o2 = zeros(nout), *r = randv(nout, 1);
        float *col = zeros((int64_t)dc_conv2d_workspace(C, H, W, K, S, P));
        float *dwt = zeros((int64_t)dc_conv2d_workspace_dw(C, OC, K, OH, OW) + 1);
        dc_conv2d_forward_ref(o1, in, w, b, N, C, H, W, OC, K, S, P);
        dc_conv2d_forward(o2, col, in, w, b, N, C, H, W, OC, K, S, P);
        CHECK_MSG(maxrel(o2, o1, nout) < 1e-5, "conv fwd shape %zu: %g", s, maxrel(o2, o1, nout));
        float *di1 = zeros(nin), *dw1 = zeros(nw), *db1 = zeros(OC);
        float *di2 = zeros(nin), *dw2 = zeros(nw), *db2 = zeros(OC);
        dc_conv2d_backward_ref(di1, dw1, db1, r, in, w, N, C, H, W, OC, K, S, P);
        dc_conv2d_backward(di2, dw2, db2, col, dwt, r, in, w, N, C, H, W, OC, K, S, P);
        CHECK_MSG(maxrel(di2, di1, nin) < 1e-5, "conv din shape %zu", s);
        CHECK_MSG(maxrel(dw2, dw1, nw) < 1e-5, "conv dw shape %zu", s);
        CHECK_MSG(maxrel(db2, db1, OC) < 1e-5, "conv db shape %zu", s);
        /* accumulation: a second backward doubles the gradients */
        dc_conv2d_backward(di2, dw2, db2, col, dwt, r, in, w, N, C, H, W, OC, K, S, P);
        for (int64_t i = 0; i < nw; i++) dw1[i] *= 2;
        CHECK(maxrel(dw2, dw1, nw) < 1e-5);
        for (int64_t i = 0; i < nw; i++) dw1[i] /= 2;
        if (s < 4) {
            conv_ctx c = {in, w, b, N, C, H, W, OC, K, S, P};
            CHECK_MSG(fd_check(conv_fwd, &c, in, di1, nin, r, nout, 0.1f) < 2e-3, "conv fd din %zu", s);
            CHECK_MSG(fd_check(conv_fwd, &c, w, dw1, nw, r, nout, 0.1f) < 2e-3, "conv fd dw %zu", s);
            CHECK_MSG(fd_check(conv_fwd, &c, b, db1, OC, r, nout, 0.1f) < 2e-3, "conv fd db %zu", s);
        }
        dc_free(in); dc_free(w); dc_free(b); dc_free(o1); dc_free(o2); dc_free(r); dc_free(col); dc_free(dwt);
        dc_free(di1); dc_free(dw1); dc_free(db1); dc_free(di2); dc_free(dw2); dc_free(db2);
    }
}

/* ---- batch-norm (training mode) ---------------------------------------- */

typedef struct {
    float *in, *gamma, *beta;
    int N, C, HW;
} bn_ctx;

static void bn_fwd(void *c, float *out)
{
    bn_ctx *x = c;
    double sum[16], sq[16];
    float mean[16], rstd[16];
    int64_t cnt = (int64_t)x->N * x->HW;
    dc_bn_sums(sum, x->in, x->N, x->C, x->HW);
    for (int ch = 0; ch < x->C; ch++) mean[ch] = (float)(sum[ch] / (double)cnt);
    dc_bn_centered_sumsq(sq, x->in, mean, x->N, x->C, x->HW);
    dc_bn_finalize(mean, rstd, NULL, NULL, sq, x->C, cnt, 1e-5f, 0.1f);
    dc_bn_apply(out, x->in, x->gamma, x->beta, mean, rstd, x->N, x->C, x->HW);
}

static void test_batchnorm(void)
{
    int N = 3, C = 4, HW = 10;
    int64_t n = (int64_t)N * C * HW;
    float *in = randv(n, 2), *gamma = randv(C, 1), *beta = randv(C, 1), *r = randv(n, 1);
    for (int64_t i = 0; i < n; i++) in[i] += 1.5f;
    float *out = zeros(n), *din = zeros(n), *dg = zeros(C), *dbt = zeros(C);
    double sum[4], sq[4], sdy[4], sdx[4];
    float mean[4], rstd[4], rm[4] = {0, 0, 0, 0}, rv[4] = {1, 1, 1, 1};
    dc_bn_sums(sum, in, N, C, HW);
    for (int c = 0; c < C; c++) mean[c] = (float)(sum[c] / (N * HW));
    dc_bn_centered_sumsq(sq, in, mean, N, C, HW);
    dc_bn_finalize(mean, rstd, rm, rv, sq, C, N * HW, 1e-5f, 0.1f);
    dc_bn_apply(out, in, gamma, beta, mean, rstd, N, C, HW);
    /* Per channel: output mean = beta, std = |gamma| (biased). */
    for (int c = 0; c < C; c++) {
        double m = 0, v = 0, xm = 0, xv = 0;
        for (int k = 0; k < N; k++)
            for (int i = 0; i < HW; i++) {
                m += out[(k * C + c) * HW + i];
                xm += in[(k * C + c) * HW + i];
            }
        m /= N * HW;
        xm /= N * HW;
        for (int k = 0; k < N; k++)
            for (int i = 0; i < HW; i++) {
                double e = out[(k * C + c) * HW + i] - m, xe = in[(k * C + c) * HW + i] - xm;
                v += e * e;
                xv += xe * xe;
            }
        CHECK_CLOSE(m, beta[c], 1e-4);
        CHECK_CLOSE(sqrt(v / (N * HW)), fabs(gamma[c]), 1e-3 * (1 + fabs(gamma[c])));
        /* running stats: momentum 0.1, unbiased variance */
        CHECK_CLOSE(rm[c], 0.1 * xm, 1e-5);
        CHECK_CLOSE(rv[c], 0.9 + 0.1 * xv / (N * HW - 1), 1e-4);
    }
    dc_bn_backward_sums(sdy, sdx, r, in, mean, rstd, N, C, HW);
    dc_bn_backward_apply(din, dg, dbt, r, in, gamma, mean, rstd, sdy, sdx, N, C, HW, N * HW);
    bn_ctx c = {in, gamma, beta, N, C, HW};
    CHECK_MSG(fd_check(bn_fwd, &c, in, din, n, r, n, 1e-2f) < 5e-3, "bn fd din");
    CHECK_MSG(fd_check(bn_fwd, &c, gamma, dg, C, r, n, 1e-2f) < 5e-3, "bn fd dgamma");
    CHECK_MSG(fd_check(bn_fwd, &c, beta, dbt, C, r, n, 1e-2f) < 5e-3, "bn fd dbeta");
    /* eval mode uses the running statistics */
    dc_batchnorm_forward_eval(out, in, gamma, beta, rm, rv, N, C, HW, 1e-5f);
    CHECK_CLOSE(out[5], (in[5] - rm[0]) / sqrt(rv[0] + 1e-5) * gamma[0] + beta[0], 1e-4);
    dc_free(in); dc_free(gamma); dc_free(beta); dc_free(r); dc_free(out); dc_free(din);
    dc_free(dg); dc_free(dbt);
}

/* ---- pooling, relu, pad, linear, dropout, loss -------------------------- */

typedef struct {
    float *in, *w, *b;
    int a, bb, c, d, e;
} gen_ctx;

static void maxpool_fwd(void *c, float *out)
{
    gen_ctx *x = c;
    int32_t arg[256];
    dc_maxpool_forward(out, arg, x->in, x->a, x->bb, x->c, x->d, x->e);
}
static void avgpool_fwd(void *c, float *out)
{
    gen_ctx *x = c;
    dc_avgpool_forward(out, x->in, x->a, x->bb, x->c, x->d, x->e);
}
static void relu_fwd(void *c, float *out)
{
    gen_ctx *x = c;
    dc_relu_forward(out, x->in, x->a);
}
static void pad_fwd(void *c, float *out)
{
    gen_ctx *x = c;
    dc_pad_forward(out, x->in, x->a, x->bb, x->c, x->d);
}
static void linear_fwd(void *c, float *out)
{
    gen_ctx *x = c;
    dc_linear_forward(out, x->in, x->w, x->b, x->a, x->bb, x->c);
}

static void test_simple_layers(void)
{
    /* max-pool 2x2/2 and 3x3/2 on distinct values (no ties) */
    for (int variant = 0; variant < 2; variant++) {
        int NC = 3, H = 7, W = 6, K = variant ? 3 : 2, S = 2;
        int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
        int64_t n = (int64_t)NC * H * W, no = (int64_t)NC * OH * OW;
        float *in = zeros(n), *out = zeros(no), *din = zeros(n), *r = randv(no, 1);
        for (int64_t i = 0; i < n; i++) in[i] = (float)((i * 37) % n) * 0.1f; /* a permutation */
        int32_t arg[256];
        dc_maxpool_forward(out, arg, in, NC, H, W, K, S);
        dc_maxpool_backward(din, r, arg, NC, H, W, OH, OW);
        gen_ctx c = {in, NULL, NULL, NC, H, W, K, S};
        CHECK_MSG(fd_check(maxpool_fwd, &c, in, din, n, r, no, 1e-3f) < 1e-3, "maxpool fd");
        memset(din, 0, (size_t)n * sizeof *din);
        dc_avgpool_forward(out, in, NC, H, W, K, S);
        dc_avgpool_backward(din, r, NC, H, W, K, S);
        CHECK_MSG(fd_check(avgpool_fwd, &c, in, din, n, r, no, 1e-2f) < 1e-3, "avgpool fd");
        dc_free(in); dc_free(out); dc_free(din); dc_free(r);
    }
    /* max-pool picks the first maximum on ties, as PyTorch */
    float tie[4] = {1, 1, 1, 1}, o;
    int32_t a;
    dc_maxpool_forward(&o, &a, tie, 1, 2, 2, 2, 2);
    CHECK(a == 0 && o == 1);
    float nan4[4] = {1, NAN, 3, 2};
    dc_maxpool_forward(&o, &a, nan4, 1, 2, 2, 2, 2);
    CHECK(isnan(o) && a == 1);

    /* relu away from the kink */
    int64_t n = 50;
    float *in = randv(n, 1), *out = zeros(n), *din = zeros(n), *r = randv(n, 1);
    for (int64_t i = 0; i < n; i++)
        if (fabsf(in[i]) < 0.1f) in[i] = 0.5f;
    dc_relu_forward(out, in, n);
    dc_relu_backward(din, r, out, n);
    gen_ctx c = {in, NULL, NULL, (int)n, 0, 0, 0, 0};
    CHECK(fd_check(relu_fwd, &c, in, din, n, r, n, 1e-3f) < 1e-3);
    dc_free(in); dc_free(out); dc_free(din); dc_free(r);

    /* zero padding */
    int NC = 2, H = 3, W = 4, P = 2;
    int64_t ni = NC * H * W, no = NC * (H + 2 * P) * (W + 2 * P);
    in = randv(ni, 1);
    out = randv(no, 1); /* garbage: forward must overwrite everything */
    din = zeros(ni);
    r = randv(no, 1);
    dc_pad_forward(out, in, NC, H, W, P);
    CHECK(out[0] == 0 && out[(W + 2 * P) * P + P] == in[0] && out[no - 1] == 0);
    dc_pad_backward(din, r, NC, H, W, P);
    gen_ctx pc = {in, NULL, NULL, NC, H, W, P, 0};
    CHECK(fd_check(pad_fwd, &pc, in, din, ni, r, no, 1e-2f) < 1e-3);
    dc_free(in); dc_free(out); dc_free(din); dc_free(r);

    /* linear */
    int N = 3, IN = 7, OUT = 5;
    in = randv(N * IN, 1);
    float *w = randv(OUT * IN, 1), *b = randv(OUT, 1), *dw = zeros(OUT * IN), *db = zeros(OUT);
    out = zeros(N * OUT);
    din = zeros(N * IN);
    r = randv(N * OUT, 1);
    dc_linear_forward(out, in, w, b, N, IN, OUT);
    double e = b[1];
    for (int i = 0; i < IN; i++) e += (double)in[2 * IN + i] * w[1 * IN + i];
    CHECK_CLOSE(out[2 * OUT + 1], e, 1e-5);
    dc_linear_backward(din, dw, db, r, in, w, N, IN, OUT);
    gen_ctx lc = {in, w, b, N, IN, OUT, 0, 0};
    CHECK(fd_check(linear_fwd, &lc, in, din, N * IN, r, N * OUT, 1e-2f) < 1e-3);
    CHECK(fd_check(linear_fwd, &lc, w, dw, OUT * IN, r, N * OUT, 1e-2f) < 1e-3);
    CHECK(fd_check(linear_fwd, &lc, b, db, OUT, r, N * OUT, 1e-2f) < 1e-3);
    dc_free(in); dc_free(w); dc_free(b); dc_free(dw); dc_free(db); dc_free(out); dc_free(din); dc_free(r);
}

static void test_dropout(void)
{
    int64_t n = 100000;
    float *in = zeros(n), *out = zeros(n), *out2 = zeros(n), *din = zeros(n), *g = zeros(n);
    uint8_t *mask = dc_xmalloc((size_t)n), *mask2 = dc_xmalloc((size_t)n);
    for (int64_t i = 0; i < n; i++) in[i] = g[i] = 1.0f;
    dc_dropout_forward(out, mask, in, n, 0, 0.5f, 7, 3, 11);
    int64_t kept = 0;
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        kept += mask[i];
        ok &= out[i] == (mask[i] ? 2.0f : 0.0f);
    }
    CHECK(ok);
    CHECK(kept > 49000 && kept < 51000);
    dc_dropout_backward(din, g, mask, n, 0.5f);
    CHECK(memcmp(din, out, (size_t)n * sizeof *din) == 0);
    /* same coordinates: same mask; another step: another mask */
    dc_dropout_forward(out2, mask2, in, n, 0, 0.5f, 7, 3, 11);
    CHECK(memcmp(mask, mask2, (size_t)n) == 0);
    /* the batch split in pieces at odd offsets draws the same mask */
    memset(mask2, 9, (size_t)n);
    int64_t cut[] = {0, 3, 1029, 70001, n};
    for (int c = 0; c < 4; c++)
        dc_dropout_forward(out2 + cut[c], mask2 + cut[c], in + cut[c], cut[c + 1] - cut[c], cut[c], 0.5f, 7, 3, 11);
    CHECK(memcmp(mask, mask2, (size_t)n) == 0);
    dc_dropout_forward(out2, mask2, in, n, 0, 0.5f, 7, 3, 12);
    CHECK(memcmp(mask, mask2, (size_t)n) != 0);
    dc_free(in); dc_free(out); dc_free(out2); dc_free(din); dc_free(g); dc_free(mask); dc_free(mask2);
}

static void test_xent(void)
{
    int N = 4, C = 6;
    float *z = randv(N * C, 2), *p = zeros(N * C), *d = zeros(N * C);
    int32_t t[4] = {0, 5, 2, 2};
    int correct;
    double loss = dc_softmax_xent_forward(p, &correct, z, t, N, C);
    double want = 0;
    int hits = 0;
    for (int n = 0; n < N; n++) {
        double s = 0;
        int arg = 0;
        for (int c = 0; c < C; c++) {
            s += exp(z[n * C + c]);
            if (z[n * C + c] > z[n * C + arg]) arg = c;
        }
        want += log(s) - z[n * C + t[n]];
        hits += arg == t[n];
    }
    CHECK_CLOSE(loss, want, 1e-5);
    CHECK_EQ_INT(correct, hits);
    dc_softmax_xent_backward(d, p, t, N, C, 1.0f / N);
    /* finite differences of the mean loss */
    double worst = 0;
    for (int i = 0; i < N * C; i++) {
        float keep = z[i];
        z[i] = keep + 1e-2f;
        double lp = dc_softmax_xent_forward(p, NULL, z, t, N, C) / N;
        z[i] = keep - 1e-2f;
        double lm = dc_softmax_xent_forward(p, NULL, z, t, N, C) / N;
        z[i] = keep;
        double e = fabs((lp - lm) / 2e-2 - d[i]);
        if (e > worst) worst = e;
    }
    CHECK_MSG(worst < 1e-4, "xent fd %g", worst);
    /* large logits stay finite */
    float big[2] = {1000.0f, -1000.0f}, pb[2];
    int32_t t0 = 1;
    double lb = dc_softmax_xent_forward(pb, NULL, big, &t0, 1, 2);
    CHECK(isfinite(lb) && fabs(lb - 2000.0) < 1e-3);
    dc_free(z); dc_free(p); dc_free(d);
}

/* Channel-blocked layout: round trip with zero padding lanes; the one-pass
 * moments equal the NCHW two-pass sums (mean offset large against the
 * spread, where a naive E[x²] − mean² would cancel); max-pool and BN
 * backward equal their NCHW counterparts. */
static void test_blocked(void)
{
    const int shapes[][4] = {{3, 20, 5, 7}, {2, 16, 4, 4}, {1, 5, 3, 3}, {4, 33, 6, 5}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int N = shapes[k][0], C = shapes[k][1], H = shapes[k][2], W = shapes[k][3], HW = H * W;
        int64_t n = (int64_t)N * C * HW, nb = N * dc_blk_size(C, HW);
        float *x = randv(n, 1.0f), *xb = dc_xmalloc((size_t)nb * 4), *back = dc_xmalloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) x[i] += 1000.0f;
        dc_blk_from_nchw(xb, x, N, C, HW);
        dc_blk_to_nchw(back, xb, N, C, HW);
        CHECK(memcmp(back, x, (size_t)n * 4) == 0);
        int pad_ok = 1;
        for (int i = 0; i < N; i++)
            for (int c = C; c < (C + 15) / 16 * 16; c++)
                for (int p = 0; p < HW; p++)
                    pad_ok &= xb[(((size_t)i * ((C + 15) / 16) + c / 16) * HW + p) * 16 + c % 16] == 0.0f;
        CHECK(pad_ok);
        double *s1 = dc_xcalloc((size_t)C, 8), *q1 = dc_xcalloc((size_t)C, 8), *s2 = dc_xcalloc((size_t)C, 8),
               *q2 = dc_xcalloc((size_t)C, 8);
        float *mean = dc_xmalloc((size_t)C * 4), *rstd = dc_xmalloc((size_t)C * 4);
        dc_bn_sums(s1, x, N, C, HW);
        for (int c = 0; c < C; c++) mean[c] = (float)(s1[c] / ((double)N * HW));
        dc_bn_centered_sumsq(q1, x, mean, N, C, HW);
        dc_bn_moments_blk(s2, q2, xb, N, C, HW);
        double es = 0, eq = 0;
        for (int c = 0; c < C; c++) {
            double dm = s2[c] / ((double)N * HW) - mean[c];
            es = fmax(es, fabs(s2[c] - s1[c]) / fabs(s1[c]));
            eq = fmax(eq, fabs(q2[c] + (double)N * HW * dm * dm - q1[c]) / q1[c]);
            rstd[c] = (float)(1.0 / sqrt(q1[c] / ((double)N * HW) + 1e-5));
        }
        CHECK_MSG(es < 1e-12 && eq < 1e-9, "shape %zu: moments differ by %.3g / %.3g", k, es, eq);
        /* BN backward with the ReLU fused equals ReLU backward then BN's */
        float *g = randv(n, 1.0f), *gb = dc_xmalloc((size_t)nb * 4), *r = randv(n, 1.0f), *rb = dc_xmalloc((size_t)nb * 4);
        float *gamma = randv(C, 1.0f), *dgr = dc_xcalloc((size_t)n, 4), *d1 = dc_xcalloc((size_t)n, 4),
              *d2 = dc_xcalloc((size_t)nb, 4), *d2n = dc_xmalloc((size_t)n * 4);
        float *dg1 = dc_xcalloc((size_t)C, 4), *db1 = dc_xcalloc((size_t)C, 4), *dg2 = dc_xcalloc((size_t)C, 4),
              *db2 = dc_xcalloc((size_t)C, 4);
        dc_blk_from_nchw(gb, g, N, C, HW);
        dc_blk_from_nchw(rb, r, N, C, HW);
        dc_relu_backward(dgr, g, r, n);
        dc_bn_backward_sums(s1, q1, dgr, x, mean, rstd, N, C, HW);
        dc_bn_backward_apply(d1, dg1, db1, dgr, x, gamma, mean, rstd, s1, q1, N, C, HW, (int64_t)N * HW);
        dc_bn_backward_sums_blk(s2, q2, gb, xb, mean, rstd, rb, N, C, HW);
        dc_bn_backward_apply_blk(d2, dg2, db2, gb, xb, gamma, mean, rstd, rb, s2, q2, N, C, HW, (int64_t)N * HW);
        dc_blk_to_nchw(d2n, d2, N, C, HW);
        double ed = 0, scale = 0;
        for (int64_t i = 0; i < n; i++) {
            ed = fmax(ed, fabs(d2n[i] - d1[i]));
            scale = fmax(scale, fabs(d1[i]));
        }
        for (int c = 0; c < C; c++) {
            ed = fmax(ed, fabs(dg2[c] - dg1[c]));
            ed = fmax(ed, fabs(db2[c] - db1[c]));
        }
        CHECK_MSG(ed < 1e-4 * scale, "shape %zu: BN backward differs by %.3g (scale %.3g)", k, ed, scale);
        /* max-pool 2x2/2 (odd extents drop the last row/column) */
        int OH = (H - 2) / 2 + 1, OW = (W - 2) / 2 + 1;
        int64_t no = (int64_t)N * C * OH * OW, nob = N * dc_blk_size(C, (int64_t)OH * OW);
        float *y1 = dc_xmalloc((size_t)no * 4), *y2 = dc_xmalloc((size_t)nob * 4), *y2n = dc_xmalloc((size_t)no * 4);
        int32_t *a1 = dc_xmalloc((size_t)no * 4), *a2 = dc_xmalloc((size_t)nob * 4);
        dc_maxpool_forward(y1, a1, x, N * C, H, W, 2, 2);
        dc_maxpool_forward_blk(y2, a2, xb, N, C, H, W, 2, 2);
        dc_blk_to_nchw(y2n, y2, N, C, OH * OW);
        CHECK(memcmp(y1, y2n, (size_t)no * 4) == 0);
        float *go = randv(nob, 1.0f), *gon = dc_xmalloc((size_t)no * 4), *p1 = dc_xcalloc((size_t)n, 4),
              *p2 = dc_xmalloc((size_t)nb * 4), *p2n = dc_xmalloc((size_t)n * 4);
        dc_blk_to_nchw(gon, go, N, C, OH * OW);
        dc_blk_from_nchw(go, gon, N, C, OH * OW); /* zero padding lanes */
        dc_maxpool_backward(p1, gon, a1, N * C, H, W, OH, OW);
        for (int64_t i = 0; i < nb; i++) p2[i] = 7.0f; /* overwritten */
        dc_maxpool_backward_blk(p2, go, a2, N, C, H, W, OH, OW);
        dc_blk_to_nchw(p2n, p2, N, C, HW);
        CHECK(memcmp(p1, p2n, (size_t)n * 4) == 0);
        float *all[] = {x, xb, back, mean, rstd, g, gb, r, rb, gamma, dgr, d1, d2, d2n, dg1, db1, dg2, db2,
                        y1, y2, y2n, go, gon, p1, p2, p2n};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dc_free(all[i]);
        dc_free(a1);
        dc_free(a2);
        dc_free(s1);
        dc_free(q1);
        dc_free(s2);
        dc_free(q2);
    }
}

int main(void)
{
    dc_rng_init(&rng, 2024, DC_RNG_STREAM_TEST, 0, 0);
    test_conv();
    test_batchnorm();
    test_blocked();
    test_simple_layers();
    test_dropout();
    test_xent();
    return TEST_SUMMARY();
}
