/* cmd_metrics.c — `deepercluster metrics`: NMI, ARI, Hungarian accuracy and
 * purity of an assignment against labels, printed and optionally as JSON.
 * A two-column assignment (super, sub) is scored per super-cluster and per
 * (super, sub) pair. Includes: cli, dc/cluster.h, dc/io.h. */
#include "cli/cli.h"
#include "dc/cluster.h"
#include "dc/io.h"

#include <stdio.h>
#include <string.h>

static void add_scores(cJSON *o, const dc_cluster_scores *s)
{
    cJSON_AddNumberToObject(o, "nmi", s->nmi);
    cJSON_AddNumberToObject(o, "ari", s->ari);
    if (s->acc >= 0) cJSON_AddNumberToObject(o, "acc", s->acc);
    else cJSON_AddNullToObject(o, "acc");
    cJSON_AddNumberToObject(o, "purity", s->purity);
}

static void print_scores(const char *what, const dc_cluster_scores *s)
{
    char acc[16] = "-";
    if (s->acc >= 0) snprintf(acc, sizeof acc, "%.4f", s->acc);
    printf("%-10s %8.4f %8.4f %8s %8.4f\n", what, s->nmi, s->ari, acc, s->purity);
}

/* A two-level assignment (n, 2): the super-clusters scored, then the
 * (super, sub) pairs as one cluster each, whose scores are also the
 * contract keys of j (they describe the finest level). */
static dc_status score_pairs(cJSON *j, const int32_t *pred, const int32_t *lab, int64_t n, const char *pred_path)
{
    int32_t *col = dc_malloc((size_t)n * sizeof *col, "labels");
    if (!col) return DC_STATUS_NOMEM;
    int32_t maxsub = 0;
    for (int64_t i = 0; i < n; i++) {
        col[i] = pred[2 * i];
        if (pred[2 * i + 1] > maxsub) maxsub = pred[2 * i + 1];
    }
    dc_cluster_scores s;
    dc_status st = dc_cluster_scores_compute(&s, col, lab, n);
    if (st == DC_OK) {
        print_scores("super", &s);
        add_scores(cJSON_AddObjectToObject(j, "super"), &s);
        for (int64_t i = 0; i < n && st == DC_OK; i++) {
            int64_t id = (int64_t)pred[2 * i] * ((int64_t)maxsub + 1) + pred[2 * i + 1];
            if (id > INT32_MAX) st = dc_set_error(DC_STATUS_FORMAT, "%s: too many (super, sub) pairs", pred_path);
            else col[i] = (int32_t)id;
        }
    }
    if (st == DC_OK) st = dc_cluster_scores_compute(&s, col, lab, n);
    if (st == DC_OK) {
        print_scores("sub", &s);
        add_scores(j, &s);
    }
    dc_free(col);
    return st;
}

int dc_cmd_metrics(int argc, char **argv)
{
    const char *pred_path = NULL, *lab_path = NULL, *json = NULL;
    const dc_opt opts[] = {
        {"pred", NULL, DC_OPT_STRING, &pred_path, 0, 0, NULL, 1, "A.npy",
         "assignment: integers (N,) or (N, 2) = (super, sub)"},
        {"labels", NULL, DC_OPT_STRING, &lab_path, 0, 0, NULL, 1, "L.npy", "true labels: integers (N,)"},
        {"json", NULL, DC_OPT_STRING, &json, 0, 0, NULL, 0, "F.json", "also write the scores as JSON"},
    };
    dc_args a;
    int code;
    if (!dc_cli_parse(&a, "metrics", "--pred A.npy --labels L.npy [--json F.json]",
                      "Scores a cluster assignment against true labels: normalized mutual information\n"
                      "(arithmetic), adjusted Rand index, accuracy of the best one-to-one matching\n"
                      "(Hungarian; '-' beyond 4096 clusters) and purity.",
                      opts, 3, 0, argc, argv, &code))
        return code;
    int32_t *pred = NULL, *lab = NULL;
    int64_t n, nl;
    int cp, cl, rc = DC_EXIT_FAIL;
    cJSON *j = NULL;
    if (dc_cli_load_labels(pred_path, &pred, &n, &cp)) goto done;
    if (dc_cli_load_labels(lab_path, &lab, &nl, &cl)) goto done;
    if (cl != 1) {
        dc_set_error(DC_STATUS_FORMAT, "%s: labels must be a vector (N,), got %d columns", lab_path, cl);
        goto done;
    }
    if (n != nl) {
        dc_set_error(DC_STATUS_FORMAT, "%s has %lld rows but %s has %lld", pred_path, (long long)n, lab_path,
                     (long long)nl);
        goto done;
    }
    if (cp > 2) {
        dc_set_error(DC_STATUS_FORMAT, "%s: expected 1 or 2 columns, got %d", pred_path, cp);
        goto done;
    }
    j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "n", (double)n);
    printf("%-10s %8s %8s %8s %8s\n", "", "NMI", "ARI", "ACC", "purity");
    dc_cluster_scores s;
    if (cp == 1) {
        if (dc_cluster_scores_compute(&s, pred, lab, n)) goto done;
        print_scores("clusters", &s);
        add_scores(j, &s);
    } else if (score_pairs(j, pred, lab, n, pred_path)) {
        goto done;
    }
    if (json && dc_json_write(json, j)) goto done;
    rc = DC_EXIT_OK;
done:
    if (rc != DC_EXIT_OK) dc_cli_fail();
    cJSON_Delete(j);
    dc_free(pred);
    dc_free(lab);
    return rc;
}
