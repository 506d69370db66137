/* transform.c — the original's image transforms (src/data/loader.py:
 * RandomResizedCrop(224), RandomHorizontalFlip, Rotate, ToTensor,
 * Normalize; Resize(256) + CenterCrop(224) for clustering), reproducing
 * torchvision 0.14 on PIL images: the crop parameters as
 * RandomResizedCrop.get_params, and the resampling as PIL's bilinear
 * Image.resize — a separable triangle filter whose support widens by the
 * scale factor when shrinking (so it low-pass filters), horizontal pass
 * then vertical, the taps clamped to the cropped region.
 * Includes: dc/data.h, libm. */
#include "dc/data.h"

#include <math.h>
#include <string.h>

void dc_norm_constants(int c, float mean[3], float std[3])
{
    static const float m3[3] = {0.485f, 0.456f, 0.406f}, s3[3] = {0.229f, 0.224f, 0.225f};
    if (c == 3) {
        memcpy(mean, m3, sizeof m3);
        memcpy(std, s3, sizeof s3);
    } else {
        mean[0] = mean[1] = mean[2] = 0.449f;
        std[0] = std[1] = std[2] = 0.226f;
    }
}

void dc_rrc_params(dc_rng *r, int h, int w, int *top, int *left, int *ch, int *cw)
{
    dc_rrc_params_scale(r, h, w, 0.08, top, left, ch, cw);
}

void dc_rrc_params_scale(dc_rng *r, int h, int w, double min_scale, int *top, int *left, int *ch, int *cw)
{
    double area = (double)h * w, lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (min_scale + (1.0 - min_scale) * dc_rng_uniform_double(r));
        double ratio = exp(lr0 + (lr1 - lr0) * dc_rng_uniform_double(r));
        /* Python's round(): half to even, as rint() in the default mode */
        int cw_ = (int)rint(sqrt(target * ratio)), ch_ = (int)rint(sqrt(target / ratio));
        if (cw_ > 0 && cw_ <= w && ch_ > 0 && ch_ <= h) {
            *top = (int)dc_rng_below(r, (uint64_t)(h - ch_ + 1));
            *left = (int)dc_rng_below(r, (uint64_t)(w - cw_ + 1));
            *ch = ch_;
            *cw = cw_;
            return;
        }
    }
    /* centred fallback, the ratio clamped to [3/4, 4/3] */
    double in_ratio = (double)w / h;
    if (in_ratio < 3.0 / 4.0) {
        *cw = w;
        *ch = (int)rint(w / (3.0 / 4.0));
    } else if (in_ratio > 4.0 / 3.0) {
        *ch = h;
        *cw = (int)rint(h * (4.0 / 3.0));
    } else {
        *cw = w;
        *ch = h;
    }
    *top = (h - *ch) / 2;
    *left = (w - *cw) / 2;
}

/* PIL's filter taps for output index o of a resize of `in` samples (the
 * region) to `outsize`: first tap *lo, count *n, normalised weights in k. */
static void taps(int o, int in, int outsize, int *lo, int *n, float *k, int kmax)
{
    double scale = (double)in / outsize, fs = scale > 1 ? scale : 1.0, support = fs;
    double center = (o + 0.5) * scale, ss = 1.0 / fs;
    int xmin = (int)(center - support + 0.5), xmax;
    if (xmin < 0) xmin = 0;
    xmax = (int)(center + support + 0.5);
    if (xmax > in) xmax = in;
    int cnt = xmax - xmin;
    if (cnt > kmax) cnt = kmax;
    double sum = 0, w[512];
    for (int x = 0; x < cnt; x++) {
        double t = fabs((x + xmin - center + 0.5) * ss);
        w[x] = t < 1.0 ? 1.0 - t : 0.0;
        sum += w[x];
    }
    for (int x = 0; x < cnt; x++) k[x] = (float)(sum != 0 ? w[x] / sum : 0.0);
    *lo = xmin;
    *n = cnt;
}

/* Resize of region (top, left, rh, rw) of src to (OH, OW), computing only
 * the output window (oy0, ox0, wh, ww); out is (wh, ww, c) floats in
 * [0, 255]. `rows` holds the horizontally resampled source rows needed. */
static void resample(float *out, const dc_image *src, int top, int left, int rh, int rw, int OH, int OW, int oy0,
                     int ox0, int wh, int ww, float *rows)
{
    int c = src->c;
    float kx[512], ky[512];
    /* rows needed by the window's vertical taps */
    int ylo, yn, yhi;
    taps(oy0, rh, OH, &ylo, &yn, ky, 512);
    int lo2, n2;
    taps(oy0 + wh - 1, rh, OH, &lo2, &n2, ky, 512);
    yhi = lo2 + n2;
    /* horizontal taps, computed once for every row (on the stack when they
     * fit: shrinking by up to ~8x into windows up to 512 wide) */
    enum { TW = 512, TK = 16 };
    int hlo[TW], hn[TW];
    float htab[TW * TK];
    int tabled = ww <= TW;
    for (int x = 0; x < ww && tabled; x++) {
        float k[512];
        taps(ox0 + x, rw, OW, &hlo[x], &hn[x], k, 512);
        if (hn[x] > TK) tabled = 0;
        else memcpy(htab + x * TK, k, (size_t)hn[x] * sizeof(float));
    }
    /* horizontal pass: rows[y - ylo] (ww, c) for y in [ylo, yhi) */
    for (int y = ylo; y < yhi; y++) {
        const uint8_t *s = src->data + ((size_t)(top + y) * src->w + left) * c;
        float *d = rows + (size_t)(y - ylo) * ww * c;
        for (int x = 0; x < ww; x++) {
            int xlo, xn;
            const float *k = kx;
            if (tabled) {
                xlo = hlo[x];
                xn = hn[x];
                k = htab + x * TK;
            } else {
                taps(ox0 + x, rw, OW, &xlo, &xn, kx, 512);
            }
            const uint8_t *sp = s + (size_t)xlo * c;
            if (c == 3) {
                float a0 = 0, a1 = 0, a2 = 0;
                for (int t = 0; t < xn; t++) {
                    a0 += k[t] * sp[3 * t];
                    a1 += k[t] * sp[3 * t + 1];
                    a2 += k[t] * sp[3 * t + 2];
                }
                d[3 * x] = a0;
                d[3 * x + 1] = a1;
                d[3 * x + 2] = a2;
            } else {
                for (int ch = 0; ch < c; ch++) {
                    float acc = 0;
                    for (int t = 0; t < xn; t++) acc += k[t] * sp[t * c + ch];
                    d[x * c + ch] = acc;
                }
            }
        }
    }
    /* vertical pass: whole rows at a time (vectorised over x) */
    for (int y = 0; y < wh; y++) {
        int tlo, tn;
        taps(oy0 + y, rh, OH, &tlo, &tn, ky, 512);
        float *d = out + (size_t)y * ww * c;
        int64_t len = (int64_t)ww * c;
        const float *r0 = rows + (size_t)(tlo - ylo) * ww * c;
        for (int64_t x = 0; x < len; x++) d[x] = ky[0] * r0[x];
        for (int t = 1; t < tn; t++) {
            const float *rt = rows + (size_t)(tlo + t - ylo) * ww * c;
            float kt = ky[t];
            for (int64_t x = 0; x < len; x++) d[x] += kt * rt[x];
        }
    }
}

void dc_resize_region(float *out, int out_h, int out_w, const dc_image *src, int top, int left, int ch, int cw,
                      float *tmp)
{
    resample(out, src, top, left, ch, cw, out_h, out_w, 0, 0, out_h, out_w, tmp);
}

size_t dc_transform_tmp_size(int size, int resize, int max_side, int c)
{
    /* horizontally resampled rows: up to max_side rows of `size` pixels,
     * plus the HWC window, plus a CHW copy for the rotation */
    (void)resize;
    return (size_t)max_side * size * c + 2 * (size_t)size * size * c + 64;
}

void dc_rotate90(float *out, const float *in, int c, int s, int rot)
{
    rot &= 3;
    for (int ch = 0; ch < c; ch++) {
        const float *p = in + (size_t)ch * s * s;
        float *q = out + (size_t)ch * s * s;
        for (int r = 0; r < s; r++)
            for (int col = 0; col < s; col++) {
                float v;
                switch (rot) {
                case 0: v = p[r * s + col]; break;
                case 1: v = p[col * s + (s - 1 - r)]; break;           /* flipud(transpose) */
                case 2: v = p[(s - 1 - r) * s + (s - 1 - col)]; break; /* fliplr(flipud)    */
                default: v = p[(s - 1 - col) * s + r]; break;          /* transpose(flipud) */
                }
                q[r * s + col] = v;
            }
    }
}

/* HWC floats in [0, 255] → normalised CHW, optionally mirrored. */
static void to_chw(float *out, const float *hwc, int c, int s, int flip)
{
    float mean[3], std[3];
    dc_norm_constants(c, mean, std);
    for (int ch = 0; ch < c; ch++) {
        float a = 1.0f / (255.0f * std[ch]), b = mean[ch] / std[ch];
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++) {
                int sx = flip ? s - 1 - x : x;
                /* PIL rounds to 8 bits; so do we, then ToTensor's /255 */
                float v = hwc[((size_t)y * s + sx) * c + ch];
                v = v < 0 ? 0 : v > 255 ? 255 : rintf(v);
                out[((size_t)ch * s + y) * s + x] = v * a - b;
            }
    }
}

void dc_transform_train(float *out, const dc_image *img, int size, int rot, dc_rng *r, float *tmp)
{
    dc_transform_train_scale(out, img, size, rot, r, tmp, 0.08);
}

void dc_transform_train_scale(float *out, const dc_image *img, int size, int rot, dc_rng *r, float *tmp,
                              double min_scale)
{
    int top, left, ch, cw;
    dc_rrc_params_scale(r, img->h, img->w, min_scale, &top, &left, &ch, &cw);
    int flip = dc_rng_uniform(r) < 0.5f;
    float *win = tmp, *rows = tmp + (size_t)size * size * img->c;
    resample(win, img, top, left, ch, cw, size, size, 0, 0, size, size, rows);
    if ((rot & 3) == 0) {
        to_chw(out, win, img->c, size, flip);
    } else {
        float *chw = rows; /* rows are consumed: reuse */
        to_chw(chw, win, img->c, size, flip);
        dc_rotate90(out, chw, img->c, size, rot);
    }
}

void dc_transform_eval(float *out, const dc_image *img, int resize, int size, float *tmp)
{
    dc_transform_eval_crop(out, img, resize, size, 0, tmp);
}

void dc_transform_eval_crop(float *out, const dc_image *img, int resize, int size, int crop, float *tmp)
{
    /* torchvision Resize(int): the shorter side to `resize`, the other
     * scaled and truncated; CenterCrop: offsets rounded half to even;
     * TenCrop's corners: flush with the edges */
    DC_ASSERT(crop >= 0 && crop < 10);
    int oh, ow;
    if (img->w <= img->h) {
        ow = resize;
        oh = (int)((long long)resize * img->h / img->w);
    } else {
        oh = resize;
        ow = (int)((long long)resize * img->w / img->h);
    }
    int oy0 = (int)rint((oh - size) / 2.0), ox0 = (int)rint((ow - size) / 2.0);
    DC_ASSERT(oy0 >= 0 && ox0 >= 0);
    int where = crop % 5;
    if (where > 0) {
        oy0 = where <= 2 ? 0 : oh - size;
        ox0 = where % 2 ? 0 : ow - size;
    }
    float *win = tmp, *rows = tmp + (size_t)size * size * img->c;
    resample(win, img, 0, 0, img->h, img->w, oh, ow, oy0, ox0, size, size, rows);
    to_chw(out, win, img->c, size, crop >= 5);
}
