/* Fuzz target: the zipcache serve request parser (programs/serve_request.c)
 * and the chat templates (programs/serve_template.c), compiled in here
 * because the CLI's sources are not part of libzipcache. Each input is
 * parsed as a completions and as a chat request; a chat request that parses
 * is formatted with every template, and every string goes through the JSON
 * escaper, whose output must parse back as JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../programs/serve_request.c"
#include "../../programs/serve_template.c"

const char *const FUZZ_TARGET_NAME = "serve_request";

static void check_escaped(const char *s, size_t n) {
    serve_buf b = {0};
    sb_json_str(&b, s, n);
    if (b.oom) return;
    zc_json_doc *doc;
    const zc_json *root;
    if (zc_json_parse(b.s, b.len, "escaped", &doc, &root) != 0) abort(); /* the escaper must write valid JSON */
    zc_json_free(doc);
    sb_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *body = (const char *)data;
    check_escaped(body, size);
    for (int chat = 0; chat < 2; chat++) {
        serve_request r;
        serve_error e;
        if (serve_parse_request(body, size, chat, &r, &e)) {
            if (e.status != 400 || !e.message[0]) abort(); /* every refusal is a 400 with a reason */
            continue;
        }
        if (r.prompt) check_escaped(r.prompt, strlen(r.prompt));
        for (int k = 1; chat && k <= SERVE_TMPL_PHI3; k++) {
            serve_template t = {(serve_tmpl_kind)k, ""};
            if (k == SERVE_TMPL_CHATML) strcpy(t.default_system, "You are a helpful assistant.");
            serve_buf out = {0};
            serve_error te;
            if (serve_template_apply(&t, r.msgs, r.n_msgs, k & 1, "<s>", "</s>", &out, &te) == 0 && !out.oom)
                check_escaped(out.s, out.len);
            sb_free(&out);
        }
        serve_template t;
        if (r.n_msgs > 0) serve_template_detect(r.msgs[0].content, &t);
        serve_request_free(&r);
    }
    return 0;
}
