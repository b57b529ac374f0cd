/* zipcache tokenize: print the token ids of a text, one per line.
 *
 * Only the tokenizer is loaded, so vocabulary-only GGUF files work, as do
 * Hugging Face directories (their tokenizer.json) and tokenizer.json files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cmds.h"
#include "model/gguf.h"
#include "model/tokenizer.h"
#include "util/error.h"
#include "util/file.h"

static const char usage[] =
    "usage: zipcache tokenize [-m MODEL] (-p TEXT | -f FILE) [--no-bos] [--parse-special] [--no-space-prefix]\n"
    "  -m MODEL         GGUF file, Hugging Face directory or tokenizer.json (default: stories260K)\n"
    "  -p TEXT          text to tokenize\n"
    "  -f FILE          read the text from FILE (bytes as they are)\n"
    "  --no-bos         do not add BOS (and EOS) even where the model asks for them\n"
    "  --parse-special  match control tokens such as <s> written in the text\n"
    "  --no-space-prefix  no dummy leading space (SentencePiece / tokenizer.json Prepend)\n";

/* A directory means its tokenizer.json; a name ending in .json is one. */
static int load_tokenizer(const char *path, zc_tokenizer **tok) {
    struct stat st;
    size_t n = strlen(path);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char *json = zc_malloc(n + sizeof "/tokenizer.json");
        if (!json) return ZC_ERR_NOMEM;
        sprintf(json, "%s/tokenizer.json", path);
        int rc = zc_tokenizer_from_hf(json, tok);
        free(json);
        return rc;
    }
    if (n >= 5 && !strcmp(path + n - 5, ".json")) return zc_tokenizer_from_hf(path, tok);
    zc_gguf *g;
    int rc = zc_gguf_open(path, &g);
    if (rc) return rc;
    rc = zc_tokenizer_from_gguf(g, tok);
    zc_gguf_close(g);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *cmd = "tokenize", *model = NULL, *text = NULL, *file = NULL;
    bool no_bos = false, parse_special = false, no_space_prefix = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "-m")) {
            if (!cli_value(cmd, argc, argv, &i, &model)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-p")) {
            if (!cli_value(cmd, argc, argv, &i, &text)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-f")) {
            if (!cli_value(cmd, argc, argv, &i, &file)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = true;
        } else if (!strcmp(a, "--parse-special")) {
            parse_special = true;
        } else if (!strcmp(a, "--no-space-prefix")) {
            no_space_prefix = true;
        } else {
            return cli_usage_error(cmd, "unknown option '%s' (see --help)", a);
        }
    }
    if (!text == !file) return cli_usage_error(cmd, "give exactly one of -p TEXT and -f FILE");
    if (!model) model = cli_default_model();
    if (!model) return cli_usage_error(cmd, "no -m MODEL given and the default model is not present");

    char *buf = NULL;
    size_t len = text ? strlen(text) : 0;
    if (file && zc_read_file(file, (size_t)1 << 30, &buf, &len) != 0) return cli_lib_error();
    zc_tokenizer *tok;
    if (load_tokenizer(model, &tok) != 0) {
        free(buf);
        return cli_lib_error();
    }
    if (no_space_prefix && zc_tokenizer_set_space_prefix(tok, false) != 0) {
        free(buf);
        zc_tokenizer_free(tok);
        return cli_lib_error();
    }
    int32_t *ids;
    int n;
    bool add_special = !no_bos;
    int rc = zc_tokenize(tok, file ? buf : text, len, add_special && zc_tokenizer_add_bos(tok), parse_special, &ids, &n);
    free(buf);
    if (rc) {
        zc_tokenizer_free(tok);
        return cli_lib_error();
    }
    for (int i = 0; i < n; i++) printf("%d\n", ids[i]);
    if (add_special && zc_tokenizer_add_eos(tok)) printf("%d\n", zc_tokenizer_eos(tok));
    free(ids);
    zc_tokenizer_free(tok);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_DATA;
}
