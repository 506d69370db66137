/* test_args.c — the CLI option parser: values, aliases, underscore
 * spellings, flags, positional arguments, and every malformed input giving
 * DC_ARGS_ERROR with a one-line message. */
#include "core/args.h"
#include "test.h"

typedef struct {
    int k, rotnet, verbose;
    int64_t n;
    double lr;
    const char *out, *method;
} vals;

static int parse(vals *v, dc_args *a, int argc, char **argv)
{
    v->k = 10000;
    v->rotnet = 1;
    v->verbose = 0;
    v->n = 5;
    v->lr = 0.1;
    v->out = NULL;
    v->method = "deepercluster";
    const dc_opt opts[] = {
        {"k", NULL, DC_OPT_INT, &v->k, 1, 1e9, NULL, 0, "K", "clusters"},
        {"rotnet", NULL, DC_OPT_INT, &v->rotnet, 0, 1, NULL, 0, "0|1", "rotation"},
        {"epochs", "nepochs", DC_OPT_I64, &v->n, 1, 1e12, NULL, 0, "N", "epochs"},
        {"lr", NULL, DC_OPT_DOUBLE, &v->lr, 0, 10, NULL, 0, "LR", "learning rate"},
        {"out", "dump-path dump_path", DC_OPT_STRING, &v->out, 0, 0, NULL, 1, "DIR", "run directory"},
        {"method", NULL, DC_OPT_CHOICE, &v->method, 0, 0, "deepercluster|deepcluster|rotnet", 0, "M", "method"},
        {"verbose", NULL, DC_OPT_FLAG, &v->verbose, 0, 0, NULL, 0, NULL, "more output"},
        {"super-classes", NULL, DC_OPT_INT, &v->k, 1, 1e6, NULL, 0, "S", "super-classes"},
    };
    return dc_args_parse(a, "deepercluster test", opts, 8, 2, argc, argv);
}

#define ARGV(...) ((char *[]){__VA_ARGS__})
#define NARGS(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define PARSE(...) parse(&v, &a, NARGS(__VA_ARGS__), ARGV(__VA_ARGS__))

static void expect_error(int r, const dc_args *a, const char *msg)
{
    CHECK_EQ_INT(r, DC_ARGS_ERROR);
    CHECK_STR_CONTAINS(a->err, msg);
    CHECK_STR_CONTAINS(a->err, "deepercluster test: ");
    CHECK(strchr(a->err, '\n') == NULL);
}

int main(void)
{
    vals v;
    dc_args a;
    CHECK_EQ_INT(PARSE("--out", "run", "--k", "30", "--lr=0.05", "--nepochs", "7", "--verbose",
                       "--method", "rotnet", "pos1"),
                 DC_ARGS_OK);
    CHECK(v.k == 30 && v.lr == 0.05 && v.n == 7 && v.verbose == 1);
    CHECK(strcmp(v.out, "run") == 0 && strcmp(v.method, "rotnet") == 0);
    CHECK(a.npos == 1 && strcmp(a.pos[0], "pos1") == 0);
    CHECK(a.seen[0] && !a.seen[1] && a.seen[2]);

    /* Original spellings: underscores and explicit aliases. */
    CHECK_EQ_INT(PARSE("--dump_path", "x", "--super_classes", "16"), DC_ARGS_OK);
    CHECK(strcmp(v.out, "x") == 0 && v.k == 16);
    CHECK_EQ_INT(PARSE("--dump-path=y", "--n_epochs", "3"), DC_ARGS_ERROR); /* not an alias */
    CHECK_EQ_INT(PARSE("--out", "o", "--", "--k", "-"), DC_ARGS_OK);
    CHECK(a.npos == 2 && strcmp(a.pos[0], "--k") == 0 && strcmp(a.pos[1], "-") == 0);
    CHECK_EQ_INT(PARSE("--out", "o", "--help"), DC_ARGS_HELP);
    CHECK_EQ_INT(PARSE("-h"), DC_ARGS_HELP);
    CHECK_EQ_INT(PARSE("--out", "o", "--k", "1e3"), DC_ARGS_ERROR);
    CHECK_EQ_INT(PARSE("--out", "o", "--lr", "1e-3"), DC_ARGS_OK);
    CHECK_CLOSE(v.lr, 1e-3, 1e-15);

    expect_error(PARSE("--out", "o", "--k", "abc"), &a, "--k: 'abc' is not an integer");
    expect_error(PARSE("--out", "o", "--k", "-3"), &a, "--k: -3 is out of range (must be at least 1)");
    expect_error(PARSE("--out", "o", "--k", "12x"), &a, "'12x' is not an integer");
    expect_error(PARSE("--out", "o", "--k", ""), &a, "'' is not an integer");
    expect_error(PARSE("--out", "o", "--k", "99999999999999999999"), &a, "too large");
    expect_error(PARSE("--out", "o", "--k", "3000000000"), &a, "too large");
    expect_error(PARSE("--out", "o", "--rotnet", "2"), &a, "--rotnet: 2 is out of range (must be between 0 and 1)");
    expect_error(PARSE("--out", "o", "--lr", "nan"), &a, "--lr: 'nan' is not a finite number");
    expect_error(PARSE("--out", "o", "--lr", "inf"), &a, "not a finite number");
    expect_error(PARSE("--out", "o", "--lr", "1e999"), &a, "not a finite number");
    expect_error(PARSE("--out", "o", "--lr", "fast"), &a, "--lr: 'fast' is not a number");
    expect_error(PARSE("--out", "o", "--lr", "-1"), &a, "out of range");
    expect_error(PARSE("--out", "o", "--k"), &a, "--k needs a value");
    expect_error(PARSE("--out", "o", "--bogus", "1"), &a, "unknown option '--bogus'");
    expect_error(PARSE("--out", "o", "--bogus=1"), &a, "unknown option '--bogus'");
    expect_error(PARSE("--out", "o", "-k", "1"), &a, "unknown option '-k'");
    expect_error(PARSE("--out", "o", "--verbose=1"), &a, "--verbose takes no value");
    expect_error(PARSE("--out", "o", "--method", "kmeans"), &a,
                 "'kmeans' is not one of deepercluster|deepcluster|rotnet");
    expect_error(PARSE("--k", "3"), &a, "missing required option --out");
    expect_error(PARSE("--out", "o", "a", "b", "c"), &a, "unexpected argument 'c'");
    expect_error(PARSE("--out", ""), &a, "--out: empty value");

    /* Usage text lists every option with its default. */
    const char *p = test_path("usage.txt");
    FILE *f = fopen(p, "w");
    PARSE("--out", "o");
    const dc_opt opts[] = {
        {"k", NULL, DC_OPT_INT, &v.k, 1, 1e9, NULL, 0, "K", "number of clusters"},
        {"epochs", "nepochs", DC_OPT_I64, &v.n, 1, 1e12, NULL, 0, "N", "epochs"},
    };
    dc_args_usage(f, "deepercluster x", "[options]", "Does x.", opts, 2);
    fclose(f);
    char buf[2048] = {0};
    f = fopen(p, "r");
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    CHECK(got > 0);
    CHECK_STR_CONTAINS(buf, "usage: deepercluster x [options]");
    CHECK_STR_CONTAINS(buf, "--k K");
    CHECK_STR_CONTAINS(buf, "number of clusters (default 10000)");
    CHECK_STR_CONTAINS(buf, "--nepochs");
    return TEST_SUMMARY();
}
