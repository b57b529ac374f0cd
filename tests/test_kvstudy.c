/* The saliency and reconstruction studies (src/eval/kvstudy.h) on the real
 * stories260K model: they run, their JSON is well formed, errors fall with
 * the width, recalls are fractions, and runs are reproducible. SKIP without
 * the assets. */
#include <stdint.h>
#include <unistd.h>

#include "eval/kvstudy.h"
#include "tt.h"
#include "util/file.h"
#include "util/json.h"
#include "zipcache.h"

static zc_model *model;
static const char *model_path, *text_path;

static void load(void) {
    model_path = tt_asset("models/stories260K/stories260K.gguf");
    text_path = tt_asset("data/tinystories/validation_head.txt");
    if (!model_path || !text_path) TT_SKIP("stories260K or tinystories text not in $ZIPCACHE_ASSETS");
    if (!model && zc_model_load(model_path, &model) != ZC_OK) {
        TT_CHECK(0, "load: %s", zc_last_error());
        TT_SKIP("model did not load");
    }
}

/* Run a study into a temporary JSON file and parse it. */
typedef int (*study_fn)(const zc_model *, const char *, const zc_eval_opts *, const zc_eval_study_opts *, FILE *,
                        const char *);

static int run_study(study_fn fn, char **json, size_t *len, zc_json_doc **doc, const zc_json **root) {
    char path[] = "/tmp/zc_kvstudy_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return ZC_ERR_IO;
    close(fd);
    zc_eval_opts o;
    zc_eval_opts_default(&o);
    o.progress = false;
    o.n_threads = 1;
    zc_eval_study_opts p = {text_path, 96, 2, 2};
    FILE *sink = fopen("/dev/null", "w");
    int rc = fn(model, model_path, &o, &p, sink, path);
    fclose(sink);
    if (rc == ZC_OK) rc = zc_read_file(path, 1 << 20, json, len);
    unlink(path);
    if (rc == ZC_OK) rc = zc_json_parse(*json, *len, "study json", doc, root);
    return rc;
}

static double num(const zc_json *row, const char *key) {
    double v = NAN;
    zc_json_num(zc_json_get(row, key), &v);
    return v;
}

static void test_recon(void) {
    load();
    char *json;
    size_t len;
    zc_json_doc *doc;
    const zc_json *root;
    TT_CHECK(run_study(zc_eval_recon_report, &json, &len, &doc, &root) == ZC_OK, "recon: %s", zc_last_error());
    const zc_json *rows = zc_json_get(root, "rows");
    TT_CHECK(rows && rows->type == ZC_JSON_ARRAY && rows->len > 30, "rows");
    /* channelwise keys at layer scope: 2 > 3 > 4 bits in error; q8_0 tiny */
    double prev = INFINITY, q8 = NAN;
    for (size_t i = 0; rows && i < rows->len; i++) {
        const zc_json *r = &rows->items[i];
        const char *f = zc_json_str(zc_json_get(r, "format")), *scope = zc_json_str(zc_json_get(r, "scope"));
        if (!strcmp(f, "channel") && !strcmp(scope, "layer")) {
            double e = num(r, "k_rel_mse");
            TT_CHECK(e < prev && e > 0, "channel K error %g after %g", e, prev);
            prev = e;
        }
        if (!strcmp(f, "q8_0")) q8 = num(r, "v_rel_mse");
        double bpe = num(r, "bits_per_element");
        TT_CHECK(bpe >= num(r, "bits") && bpe < num(r, "bits") + 8, "%s bits/elem %g", f, bpe);
    }
    TT_CHECK(q8 < 1e-3, "q8_0 V error %g", q8);
    /* attention output error with K and V quantized together falls with the width */
    const zc_json *att = zc_json_get(root, "attention");
    TT_CHECK(att && att->type == ZC_JSON_ARRAY && att->len >= 3, "attention rows");
    prev = INFINITY;
    for (size_t i = 0; att && i < 3; i++) { /* the first pair at 2, 3, 4 bits */
        double e = num(&att->items[i], "rel_error");
        TT_CHECK(e > 0 && e < prev, "attention error %g after %g", e, prev);
        prev = e;
    }
    zc_json_free(doc);
    free(json);
}

static void test_saliency_reproducible(void) {
    load();
    char *a, *b;
    size_t la, lb;
    zc_json_doc *da, *db;
    const zc_json *ra, *rb;
    TT_CHECK(run_study(zc_eval_saliency_report, &a, &la, &da, &ra) == ZC_OK, "saliency: %s", zc_last_error());
    TT_CHECK(run_study(zc_eval_saliency_report, &b, &lb, &db, &rb) == ZC_OK, "saliency again: %s", zc_last_error());
    TT_CHECK(la == lb && memcmp(a, b, la) == 0, "two runs differ");
    const zc_json *rows = zc_json_get(ra, "rows");
    TT_CHECK(rows && rows->type == ZC_JSON_ARRAY && rows->len >= 5, "rows");
    for (size_t i = 0; rows && i < rows->len; i++) {
        const zc_json *rec = zc_json_get(&rows->items[i], "recall");
        for (size_t k = 0; rec && k < rec->len; k++) {
            double v = NAN;
            zc_json_num(&rec->items[k], &v);
            TT_CHECK(v > 0 && v <= 1, "recall %g", v);
        }
    }
    zc_json_free(da);
    zc_json_free(db);
    free(a);
    free(b);
}

int main(void) {
    TT_RUN(test_recon);
    TT_RUN(test_saliency_reproducible);
    zc_model_free(model);
    return tt_finish();
}
