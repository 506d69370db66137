/* report.c — RUN/report.html: one self-contained page about a training run
 * (no scripts, no network: inline SVG charts and PNG thumbnails as data
 * URIs). Sections: training curves per epoch and per clustering, cluster
 * sizes of the latest clustering, a cluster browser (members nearest each
 * centroid, majority label and purity), evaluations beside the random
 * baseline, the configuration.
 * Includes: dc/eval.h, dc/data.h, dc/io.h. */
#define _POSIX_C_SOURCE 200809L /* getline */
#include "dc/data.h"
#include "dc/eval.h"
#include "dc/io.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* A growing string                                                         */
/* ------------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_grow(sbuf *b, size_t more)
{
    if (b->n + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->n + more + 1) cap *= 2;
    b->p = dc_xrealloc(b->p, cap);
    b->cap = cap;
}

static void sb_printf(sbuf *b, const char *fmt, ...) DC_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    DC_ASSERT(need >= 0);
    sb_grow(b, (size_t)need);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

/* Text as HTML (element content and attribute values alike). */
static void sb_html(sbuf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '&': sb_printf(b, "&amp;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        default: sb_grow(b, 1); b->p[b->n++] = *s;
        }
    }
    if (b->p) b->p[b->n] = 0;
}

static void sb_base64(sbuf *b, const uint8_t *d, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sb_grow(b, (n + 2) / 3 * 4);
    char *o = b->p + b->n;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = t[v >> 18];
        *o++ = t[(v >> 12) & 63];
        *o++ = t[(v >> 6) & 63];
        *o++ = t[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = t[v >> 18];
        *o++ = t[(v >> 12) & 63];
        *o++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->n = (size_t)(o - b->p);
    b->p[b->n] = 0;
}

/* ------------------------------------------------------------------------ */
/* Charts (inline SVG)                                                      */
/* ------------------------------------------------------------------------ */

enum { CW = 440, CH = 240, ML = 52, MR = 12, MT = 42, MB = 36 };
static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

typedef struct {
    const char *name;
    const double *y; /* NAN: no value */
} series;

/* A "nice" step for about 5 ticks over [lo, hi]. */
static double tick_step(double lo, double hi)
{
    double span = hi - lo > 0 ? hi - lo : 1, raw = span / 5, mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* A chart's frame and title; closed by "</svg></figure>". */
static void svg_open(sbuf *b, const char *title)
{
    sb_printf(b, "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" role=\"img\"><title>",
              CW, CH, CW, CH);
    sb_html(b, title);
    sb_printf(b, "</title><text x=\"%d\" y=\"16\" class=\"t\">", ML);
    sb_html(b, title);
    sb_printf(b, "</text>");
}

static void svg_lines(sbuf *b, const char *title, const char *xlabel, const double *x, int n, const series *s,
                      int ns)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    int any = 0;
    for (int i = 0; i < n; i++)
        for (int q = 0; q < ns; q++)
            if (isfinite(s[q].y[i])) {
                any = 1;
                xlo = fmin(xlo, x[i]);
                xhi = fmax(xhi, x[i]);
                ylo = fmin(ylo, s[q].y[i]);
                yhi = fmax(yhi, s[q].y[i]);
            }
    svg_open(b, title);
    if (!any) {
        sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"na\">no values yet</text></svg></figure>\n", ML, CH / 2);
        return;
    }
    if (xhi == xlo) xhi = xlo + 1;
    if (yhi == ylo) {
        yhi += fabs(yhi) * 0.05 + 0.05;
        ylo -= fabs(ylo) * 0.05 + 0.05;
    }
    double ys = tick_step(ylo, yhi);
    ylo = floor(ylo / ys) * ys;
    yhi = ceil(yhi / ys) * ys;
    double pw = CW - ML - MR, ph = CH - MT - MB;
#define PX(v) (ML + ((v)-xlo) / (xhi - xlo) * pw)
#define PY(v) (MT + (1 - ((v)-ylo) / (yhi - ylo)) * ph)
    for (double v = ylo; v <= yhi + ys * 1e-6; v += ys)
        sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"g\"/><text x=\"%d\" y=\"%.1f\" "
                     "class=\"yl\">%.4g</text>",
                  ML, CW - MR, PY(v), PY(v), ML - 4, PY(v) + 4, fabs(v) < ys * 1e-6 ? 0.0 : v);
    double xs = tick_step(xlo, xhi);
    if (xs < 1) xs = 1;
    for (double v = ceil(xlo / xs) * xs; v <= xhi + 1e-9; v += xs)
        sb_printf(b, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">%g</text>", PX(v), CH - MB + 16, v);
    sb_printf(b, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">", ML + pw / 2, CH - 4);
    sb_html(b, xlabel);
    sb_printf(b, "</text>");
    int lx = 14; /* legend: one row under the title */
    for (int q = 0; q < ns; q++) {
        const char *col = colors[q % 6];
        sb_printf(b, "<polyline class=\"s\" fill=\"none\" stroke=\"%s\" points=\"", col);
        for (int i = 0; i < n; i++)
            if (isfinite(s[q].y[i])) sb_printf(b, "%.1f,%.1f ", PX(x[i]), PY(s[q].y[i]));
        sb_printf(b, "\"/>");
        for (int i = 0; i < n; i++)
            if (isfinite(s[q].y[i]))
                sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", PX(x[i]), PY(s[q].y[i]), col);
        sb_printf(b, "<rect x=\"%d\" y=\"25\" width=\"10\" height=\"3\" fill=\"%s\"/><text x=\"%d\" y=\"30\" "
                     "class=\"lg\">", lx, col, lx + 13);
        sb_html(b, s[q].name);
        sb_printf(b, "</text>");
        lx += 13 + 6 * (int)strlen(s[q].name) + 14;
    }
#undef PX
#undef PY
    sb_printf(b, "</svg></figure>\n");
}

/* Bars with labels under them; heights on a log scale when `logy`. */
static void svg_bars(sbuf *b, const char *title, const char *xlabel, char (*labels)[24], const double *v, int n,
                     int logy)
{
    double hi = 0;
    for (int i = 0; i < n; i++) hi = fmax(hi, v[i]);
    svg_open(b, title);
    double pw = CW - ML - MR, ph = CH - MT - MB, top = logy ? log10(hi + 1) : hi;
    if (top <= 0) top = 1;
    double bw = pw / (n > 0 ? n : 1);
    for (int i = 0; i < n; i++) {
        double h = (logy ? log10(v[i] + 1) : v[i]) / top * ph;
        double x0 = ML + i * bw;
        sb_printf(b, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>", x0 + 1,
                  MT + ph - h, bw - 2, h);
        if (v[i] > 0) sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"bv\">%g</text>", x0 + bw / 2, MT + ph - h - 3, v[i]);
        sb_printf(b, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">%s</text>", x0 + bw / 2, CH - MB + 14, labels[i]);
    }
    sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"g\"/>", ML, CW - MR, MT + ph, MT + ph);
    sb_printf(b, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">", ML + pw / 2, CH - 4);
    sb_html(b, xlabel);
    sb_printf(b, "</text></svg></figure>\n");
}

/* ------------------------------------------------------------------------ */
/* The run's files                                                          */
/* ------------------------------------------------------------------------ */

/* Lines of a JSON-lines file (missing file: none). */
static cJSON *read_jsonl(const char *path)
{
    cJSON *arr = cJSON_CreateArray();
    FILE *f = fopen(path, "r");
    if (!f) return arr;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        cJSON *j = cJSON_Parse(line);
        if (j) cJSON_AddItemToArray(arr, j);
    }
    free(line); /* from getline */
    fclose(f);
    return arr;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int is_type(const cJSON *o, const char *t)
{
    const char *s = str(o, "type");
    return s && strcmp(s, t) == 0;
}

/* ------------------------------------------------------------------------ */
/* Sections                                                                 */
/* ------------------------------------------------------------------------ */

/* The numbers under `keys` of every stats row of type `type`, one column a
 * key, into *cols (nkeys × rows, allocated here; a key "labels.nmi" reads
 * "nmi" inside the row's object "labels"). Returns the number of rows. */
static int stat_columns(const cJSON *stats, const char *type, const char *const *keys, int nkeys, double **cols)
{
    int n = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, stats) n += is_type(o, type);
    size_t stride = (size_t)(n ? n : 1);
    double *c = dc_xmalloc(stride * (size_t)nkeys * sizeof *c);
    int i = 0;
    cJSON_ArrayForEach(o, stats) {
        if (!is_type(o, type)) continue;
        for (int j = 0; j < nkeys; j++) {
            const char *dot = strchr(keys[j], '.');
            if (!dot) {
                c[(size_t)j * stride + i] = num(o, keys[j]);
                continue;
            }
            char outer[32];
            snprintf(outer, sizeof outer, "%.*s", (int)(dot - keys[j]), keys[j]);
            c[(size_t)j * stride + i] = num(cJSON_GetObjectItemCaseSensitive(o, outer), dot + 1);
        }
        i++;
    }
    *cols = c;
    return n;
}

static void section_curves(sbuf *b, const cJSON *stats)
{
    static const char *const ekeys[] = {"epoch",    "loss",     "loss_super",   "loss_sub", "prec",
                                        "prec_super", "prec_sub", "images_per_s"};
    static const char *const ckeys[] = {"epoch", "nmi_prev", "labels.nmi", "labels.ari", "labels.acc", "empty_splits"};
    double *ex, *cx;
    int ne = stat_columns(stats, "epoch", ekeys, 8, &ex);
    int nc = stat_columns(stats, "clustering", ckeys, 6, &cx);
    double *E[8], *C[6]; /* the columns, in the order of the keys */
    for (int j = 0; j < 8; j++) E[j] = ex + (size_t)j * (size_t)(ne ? ne : 1);
    for (int j = 0; j < 6; j++) C[j] = cx + (size_t)j * (size_t)(nc ? nc : 1);
    sb_printf(b, "<section id=\"curves\"><h2>Training</h2>\n");
    series s1[] = {{"loss", E[1]}, {"super-class", E[2]}, {"sub-class", E[3]}};
    svg_lines(b, "loss per epoch", "epoch", ex, ne, s1, 3);
    series s2[] = {{"both heads", E[4]}, {"super-class", E[5]}, {"sub-class", E[6]}};
    svg_lines(b, "precision (top-1 on the pseudo-labels)", "epoch", ex, ne, s2, 3);
    series s3[] = {{"NMI vs previous", C[1]}, {"NMI", C[2]}, {"ARI", C[3]}, {"ACC", C[4]}};
    svg_lines(b, "clusterings (NMI, ARI, ACC against the labels)", "epoch", cx, nc, s3, 4);
    series s4[] = {{"images/s", E[7]}};
    svg_lines(b, "training speed", "epoch", ex, ne, s4, 1);
    series s5[] = {{"empty clusters split", C[5]}};
    svg_lines(b, "empty-cluster splits per clustering", "epoch", cx, nc, s5, 1);
    sb_printf(b, "<p class=\"note\">From stats.jsonl: epochs %d, clusterings %d. Labels, where shown, are never "
                 "used for training.</p></section>\n",
              ne, nc);
    dc_free(ex);
    dc_free(cx);
}

typedef struct {
    int32_t *assign; /* (n, 2) */
    int64_t n;
    int64_t *nearest; /* (k, T) or NULL */
    int64_t T;
    int m, k_sub, epoch;
} clustering;

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* sizes[c], c = super·k_sub + sub */
static int64_t *cluster_sizes(const clustering *cl)
{
    int64_t *sz = dc_xcalloc((size_t)cl->m * cl->k_sub, sizeof *sz);
    for (int64_t i = 0; i < cl->n; i++) sz[(int64_t)cl->assign[2 * i] * cl->k_sub + cl->assign[2 * i + 1]]++;
    return sz;
}

static void section_sizes(sbuf *b, const clustering *cl)
{
    int k = cl->m * cl->k_sub;
    int64_t *sz = cluster_sizes(cl);
    /* bins: empty, then [2^i, 2^(i+1)) */
    double v[40] = {0};
    char lab[40][24];
    int nb = 1, empty = 0;
    int64_t mx = 0;
    for (int c = 0; c < k; c++) mx = sz[c] > mx ? sz[c] : mx;
    while (((int64_t)1 << (nb - 1)) <= mx && nb < 39) nb++;
    snprintf(lab[0], 24, "0");
    for (int i = 1; i < nb; i++) {
        int64_t lo = (int64_t)1 << (i - 1);
        if (lo >= 1000000) snprintf(lab[i], 24, "%gM", (double)lo / 1e6);
        else if (lo >= 1000) snprintf(lab[i], 24, "%gk", (double)lo / 1e3);
        else snprintf(lab[i], 24, "%lld", (long long)lo);
    }
    for (int c = 0; c < k; c++) {
        if (sz[c] == 0) {
            v[0]++;
            empty++;
            continue;
        }
        int i = 1;
        while (i < nb - 1 && ((int64_t)1 << i) <= sz[c]) i++;
        v[i]++;
    }
    sb_printf(b, "<section id=\"sizes\"><h2>Cluster sizes (clustering of epoch %d)</h2>\n", cl->epoch);
    svg_bars(b, "clusters per size bin (log scale)", "images in the cluster (bins from 2^i)", lab, v, nb, 1);
    qsort(sz, (size_t)k, sizeof *sz, cmp_desc);
    sb_printf(b, "<p class=\"note\">%d clusters (%d super-clusters × %d): largest %lld, median %lld, smallest %lld; "
                 "%d empty.</p></section>\n",
              k, cl->m, cl->k_sub, (long long)sz[0], (long long)sz[k / 2], (long long)sz[k - 1], empty);
    dc_free(sz);
}

/* One image as a PNG data URI, the longer side at most `side` (nearest
 * neighbour: thumbnails). */
static void thumb(sbuf *b, const dc_dataset *d, int64_t i, dc_image_buf *buf, int side, uint8_t *scratch)
{
    dc_image im;
    if (dc_dataset_get(d, i, buf, &im) != DC_OK) {
        sb_printf(b, "<span class=\"bad\" title=\"image %lld could not be read\">?</span>", (long long)i);
        return;
    }
    int big = im.h > im.w ? im.h : im.w;
    int h = im.h, w = im.w;
    const uint8_t *pix = im.data;
    if (big > side) {
        h = (int)((int64_t)im.h * side / big);
        w = (int)((int64_t)im.w * side / big);
        if (h < 1) h = 1;
        if (w < 1) w = 1;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int sy = (int)((int64_t)y * im.h / h), sx = (int)((int64_t)x * im.w / w);
                memcpy(scratch + ((size_t)y * w + x) * im.c, im.data + ((size_t)sy * im.w + sx) * im.c, (size_t)im.c);
            }
        pix = scratch;
    }
    uint8_t *png;
    size_t len;
    if (dc_png_encode(pix, h, w, im.c, &png, &len) != DC_OK) {
        sb_printf(b, "<span class=\"bad\">?</span>");
        return;
    }
    sb_printf(b, "<img alt=\"image %lld\" title=\"image %lld\" width=\"%d\" height=\"%d\" src=\"data:image/png;base64,",
              (long long)i, (long long)i, w < 48 ? 48 : w, w < 48 ? 48 * h / w : h);
    sb_base64(b, png, len);
    sb_printf(b, "\"/>");
    dc_free(png);
}

static void section_browser(sbuf *b, const clustering *cl, const dc_dataset *d, const dc_report_opts *o)
{
    int64_t *sz = cluster_sizes(cl);
    const int32_t *labels = d ? dc_dataset_labels(d) : NULL;
    int ncls = labels ? dc_dataset_nclasses(d) : 0;
    int64_t *votes = ncls > 0 ? dc_xcalloc((size_t)ncls, sizeof *votes) : NULL;
    int64_t *members = dc_xmalloc((size_t)(cl->n ? cl->n : 1) * sizeof *members);
    uint8_t *scratch = dc_xmalloc((size_t)o->thumb_side * o->thumb_side * 3);
    dc_image_buf buf = {0};
    int *order = dc_xmalloc((size_t)cl->k_sub * sizeof *order);
    sb_printf(b, "<section id=\"browser\"><h2>Cluster browser</h2>\n<p class=\"note\">");
    if (!d) sb_printf(b, "The images could not be opened (see the configuration), so no thumbnails. ");
    sb_printf(b, "For each super-cluster (at most %d shown), %d of its sub-clusters from the largest to the "
                 "smallest; in each, the members nearest the centroid first%s.</p>\n",
              o->max_super, o->subs_per_super,
              labels ? "; the majority label and the share of members that carry it (purity)" : "");
    int shown = cl->m < o->max_super ? cl->m : o->max_super;
    for (int si = 0; si < shown; si++) {
        int s = (int)((int64_t)si * cl->m / shown);
        int64_t ssz = 0;
        for (int q = 0; q < cl->k_sub; q++) ssz += sz[(int64_t)s * cl->k_sub + q];
        sb_printf(b, "<div class=\"super\"><h3>super-cluster %d <small>%lld images, %d sub-clusters</small></h3>\n", s,
                  (long long)ssz, cl->k_sub);
        for (int q = 0; q < cl->k_sub; q++) order[q] = q;
        /* sub-clusters by size, largest first (stable on index) */
        for (int a = 1; a < cl->k_sub; a++) {
            int v = order[a], p = a;
            while (p > 0 && sz[(int64_t)s * cl->k_sub + order[p - 1]] < sz[(int64_t)s * cl->k_sub + v]) {
                order[p] = order[p - 1];
                p--;
            }
            order[p] = v;
        }
        int nsub = cl->k_sub < o->subs_per_super ? cl->k_sub : o->subs_per_super;
        for (int qi = 0; qi < nsub; qi++) {
            int q = order[(int64_t)qi * cl->k_sub / nsub];
            int64_t c = (int64_t)s * cl->k_sub + q, cnt = 0;
            for (int64_t i = 0; i < cl->n; i++)
                if (cl->assign[2 * i] == s && cl->assign[2 * i + 1] == q) members[cnt++] = i;
            sb_printf(b, "<div class=\"sub\"><div class=\"cap\">sub-cluster %d · %lld images", q, (long long)cnt);
            if (labels && cnt > 0) {
                memset(votes, 0, (size_t)ncls * sizeof *votes);
                for (int64_t t = 0; t < cnt; t++)
                    if (labels[members[t]] >= 0 && labels[members[t]] < ncls) votes[labels[members[t]]]++;
                int best = 0;
                for (int y = 1; y < ncls; y++)
                    if (votes[y] > votes[best]) best = y;
                sb_printf(b, " · label %d, purity %.2f", best, (double)votes[best] / (double)cnt);
            }
            sb_printf(b, "</div><div class=\"grid\">");
            int T = o->thumbs_per_sub;
            for (int t = 0, done = 0; d && done < T && t < (cl->nearest ? cl->T : cnt); t++) {
                int64_t i = cl->nearest ? cl->nearest[c * cl->T + t] : members[t];
                if (i < 0 || i >= cl->n) break;
                thumb(b, d, i, &buf, o->thumb_side, scratch);
                done++;
            }
            if (cnt == 0) sb_printf(b, "<span class=\"na\">empty</span>");
            sb_printf(b, "</div></div>\n");
        }
        sb_printf(b, "</div>\n");
    }
    sb_printf(b, "</section>\n");
    dc_image_buf_free(&buf);
    dc_free(order);
    dc_free(scratch);
    dc_free(members);
    dc_free(votes);
    dc_free(sz);
}

/* eval.jsonl: a row per (protocol, layer, metric) of the latest evaluation
 * of the run: its value, the latest random:* baseline's and the raw-pixel
 * baseline's. */
/* Whether an entry after e evaluates the same weights with the same
 * protocol on the same layer (only the latest is shown). */
static int superseded(const cJSON *e, const char *w, const char *proto, const char *layer)
{
    for (const cJSON *later = e->next; later; later = later->next) {
        const char *lw = str(later, "weights"), *lp = str(later, "protocol");
        if (!lw || !lp || strcmp(lw, w) != 0 || strcmp(lp, proto) != 0) continue;
        const cJSON *lr;
        cJSON_ArrayForEach(lr, cJSON_GetObjectItemCaseSensitive(later, "results")) {
            const char *ll = str(lr, "layer");
            if (ll && layer && strcmp(ll, layer) == 0) return 1;
        }
    }
    return 0;
}

/* The latest value of `metric` for protocol proto from a baseline: a
 * random network on the same layer (random = 1; its weights to *which) or
 * the raw pixels (random = 0, any row). NAN when there is none. */
static double baseline(const cJSON *evals, int random, const char *proto, const char *layer, const char *metric,
                       const char **which)
{
    double v = NAN;
    const cJSON *f;
    cJSON_ArrayForEach(f, evals) {
        const char *fw = str(f, "weights"), *fp = str(f, "protocol");
        if (!fw || !fp || strcmp(fp, proto) != 0) continue;
        if (random ? strncmp(fw, "random:", 7) != 0 : strcmp(fw, "pixels") != 0) continue;
        const cJSON *fr;
        cJSON_ArrayForEach(fr, cJSON_GetObjectItemCaseSensitive(f, "results")) {
            const char *fl = str(fr, "layer");
            if (random && !(fl && layer && strcmp(fl, layer) == 0)) continue;
            if (!isfinite(num(fr, metric))) continue;
            v = num(fr, metric);
            if (which) *which = fw;
        }
    }
    return v;
}

static void sb_value(sbuf *b, double v)
{
    if (isfinite(v)) sb_printf(b, "%.4f", v);
    else sb_printf(b, "–");
}

static void section_evals(sbuf *b, const cJSON *evals)
{
    sb_printf(b, "<section id=\"evals\"><h2>Evaluations</h2>\n");
    if (cJSON_GetArraySize(evals) == 0) {
        sb_printf(b, "<p class=\"note\">None yet: <code>deepercluster eval clusters|knn|linear --weights RUN ...</code> "
                     "appends its results to RUN/eval.jsonl (and <code>--weights random:PRESET|pixels --record RUN</code> "
                     "a baseline's).</p>"
                     "</section>\n");
        return;
    }
    static const char *metrics[] = {"nmi", "ari", "acc", "top1", "top5", "map"};
    sb_printf(b, "<table class=\"ev\"><tr><th>protocol</th><th>layer</th><th>metric</th><th>this run</th>"
                 "<th>random network</th><th>raw pixels</th><th>weights</th></tr>\n");
    const cJSON *e;
    cJSON_ArrayForEach(e, evals) {
        const char *w = str(e, "weights"), *proto = str(e, "protocol");
        if (!w || !proto || strncmp(w, "random:", 7) == 0 || strcmp(w, "pixels") == 0) continue;
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(e, "results"), *row;
        cJSON_ArrayForEach(row, rows) {
            const char *layer = str(row, "layer");
            if (superseded(e, w, proto, layer)) continue;
            for (int mi = 0; mi < 6; mi++) {
                double v = num(row, metrics[mi]);
                if (!isfinite(v)) continue;
                const char *rw = NULL;
                double rb = baseline(evals, 1, proto, layer, metrics[mi], &rw);
                double px = baseline(evals, 0, proto, layer, metrics[mi], NULL);
                sb_printf(b, "<tr><td>");
                sb_html(b, proto);
                sb_printf(b, "</td><td>");
                sb_html(b, layer ? layer : "");
                sb_printf(b, "</td><td>%s</td><td class=\"v\">%.4f</td><td class=\"v\">", metrics[mi], v);
                sb_value(b, rb);
                sb_printf(b, "</td><td class=\"v\">");
                sb_value(b, px);
                sb_printf(b, "</td><td>");
                sb_html(b, w);
                if (rw) {
                    sb_printf(b, " vs ");
                    sb_html(b, rw);
                }
                sb_printf(b, "</td></tr>\n");
            }
        }
    }
    sb_printf(b, "</table></section>\n");
}

/* A JSON value as text (strings without their quotes). */
static void sb_json(sbuf *b, const cJSON *e)
{
    if (!e || cJSON_IsNull(e)) sb_printf(b, "unset");
    else if (cJSON_IsString(e)) sb_html(b, e->valuestring);
    else {
        char *t = cJSON_PrintUnformatted(e);
        sb_html(b, t);
        cJSON_free(t);
    }
}

/* The options in force, and those a resume changed (stats.jsonl "resume"
 * lines: config.json then holds the new values). */
static void section_config(sbuf *b, const cJSON *cfg, const cJSON *stats)
{
    sb_printf(b, "<section id=\"config\"><h2>Configuration</h2>\n<table class=\"cfg\">\n");
    const cJSON *e, *o;
    cJSON_ArrayForEach(e, cfg) {
        sb_printf(b, "<tr><th>");
        sb_html(b, e->string);
        sb_printf(b, "</th><td>");
        sb_json(b, e);
        sb_printf(b, "</td></tr>\n");
    }
    sb_printf(b, "</table>\n");
    int n = 0;
    cJSON_ArrayForEach(o, stats) {
        if (!is_type(o, "resume")) continue;
        sb_printf(b, "%s<li>resumed at epoch %d, step %d: ", n++ ? "" : "<p>Changed on resume:</p>\n<ul class=\"resumes\">\n",
                  (int)num(o, "epoch"), (int)num(o, "step"));
        int first = 1;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "changed")) {
            sb_printf(b, "%s", first ? "" : ", ");
            first = 0;
            sb_html(b, e->string);
            sb_printf(b, " ");
            sb_json(b, cJSON_GetObjectItemCaseSensitive(e, "was"));
            sb_printf(b, " → ");
            sb_json(b, cJSON_GetObjectItemCaseSensitive(e, "now"));
        }
        sb_printf(b, "</li>\n");
    }
    sb_printf(b, "%s</section>\n", n ? "</ul>\n" : "");
}

static const char *css =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1400px;color:#222;padding:0 16px}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}"
    "h3{font-size:15px;margin:12px 0 4px}small{color:#777;font-weight:normal}"
    ".chart{display:inline-block;margin:4px 8px 4px 0}.chart svg{background:#fafafa;border:1px solid #eee}"
    ".t{font-weight:600;font-size:13px}.g{stroke:#e4e4e4}.yl{font-size:10px;text-anchor:end;fill:#555}"
    ".xl{font-size:10px;text-anchor:middle;fill:#555}.lg{font-size:11px}.s{stroke-width:1.6}"
    ".bar{fill:#1f77b4}.bv{font-size:9px;text-anchor:middle;fill:#333}.na{fill:#999;color:#999}"
    ".note{color:#555}.super{border:1px solid #e6e6e6;border-radius:6px;padding:6px 10px;margin:8px 0}"
    ".sub{display:inline-block;vertical-align:top;margin:4px 10px 6px 0}.cap{font-size:12px;color:#444}"
    ".grid{display:grid;grid-template-columns:repeat(4,auto);gap:2px;justify-content:start}"
    ".grid img{image-rendering:pixelated;border:1px solid #ddd;background:#000}"
    "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}"
    ".v{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#c00}";

void dc_report_opts_default(dc_report_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_super = 32;
    o->subs_per_super = 6;
    o->thumbs_per_sub = 8;
    o->thumb_side = 64;
}

/* The latest clustering of the run (its assignments, and the images
 * nearest each centroid when recorded) into cl, asg and near; 1 if the
 * assignments are there and consistent with k and m. */
static int load_clustering(clustering *cl, dc_array *asg, dc_array *near, const char *run, const cJSON *stats,
                           int k, int m)
{
    memset(cl, 0, sizeof *cl);
    cl->epoch = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, stats) if (is_type(e, "clustering")) cl->epoch = (int)num(e, "epoch");
    if (cl->epoch < 0 || k <= 0 || m <= 0 || k % m != 0) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/assignments/epoch-%03d.npy", run, cl->epoch);
    if (dc_npy_read(path, asg) != DC_OK || asg->dtype != DC_DTYPE_I32 || asg->ndim != 2 || asg->shape[1] != 2)
        return 0;
    cl->assign = asg->data;
    cl->n = asg->shape[0];
    cl->m = m;
    cl->k_sub = k / m;
    for (int64_t i = 0; i < cl->n; i++)
        if (cl->assign[2 * i] < 0 || cl->assign[2 * i] >= m || cl->assign[2 * i + 1] < 0 ||
            cl->assign[2 * i + 1] >= cl->k_sub)
            return 0;
    snprintf(path, sizeof path, "%s/assignments/epoch-%03d-nearest.npy", run, cl->epoch);
    if (dc_npy_read(path, near) == DC_OK && near->dtype == DC_DTYPE_I64 && near->ndim == 2 && near->shape[0] == k) {
        cl->nearest = near->data;
        cl->T = near->shape[1];
    }
    return 1;
}

/* The page's head, title, summary line and section links. */
static void page_header(sbuf *b, const char *run, const cJSON *cfg, int k, int m, const char *data)
{
    sb_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width\"><title>deepercluster run ");
    sb_html(b, run);
    sb_printf(b, "</title><style>%s</style></head><body>\n<h1>deepercluster run <code>", css);
    sb_html(b, run);
    sb_printf(b, "</code></h1>\n<p class=\"note\">");
    const char *method = str(cfg, "method"), *arch = str(cfg, "arch");
    sb_html(b, method ? method : "?");
    sb_printf(b, ", ");
    sb_html(b, arch ? arch : "?");
    sb_printf(b, ", %g images, k = %d in %d super-clusters; ", num(cfg, "images"), k, m);
    sb_html(b, data ? data : "?");
    sb_printf(b, "</p>\n<nav><a href=\"#curves\">training</a> · <a href=\"#sizes\">cluster sizes</a> · "
                 "<a href=\"#browser\">cluster browser</a> · <a href=\"#evals\">evaluations</a> · "
                 "<a href=\"#config\">configuration</a></nav>\n");
}

dc_status dc_report_write(const char *run, const char *out, const dc_report_opts *opts)
{
    dc_report_opts o;
    if (opts) o = *opts;
    else dc_report_opts_default(&o);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", run);
    cJSON *cfg;
    dc_status s = dc_json_read(path, &cfg);
    if (s) return dc_set_error(s, "%s is not a training run directory: %s", run, dc_last_error());
    snprintf(path, sizeof path, "%s/stats.jsonl", run);
    cJSON *stats = read_jsonl(path);
    snprintf(path, sizeof path, "%s/eval.jsonl", run);
    cJSON *evals = read_jsonl(path);
    clustering cl;
    dc_array asg = {0}, near = {0};
    int k = (int)num(cfg, "k"), m = (int)num(cfg, "super_clusters");
    int have_asg = load_clustering(&cl, &asg, &near, run, stats, k, m);
    /* the images, for thumbnails and labels */
    dc_dataset *d = NULL;
    const char *data = str(cfg, "data");
    if (have_asg && data && dc_dataset_open(data, str(cfg, "labels"), &d) != DC_OK) {
        dc_log_warn("report: %s (no thumbnails)", dc_last_error());
        d = NULL;
    }
    if (d && dc_dataset_size(d) < cl.n) {
        dc_log_warn("report: %s holds fewer images than the run's assignments (no thumbnails)", data);
        dc_dataset_close(d);
        d = NULL;
    }

    sbuf b = {0};
    page_header(&b, run, cfg, k, m, data);
    section_curves(&b, stats);
    if (have_asg) {
        section_sizes(&b, &cl);
        section_browser(&b, &cl, d, &o);
    } else {
        sb_printf(&b, "<section id=\"sizes\"><h2>Cluster sizes</h2><p class=\"note\">No clustering yet.</p></section>\n"
                      "<section id=\"browser\"><h2>Cluster browser</h2><p class=\"note\">No clustering yet.</p>"
                      "</section>\n");
    }
    section_evals(&b, evals);
    section_config(&b, cfg, stats);
    sb_printf(&b, "<footer class=\"note\">written by deepercluster %s</footer>\n</body></html>\n", DC_VERSION_STRING);

    dc_afile a;
    s = dc_afile_open(&a, out);
    if (s == DC_OK) {
        dc_afile_write(&a, b.p, b.n);
        s = dc_afile_commit(&a);
    }
    dc_free(b.p);
    dc_dataset_close(d);
    dc_array_free(&asg);
    dc_array_free(&near);
    cJSON_Delete(cfg);
    cJSON_Delete(stats);
    cJSON_Delete(evals);
    return s;
}
