/* json.c — JSON documents through cJSON: parsing with errors that give the
 * file, line and column; atomic pretty-printed writes; JSON Lines appends.
 * Includes: dc/io.h, cJSON, libc, POSIX. */
#define _POSIX_C_SOURCE 200809L
#include "dc/io.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define JSON_MAX_FILE (256u << 20)

dc_status dc_json_parse(const char *text, size_t len, const char *name,
                        cJSON **out)
{
    *out = NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) {
        const char *at = end ? end : text;
        if (at < text || at > text + len) at = text + len;
        int line = 1, col = 1;
        for (const char *p = text; p < at; p++) {
            if (*p == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return dc_set_error(DC_STATUS_FORMAT, "%s: invalid JSON at line %d, column %d%s",
                            name, line, col, at == text + len ? " (unexpected end)" : "");
    }
    /* Anything but whitespace after the value is an error too. */
    for (const char *p = end; p && p < text + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p != '\0') {
            cJSON_Delete(j);
            return dc_set_error(DC_STATUS_FORMAT, "%s: unexpected text after the JSON value", name);
        }
    *out = j;
    return DC_OK;
}

dc_status dc_json_read(const char *path, cJSON **out)
{
    *out = NULL;
    char *text;
    size_t len;
    dc_status s = dc_read_file(path, JSON_MAX_FILE, &text, &len);
    if (s) return s;
    if (len == 0) {
        dc_free(text);
        return dc_set_error(DC_STATUS_FORMAT, "%s: empty file", path);
    }
    s = dc_json_parse(text, len, path, out);
    dc_free(text);
    return s;
}

dc_status dc_json_write(const char *path, const cJSON *j)
{
    char *text = cJSON_Print(j);
    if (!text) return dc_set_error(DC_STATUS_NOMEM, "%s: cannot format JSON", path);
    dc_afile a;
    dc_status s = dc_afile_open(&a, path);
    if (s == DC_OK) {
        dc_afile_write(&a, text, strlen(text));
        dc_afile_write(&a, "\n", 1);
        s = dc_afile_commit(&a);
    }
    cJSON_free(text);
    return s;
}

dc_status dc_json_append_line(const char *path, const cJSON *j)
{
    char *text = cJSON_PrintUnformatted(j);
    if (!text) return dc_set_error(DC_STATUS_NOMEM, "%s: cannot format JSON", path);
    FILE *f = fopen(path, "ab");
    dc_status s = DC_OK;
    if (!f) {
        s = dc_set_error(DC_STATUS_IO, "%s: cannot open for append: %s", path, strerror(errno));
    } else {
        size_t n = strlen(text);
        int bad = fwrite(text, 1, n, f) != n || fputc('\n', f) == EOF ||
                  fflush(f) != 0 || fsync(fileno(f)) != 0;
        if (fclose(f) != 0) bad = 1;
        if (bad) s = dc_set_error(DC_STATUS_IO, "%s: write failed: %s", path, strerror(errno));
    }
    cJSON_free(text);
    return s;
}

dc_status dc_json_get_number(const cJSON *obj, const char *key,
                             const char *name, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return dc_set_error(DC_STATUS_FORMAT, "%s: missing key '%s'", name, key);
    if (!cJSON_IsNumber(v))
        return dc_set_error(DC_STATUS_FORMAT, "%s: '%s' is not a number", name, key);
    *out = v->valuedouble;
    return DC_OK;
}

dc_status dc_json_get_string(const cJSON *obj, const char *key,
                             const char *name, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return dc_set_error(DC_STATUS_FORMAT, "%s: missing key '%s'", name, key);
    if (!cJSON_IsString(v))
        return dc_set_error(DC_STATUS_FORMAT, "%s: '%s' is not a string", name, key);
    *out = v->valuestring;
    return DC_OK;
}
