/* encode.c — images out: 8-bit PNG into memory (libpng), for thumbnails
 * embedded in the run report. Includes: dc/data.h. */
#include "dc/data.h"

#include <png.h>
#include <setjmp.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int failed;
} mem_out;

static void mem_write(png_structp png, png_bytep data, png_size_t len)
{
    mem_out *m = png_get_io_ptr(png);
    if (m->failed) return;
    if (m->n + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->n + len) cap *= 2;
        m->p = dc_xrealloc(m->p, cap); /* thumbnails: kilobytes */
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, len);
    m->n += len;
}

static void mem_flush(png_structp png) { (void)png; }

static void encode_fail(png_structp png, png_const_charp msg)
{
    dc_set_error(DC_STATUS_INTERNAL, "PNG encoder: %s", msg);
    png_longjmp(png, 1);
}

dc_status dc_png_encode(const uint8_t *pix, int h, int w, int c, uint8_t **out, size_t *len)
{
    DC_ASSERT(pix && out && len && h > 0 && w > 0 && (c == 1 || c == 3));
    *out = NULL;
    *len = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, encode_fail, NULL);
    if (!png) return dc_set_error(DC_STATUS_NOMEM, "PNG encoder: out of memory");
    png_infop info = png_create_info_struct(png);
    volatile mem_out m = {0};
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        dc_free(m.p);
        return info ? DC_STATUS_INTERNAL : dc_set_error(DC_STATUS_NOMEM, "PNG encoder: out of memory");
    }
    png_set_write_fn(png, (void *)&m, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(pix + (size_t)y * w * c));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (m.failed) {
        dc_free(m.p);
        return dc_set_error(DC_STATUS_NOMEM, "PNG encoder: out of memory");
    }
    *out = m.p;
    *len = m.n;
    return DC_OK;
}
