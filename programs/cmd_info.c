/* zipcache info -m MODEL: metadata, tensor table and totals of a GGUF file
 * or a Hugging Face checkpoint directory (config.json + safetensors). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cmds.h"
#include "model/gguf.h"
#include "model/hfconfig.h"
#include "model/safetensors.h"
#include "quant/ggml_blocks.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"
#include "zipcache.h"

static const char *gguf_type_name(zc_gguf_vtype t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static void print_totals(int64_t params, uint64_t bytes) {
    printf("\ntotals: %" PRId64 " parameters (%.2f M), %" PRIu64 " bytes of tensor data (%.2f MiB)\n", params,
           (double)params / 1e6, bytes, (double)bytes / (1024.0 * 1024.0));
}

static int info_gguf(const char *path) {
    zc_gguf *g;
    if (zc_gguf_open(path, &g) != ZC_OK) return cli_lib_error();
    printf("file: %s\nformat: GGUF v%u, alignment %zu, data section at byte %zu, file size %zu\n", path,
           zc_gguf_version(g), zc_gguf_alignment(g), zc_gguf_data_offset(g), zc_gguf_file_size(g));
    printf("\nmetadata (%d keys):\n", zc_gguf_n_kv(g));
    char value[640];
    for (int i = 0; i < zc_gguf_n_kv(g); i++) {
        char type[32];
        zc_gguf_vtype t = zc_gguf_key_type(g, i);
        if (t == ZC_GGUF_ARRAY) snprintf(type, sizeof type, "[%s]", gguf_type_name(zc_gguf_arr_type(g, i)));
        else snprintf(type, sizeof type, "%s", gguf_type_name(t));
        zc_gguf_format_value(g, i, value, sizeof value);
        printf("  %-44s %-8s %s\n", zc_gguf_key_name(g, i), type, value);
    }
    printf("\ntensors (%d):\n  %-40s %-6s %-28s %12s %12s\n", zc_gguf_n_tensors(g), "name", "type", "shape (ne)",
           "bytes", "offset");
    int64_t params = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < zc_gguf_n_tensors(g); i++) {
        const zc_gguf_tensor *t = zc_gguf_tensor_at(g, i);
        char shape[64];
        int n = snprintf(shape, sizeof shape, "[");
        int64_t elems = 1;
        for (int d = 0; d < t->n_dims; d++) {
            n += snprintf(shape + n, sizeof shape - (size_t)n, d ? ", %" PRId64 : "%" PRId64, t->ne[d]);
            elems *= t->ne[d]; /* the reader checked the product fits */
        }
        snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %-40s %-6s %-28s %12zu %12" PRIu64 "\n", t->name, zc_type_get(t->type)->name, shape, t->nbytes,
               t->offset);
        params += elems;
        bytes += t->nbytes;
    }
    print_totals(params, bytes);
    zc_gguf_close(g);
    return CLI_EXIT_OK;
}

/* One line rendering of a config.json value, arrays/objects abbreviated. */
static void json_value(const zc_json *v, char *buf, size_t cap) {
    switch (v->type) {
    case ZC_JSON_NULL: snprintf(buf, cap, "null"); break;
    case ZC_JSON_BOOL: snprintf(buf, cap, "%s", v->boolean ? "true" : "false"); break;
    case ZC_JSON_NUMBER:
        if (v->is_integer) snprintf(buf, cap, "%" PRId64, v->integer);
        else snprintf(buf, cap, "%.9g", v->number);
        break;
    case ZC_JSON_STRING: snprintf(buf, cap, "\"%.200s\"", v->str); break;
    case ZC_JSON_ARRAY: {
        size_t n = (size_t)snprintf(buf, cap, "[");
        for (size_t i = 0; i < v->len && i < 8 && n < cap; i++) {
            char item[64];
            const zc_json *e = &v->items[i];
            if (e->type == ZC_JSON_ARRAY || e->type == ZC_JSON_OBJECT) snprintf(item, sizeof item, "...");
            else json_value(e, item, sizeof item);
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", item);
        }
        if (n < cap) snprintf(buf + n, cap - n, "%s]", v->len > 8 ? ", ..." : "");
        break;
    }
    case ZC_JSON_OBJECT: {
        size_t n = (size_t)snprintf(buf, cap, "{");
        for (size_t i = 0; i < v->len && n < cap; i++) {
            char item[64];
            json_value(&v->items[i], item, sizeof item);
            n += (size_t)snprintf(buf + n, cap - n, "%s%s: %s", i ? ", " : "", v->keys[i], item);
        }
        if (n < cap) snprintf(buf + n, cap - n, "}");
        break;
    }
    }
}

static const char *json_type_name(zc_json_type t) {
    static const char *names[] = {"null", "bool", "number", "string", "array", "object"};
    return names[t];
}

static int info_hf(const char *dir) {
    zc_hf_source *src;
    if (zc_hf_source_open(dir, &src) != ZC_OK) return cli_lib_error();
    /* The source validated config.json; read it again for the raw key list. */
    char path[4200], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", dir);
    zc_json_doc *doc = NULL;
    const zc_json *root;
    if (zc_read_file(path, 1u << 20, &text, &len) != ZC_OK) {
        zc_hf_source_free(src);
        return cli_lib_error();
    }
    int rc = zc_json_parse(text, len, path, &doc, &root);
    free(text);
    if (rc) {
        zc_hf_source_free(src);
        return cli_lib_error();
    }
    const zc_hf_config *c = &src->config;
    printf("dir: %s\nformat: Hugging Face checkpoint, arch %s (%d layers, hidden %d, %d heads, %d kv heads, head_dim "
           "%d, ffn %d, vocab %d)\n",
           dir, c->arch, c->n_layers, c->n_embd, c->n_heads, c->n_kv_heads, c->head_dim, c->n_ff, c->n_vocab);
    printf("\nconfig.json (%zu keys):\n", root->len);
    char value[640];
    for (size_t i = 0; i < root->len; i++) {
        json_value(&root->items[i], value, sizeof value);
        printf("  %-44s %-8s %s\n", root->keys[i], json_type_name(root->items[i].type), value);
    }
    zc_json_free(doc);
    int n = zc_st_n_tensors(src->st);
    printf("\ntensors (%d):\n  %-48s %-6s %-20s %12s %12s  %s\n", n, "name", "dtype", "shape", "bytes", "offset",
           "file");
    int64_t params = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < n; i++) {
        const zc_st_tensor *t = zc_st_tensor_at(src->st, i);
        char shape[96];
        int k = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < t->n_dims; d++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, d ? ", %" PRId64 : "%" PRId64, t->shape[d]);
        snprintf(shape + k, sizeof shape - (size_t)k, "]");
        const char *base = strrchr(t->file, '/');
        printf("  %-48s %-6s %-20s %12zu %12zu  %s\n", t->name, zc_type_get(t->type)->name, shape, t->nbytes,
               t->offset, base ? base + 1 : t->file);
        params += t->n_elems;
        bytes += t->nbytes;
    }
    print_totals(params, bytes);
    zc_hf_source_free(src);
    return CLI_EXIT_OK;
}

static void help(FILE *f) {
    fprintf(f, "usage: zipcache info [-m MODEL]\n"
               "  -m, --model PATH   GGUF file or Hugging Face directory (default: stories260K from the assets)\n");
}

int cmd_info(int argc, char **argv) {
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (!cli_value("info", argc, argv, &i, &model)) return CLI_EXIT_USAGE;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            help(stdout);
            return CLI_EXIT_OK;
        } else {
            return cli_usage_error("info", "unknown argument '%s' (try --help)", argv[i]);
        }
    }
    if (!model) model = cli_default_model();
    if (!model) return cli_usage_error("info", "no model: pass -m MODEL");
    struct stat st;
    if (stat(model, &st) == 0 && S_ISDIR(st.st_mode)) return info_hf(model);
    return info_gguf(model);
}
