/* test_metrics.c — NMI, ARI, Hungarian accuracy and purity against values
 * computed by scikit-learn and scipy (tests/fixtures/cluster/metrics.json),
 * plus hand-checked cases. */
#include "dc/cluster.h"
#include "dc/io.h"
#include "test.h"

#include <math.h>

static int32_t *to_i32(const cJSON *arr, int64_t *n)
{
    *n = cJSON_GetArraySize(arr);
    int32_t *v = dc_xmalloc((size_t)*n * sizeof *v);
    int64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) v[i++] = (int32_t)e->valuedouble;
    return v;
}

int main(void)
{
    const char *root = getenv("DC_TEST_ROOT");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/cluster/metrics.json", root ? root : ".");
    cJSON *j;
    CHECK(dc_json_read(path, &j) == DC_OK);
    int ncases = 0;
    const cJSON *c;
    const cJSON *cases = j ? cJSON_GetObjectItem(j, "cases") : NULL;
    cJSON_ArrayForEach(c, cases)
    {
        int64_t n, n2;
        int32_t *pred = to_i32(cJSON_GetObjectItem(c, "pred"), &n);
        int32_t *truth = to_i32(cJSON_GetObjectItem(c, "truth"), &n2);
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        double nmi, ari, acc, pur;
        dc_json_get_number(c, "nmi", path, &nmi);
        dc_json_get_number(c, "ari", path, &ari);
        dc_json_get_number(c, "acc", path, &acc);
        dc_json_get_number(c, "purity", path, &pur);
        dc_cluster_scores s;
        CHECK(n == n2 && dc_cluster_scores_compute(&s, pred, truth, n) == DC_OK);
        CHECK_MSG(fabs(s.nmi - nmi) < 1e-6, "%s: nmi %.9f vs %.9f", name, s.nmi, nmi);
        CHECK_MSG(fabs(s.ari - ari) < 1e-6, "%s: ari %.9f vs %.9f", name, s.ari, ari);
        CHECK_MSG(fabs(s.acc - acc) < 1e-6, "%s: acc %.9f vs %.9f", name, s.acc, acc);
        CHECK_MSG(fabs(s.purity - pur) < 1e-6, "%s: purity %.9f vs %.9f", name, s.purity, pur);
        double nmi2;
        CHECK(dc_nmi(&nmi2, truth, pred, n) == DC_OK && fabs(nmi2 - s.nmi) < 1e-12);
        dc_free(pred);
        dc_free(truth);
        ncases++;
    }
    CHECK_EQ_INT(ncases, 7);
    cJSON_Delete(j);

    /* Hand-checked: a perfect match up to renaming. */
    int32_t a[6] = {0, 0, 1, 1, 2, 2}, b[6] = {5, 5, 9, 9, 7, 7};
    dc_cluster_scores s;
    CHECK(dc_cluster_scores_compute(&s, a, b, 6) == DC_OK);
    CHECK(fabs(s.nmi - 1) < 1e-12 && fabs(s.ari - 1) < 1e-12 && s.acc == 1 && s.purity == 1);
    /* Hungarian: the best matching of a 3x3 matrix is 3 + 5 + 4 = 12. */
    double w[9] = {1, 3, 0, 5, 1, 1, 0, 4, 1};
    /* rows: 0->1 (3), 1->0 (5), 2->? remaining col 2 (1): total 9; or
     * 0->1(3) 1->0(5) 2->2(1)=9 vs 0->0(1)+1->2(1)+2->1(4)=6: 9 is best. */
    int col[3];
    CHECK_CLOSE(dc_hungarian_max(w, 3, 3, col), 9.0, 1e-12);
    CHECK(col[0] == 1 && col[1] == 0 && col[2] == 2);
    double rect[6] = {1, 9, 2, 8, 7, 3}; /* 2x3 and its 3x2 transpose */
    CHECK_CLOSE(dc_hungarian_max(rect, 2, 3, col), 9.0 + 8.0, 1e-12);
    double rectt[6] = {1, 8, 9, 7, 2, 3};
    int col3[3];
    CHECK_CLOSE(dc_hungarian_max(rectt, 3, 2, col3), 17.0, 1e-12);
    CHECK(col3[0] == 1 && col3[1] == 0 && col3[2] == -1);
    /* Errors. */
    int32_t neg[3] = {0, -1, 2};
    CHECK(dc_cluster_scores_compute(&s, neg, a, 3) == DC_STATUS_ARG);
    CHECK_STR_CONTAINS(dc_last_error(), "negative label -1 at index 1");
    CHECK(dc_cluster_scores_compute(&s, a, b, 0) == DC_STATUS_ARG);
    return TEST_SUMMARY();
}
