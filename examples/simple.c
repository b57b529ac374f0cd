/* simple: load a model, generate with the zipcache KV cache, print the
 * cache's memory use. Built against the installed library only:
 *
 *     cc simple.c $(pkg-config --cflags --libs zipcache) -o simple
 *     ./simple MODEL.gguf "Once upon a time" 64
 *
 * Everything it uses is declared in <zipcache.h>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zipcache.h>

static int fail(const char *what) {
    fprintf(stderr, "simple: %s: %s\n", what, zc_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL PROMPT [N_TOKENS]\n", argv[0]);
        return 2;
    }
    int n_predict = argc > 3 ? atoi(argv[3]) : 64;
    if (strcmp(zc_version(), "") == 0 || zc_version_number() != ZC_VERSION_NUMBER) {
        fprintf(stderr, "simple: header %d, library %s\n", ZC_VERSION_NUMBER, zc_version());
        return 1;
    }

    zc_model_params mp;
    zc_model_params_default(&mp);
    zc_model *model;
    if (zc_model_load_params(argv[1], &mp, &model) != ZC_OK) return fail("load");
    const zc_model_info *info = zc_model_get_info(model);

    zc_context_params cp;
    zc_context_params_default(&cp);
    cp.n_ctx = 256;
    cp.n_threads = 1;
    cp.kv_policy = "zipcache";
    cp.kv_options = "--kv-stream-gap 16 --kv-hi-bits 4 lo-bits=2"; /* compress the decode window every 16 tokens */
    zc_context *ctx;
    if (zc_context_create(model, &cp, &ctx) != ZC_OK) {
        zc_model_free(model);
        return fail("context");
    }

    int32_t *ids;
    int n_ids, rc = 1;
    float *logits = malloc((size_t)info->n_vocab * sizeof *logits);
    zc_sampler_params sp;
    zc_sampler_params_default(&sp);
    sp.temp = 0; /* greedy: the same text every run */
    zc_sampler *smp = NULL;
    if (!logits || zc_sampler_create(&sp, info->n_vocab, &smp) != ZC_OK) goto done;
    if (zc_model_tokenize(model, argv[2], strlen(argv[2]), info->add_bos, 0, &ids, &n_ids) != ZC_OK) goto done;
    int drc = zc_decode(ctx, ids, n_ids, ZC_LOGITS_LAST, logits);
    free(ids);
    if (drc != ZC_OK) goto done;

    zc_detok dt;
    zc_detok_init(&dt);
    printf("%s", argv[2]);
    int n_gen = 0;
    for (; n_gen < n_predict; n_gen++) {
        int32_t tok = zc_sampler_sample(smp, logits);
        if (zc_model_is_eog(model, tok)) break;
        char piece[64];
        size_t len;
        if (zc_detokenize(model, &dt, tok, piece, sizeof piece, &len) != ZC_OK) goto done;
        fwrite(piece, 1, len, stdout);
        if (zc_decode(ctx, &tok, 1, ZC_LOGITS_LAST, logits) != ZC_OK) {
            if (zc_last_error_code() == ZC_ERR_LIMIT) break; /* context full */
            goto done;
        }
    }
    printf("\n");

    char desc[256];
    zc_kv_usage u;
    zc_context_kv_describe(ctx, desc, sizeof desc);
    zc_context_kv_usage(ctx, &u);
    printf("generated %d tokens\nkv policy: %s\n", n_gen, desc);
    printf("kv cache: %lld tokens, %zu bytes (codes %zu, params %zu, window %zu, index %zu), "
           "%.2f bits/element, %.2fx vs fp16, %lld compressions\n",
           (long long)u.n_tokens, u.total, u.codes, u.params, u.window, u.index, zc_kv_bits_per_element(&u),
           zc_kv_ratio(&u), (long long)u.n_compressions);
    rc = 0;
done:
    if (rc) fail("generate");
    free(logits);
    zc_sampler_free(smp);
    zc_context_free(ctx);
    zc_model_free(model);
    return rc;
}
