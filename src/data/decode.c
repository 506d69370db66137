/* decode.c — JPEG (libjpeg-turbo) and PNG (libpng) files to 8-bit RGB, as
 * torchvision's loader does with PIL's Image.open(p).convert("RGB"): grey
 * replicated, palette expanded, alpha dropped (not composited), CMYK/YCCK
 * converted as PIL does (Adobe's inverted CMYK included); 16-bit samples
 * keep their high byte (PIL clips them instead). Large JPEGs can be decoded
 * at 1/2, 1/4 or 1/8 size by the DCT when the caller needs fewer pixels.
 * Both libraries report errors by longjmp; it stays inside this file, and
 * every failure becomes a dc_status naming the file and the reason.
 * Includes: dc/data.h, libjpeg, libpng, libc. */
#define _POSIX_C_SOURCE 200809L
#include "dc/data.h"
#include "dc/io.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>

#define MAX_PIXELS (1u << 28) /* 268 M pixels: refuse decompression bombs */

void dc_image_buf_free(dc_image_buf *b)
{
    if (!b) return;
    dc_free(b->file);
    dc_free(b->pix);
    memset(b, 0, sizeof *b);
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t n = need + need / 4 + 4096;
    uint8_t *q = dc_malloc(n, "image buffer");
    if (!q) return -1;
    dc_free(*p);
    *p = q;
    *cap = n;
    return 0;
}

/* ---- JPEG ---------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr_t;

static void jpeg_fail(j_common_ptr c)
{
    jerr_t *e = (jerr_t *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}

static void jpeg_quiet(j_common_ptr c, int level)
{
    (void)c;
    (void)level; /* warnings (e.g. extraneous bytes) are not failures */
}

static inline uint8_t muldiv255(int a, int b)
{
    int t = a * b + 128;
    return (uint8_t)((t + (t >> 8)) >> 8);
}

static dc_status decode_jpeg(const char *path, const uint8_t *data, size_t len, int min_side, dc_image_buf *b,
                             dc_image *out)
{
    struct jpeg_decompress_struct ci;
    jerr_t je;
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_fail;
    je.pub.emit_message = jpeg_quiet;
    volatile int created = 0;
    if (setjmp(je.jb)) {
        if (created) jpeg_destroy_decompress(&ci);
        return dc_set_error(DC_STATUS_FORMAT, "%s: corrupt JPEG (%s)", path, je.msg);
    }
    jpeg_create_decompress(&ci);
    created = 1;
    jpeg_mem_src(&ci, data, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    if (cmyk) ci.out_color_space = JCS_CMYK;
    else if (ci.num_components == 1) ci.out_color_space = JCS_GRAYSCALE;
    else ci.out_color_space = JCS_RGB;
    ci.scale_num = 1;
    ci.scale_denom = 1;
    if (min_side > 0) {
        unsigned shorter = ci.image_width < ci.image_height ? ci.image_width : ci.image_height;
        while (ci.scale_denom < 8 && shorter / (ci.scale_denom * 2) >= (unsigned)min_side) ci.scale_denom *= 2;
    }
    jpeg_start_decompress(&ci);
    size_t w = ci.output_width, h = ci.output_height, nc = (size_t)ci.output_components;
    if (w == 0 || h == 0 || w * h > MAX_PIXELS) {
        jpeg_destroy_decompress(&ci);
        return dc_set_error(DC_STATUS_FORMAT, "%s: JPEG of %zux%zu pixels refused", path, w, h);
    }
    if (grow(&b->pix, &b->pix_cap, w * h * 3 + w * 4)) {
        jpeg_destroy_decompress(&ci);
        return DC_STATUS_NOMEM;
    }
    uint8_t *row = b->pix + w * h * 3; /* scratch row for grey and CMYK */
    while (ci.output_scanline < h) {
        size_t y = ci.output_scanline;
        uint8_t *dst = b->pix + y * w * 3;
        JSAMPROW rp = nc == 3 ? dst : row;
        jpeg_read_scanlines(&ci, &rp, 1);
        if (nc == 1) {
            for (size_t x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
        } else if (nc == 4) {
            int inverted = ci.saw_Adobe_marker;
            for (size_t x = 0; x < w; x++) {
                int c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
                if (!inverted) {
                    c = 255 - c;
                    m = 255 - m;
                    yy = 255 - yy;
                    k = 255 - k;
                }
                /* PIL: cmyk2rgb on the true ink values, i.e. (255-C)(255-K)/255 */
                dst[3 * x] = muldiv255(c, k);
                dst[3 * x + 1] = muldiv255(m, k);
                dst[3 * x + 2] = muldiv255(yy, k);
            }
        }
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    out->data = b->pix;
    out->h = (int)h;
    out->w = (int)w;
    out->c = 3;
    return DC_OK;
}

/* ---- PNG ----------------------------------------------------------------- */

typedef struct {
    const uint8_t *data;
    size_t len, pos;
    char msg[256];
} png_src;

static void png_read_mem(png_structp p, png_bytep out, png_size_t n)
{
    png_src *s = png_get_io_ptr(p);
    if (n > s->len - s->pos) png_error(p, "unexpected end of file");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

static void png_fail(png_structp p, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void png_quiet(png_structp p, png_const_charp msg)
{
    (void)p;
    (void)msg;
}

static dc_status decode_png(const char *path, const uint8_t *data, size_t len, dc_image_buf *b, dc_image *out)
{
    png_src src = {data, len, 0, ""};
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_quiet);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    if (!p || !info) {
        png_destroy_read_struct(&p, &info, NULL);
        return dc_set_error(DC_STATUS_NOMEM, "%s: cannot start the PNG decoder", path);
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(p))) {
        dc_free((void *)rows);
        png_destroy_read_struct(&p, &info, NULL);
        return dc_set_error(DC_STATUS_FORMAT, "%s: corrupt PNG (%s)", path, src.msg);
    }
    png_set_read_fn(p, &src, png_read_mem);
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    if (w == 0 || h == 0 || (size_t)w * h > MAX_PIXELS) {
        png_destroy_read_struct(&p, &info, NULL);
        return dc_set_error(DC_STATUS_FORMAT, "%s: PNG of %ux%u pixels refused", path, (unsigned)w, (unsigned)h);
    }
    int ct = png_get_color_type(p, info);
    png_set_expand(p);       /* palette → RGB, grey < 8 bits → 8, tRNS → alpha */
    png_set_strip_16(p);     /* 16-bit: the high byte */
    png_set_strip_alpha(p);  /* dropped, as PIL's convert("RGB") */
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    if (png_get_rowbytes(p, info) != (size_t)w * 3) png_error(p, "unexpected row layout");
    if (grow(&b->pix, &b->pix_cap, (size_t)w * h * 3)) {
        png_destroy_read_struct(&p, &info, NULL);
        return DC_STATUS_NOMEM;
    }
    rows = dc_xmalloc((size_t)h * sizeof *rows);
    for (png_uint_32 y = 0; y < h; y++) rows[y] = b->pix + (size_t)y * w * 3;
    png_read_image(p, (png_bytepp)rows);
    png_read_end(p, NULL);
    dc_free((void *)rows);
    png_destroy_read_struct(&p, &info, NULL);
    out->data = b->pix;
    out->h = (int)h;
    out->w = (int)w;
    out->c = 3;
    return DC_OK;
}

dc_status dc_decode_image(const char *path, int min_side, dc_image_buf *b, dc_image *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return dc_set_error(DC_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return dc_set_error(DC_STATUS_IO, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        fclose(f);
        return dc_set_error(DC_STATUS_FORMAT, "%s: empty file", path);
    }
    if (grow(&b->file, &b->file_cap, len)) {
        fclose(f);
        return DC_STATUS_NOMEM;
    }
    size_t got = fread(b->file, 1, len, f);
    fclose(f);
    if (got != len) return dc_set_error(DC_STATUS_IO, "%s: read failed", path);
    return dc_decode_image_mem(path, b->file, len, min_side, b, out);
}

dc_status dc_decode_image_mem(const char *name, const uint8_t *data, size_t len, int min_side, dc_image_buf *b,
                              dc_image *out)
{
    memset(out, 0, sizeof *out);
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return decode_jpeg(name, data, len, min_side, b, out);
    if (len >= 8 && memcmp(data, png_magic, 8) == 0) return decode_png(name, data, len, b, out);
    return dc_set_error(DC_STATUS_FORMAT, "%s: not a JPEG or PNG image", name);
}
