/* test_json.c — JSON read/write through cJSON: round trip, atomic writes,
 * JSON Lines appends, errors with file, line and column. */
#include "dc/io.h"
#include "test.h"

static void test_roundtrip(void)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "lr", 0.05);
    cJSON_AddNumberToObject(j, "k", 10000);
    cJSON_AddStringToObject(j, "arch", "vgg-s32");
    cJSON_AddBoolToObject(j, "sobel", 1);
    const char *p = test_path("config.json");
    CHECK(dc_json_write(p, j) == DC_OK);
    cJSON *r;
    CHECK(dc_json_read(p, &r) == DC_OK);
    double lr = 0, k = 0;
    const char *arch = NULL;
    CHECK(dc_json_get_number(r, "lr", p, &lr) == DC_OK && lr == 0.05);
    CHECK(dc_json_get_number(r, "k", p, &k) == DC_OK && k == 10000);
    CHECK(dc_json_get_string(r, "arch", p, &arch) == DC_OK && strcmp(arch, "vgg-s32") == 0);
    CHECK(dc_json_get_number(r, "arch", p, &lr) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "'arch' is not a number");
    CHECK(dc_json_get_string(r, "missing", p, &arch) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "missing key 'missing'");
    CHECK(cJSON_Compare(j, r, 1));
    cJSON_Delete(r);

    /* JSON Lines: each append is one parseable line. */
    const char *l = test_path("stats.jsonl");
    for (int i = 0; i < 3; i++) {
        cJSON_SetNumberValue(cJSON_GetObjectItem(j, "k"), i);
        CHECK(dc_json_append_line(l, j) == DC_OK);
    }
    char *text;
    size_t len;
    CHECK(dc_read_file(l, 1 << 20, &text, &len) == DC_OK);
    int lines = 0;
    char *save = text;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        CHECK(nl != NULL);
        if (!nl) break;
        cJSON *x;
        CHECK(dc_json_parse(line, (size_t)(nl - line), l, &x) == DC_OK);
        double kk = -1;
        dc_json_get_number(x, "k", l, &kk);
        CHECK_EQ_INT((int)kk, lines);
        cJSON_Delete(x);
        lines++;
        line = nl + 1;
    }
    CHECK_EQ_INT(lines, 3);
    dc_free(save);
    CHECK(dc_json_append_line(test_path("no/dir/x.jsonl"), j) != DC_OK);
    cJSON_Delete(j);
}

static void test_errors(void)
{
    const char *p = test_path("bad.json");
    test_write_bytes(p, "{\n  \"a\": 1,\n  \"b\": nope\n}\n", 27);
    cJSON *j;
    CHECK(dc_json_read(p, &j) != DC_OK && j == NULL);
    CHECK_STR_CONTAINS(dc_last_error(), p);
    CHECK_STR_CONTAINS(dc_last_error(), "line 3, column 8");
    test_write_bytes(p, "{\"a\": [1, 2", 11);
    CHECK(dc_json_read(p, &j) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "invalid JSON");
    test_write_bytes(p, "{} {}", 5);
    CHECK(dc_json_read(p, &j) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "unexpected text after");
    test_write_bytes(p, "", 0);
    CHECK(dc_json_read(p, &j) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "empty file");
    test_write_bytes(p, "\x00\x01\x02garbage", 10);
    CHECK(dc_json_read(p, &j) != DC_OK);
    CHECK(dc_json_read(test_path("absent.json"), &j) != DC_OK);
    CHECK_STR_CONTAINS(dc_last_error(), "cannot open");
    /* A directory is not a file. */
    const char *dir = getenv("DC_TEST_TMP");
    if (dir) {
        CHECK(dc_json_read(dir, &j) != DC_OK);
        CHECK_STR_CONTAINS(dc_last_error(), "not a regular file");
    }
    /* Writing to a path that cannot be created keeps the old file. */
    test_write_bytes(p, "{\"keep\": true}", 14);
    cJSON *o = cJSON_CreateObject();
    CHECK(dc_json_write(test_path("missing-dir/x.json"), o) != DC_OK);
    cJSON_Delete(o);
    CHECK_EQ_INT(test_file_size(p), 14);
}

int main(void)
{
    test_roundtrip();
    test_errors();
    return TEST_SUMMARY();
}
