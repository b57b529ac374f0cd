/* Chat templates for zipcache serve (serve.h): each family's formatting
 * written out natively, as its published Jinja template renders it with
 * transformers' settings (tests/js/test_templates.mjs renders the real
 * template strings with @huggingface/jinja and compares, case by case):
 *   llama3   meta-llama/Meta-Llama-3-8B-Instruct
 *   chatml   teknium/OpenHermes-2.5-Mistral-7B; Qwen2-Instruct and SmolLM2-Instruct add a default
 *            system message when the conversation has none (default_system)
 *   mistral  mistralai/Mistral-7B-Instruct-v0.1
 *   gemma    google/gemma-7b-it
 *   llama2   meta-llama/Llama-2-7b-chat-hf
 *   phi3     microsoft/Phi-3-mini-4k-instruct
 * Jinja's trim (Python str.strip) is applied to ASCII whitespace. */
#include <stdio.h>
#include <string.h>

#include "serve.h"

static const char *const NAMES[] = {"", "llama3", "chatml", "mistral", "gemma", "llama2", "phi3"};

const char *serve_template_name(serve_tmpl_kind k) { return k > 0 && k <= SERVE_TMPL_PHI3 ? NAMES[k] : "none"; }

const char *serve_template_names(void) { return "llama3, chatml, mistral, gemma, llama2, phi3"; }

int serve_template_by_name(const char *name, serve_template *t) {
    memset(t, 0, sizeof *t);
    for (int k = 1; k <= SERVE_TMPL_PHI3; k++)
        if (!strcmp(name, NAMES[k])) {
            t->kind = (serve_tmpl_kind)k;
            return 0;
        }
    return -1;
}

/* The default system message of a ChatML template: the literal after
 * "<|im_start|>system\n" (a newline or the two characters \n) up to
 * "<|im_end|>", when it contains no Jinja expression or quote. */
static void chatml_default_system(const char *j, serve_template *t) {
    const char *key = "<|im_start|>system";
    for (const char *p = strstr(j, key); p; p = strstr(p + 1, key)) {
        const char *s = p + strlen(key);
        if (*s == '\n')
            s += 1;
        else if (s[0] == '\\' && s[1] == 'n')
            s += 2;
        else
            continue;
        const char *end = strstr(s, "<|im_end|>");
        if (!end || end == s || (size_t)(end - s) >= sizeof t->default_system) continue;
        if (memchr(s, '\'', (size_t)(end - s)) || memchr(s, '"', (size_t)(end - s)) || memchr(s, '{', (size_t)(end - s)))
            continue;
        memcpy(t->default_system, s, (size_t)(end - s));
        t->default_system[end - s] = 0;
        return;
    }
}

int serve_template_detect(const char *j, serve_template *t) {
    memset(t, 0, sizeof *t);
    if (strstr(j, "<|start_header_id|>") && strstr(j, "<|eot_id|>"))
        t->kind = SERVE_TMPL_LLAMA3;
    else if (strstr(j, "<|im_start|>")) {
        t->kind = SERVE_TMPL_CHATML;
        chatml_default_system(j, t);
    } else if (strstr(j, "<start_of_turn>"))
        t->kind = SERVE_TMPL_GEMMA;
    else if (strstr(j, "<|user|>") && strstr(j, "<|end|>"))
        t->kind = SERVE_TMPL_PHI3;
    else if (strstr(j, "<<SYS>>"))
        t->kind = SERVE_TMPL_LLAMA2;
    else if (strstr(j, "[INST]"))
        t->kind = SERVE_TMPL_MISTRAL;
    return t->kind ? 0 : -1;
}

const char *serve_template_eot(const serve_template *t) {
    switch (t->kind) {
    case SERVE_TMPL_LLAMA3: return "<|eot_id|>";
    case SERVE_TMPL_CHATML: return "<|im_end|>";
    case SERVE_TMPL_GEMMA: return "<end_of_turn>";
    case SERVE_TMPL_PHI3: return "<|end|>";
    default: return "";
    }
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* s without leading and trailing whitespace. */
static void put_trimmed(serve_buf *b, const char *s) {
    size_t n = strlen(s);
    while (n && is_space(*s)) s++, n--;
    while (n && is_space(s[n - 1])) n--;
    sb_put(b, s, n);
}

static int raise_error(serve_error *e, const char *what) {
    e->status = 400;
    snprintf(e->message, sizeof e->message, "the chat template refuses this conversation: %s", what);
    snprintf(e->param, sizeof e->param, "messages");
    return -1;
}

/* Jinja's (role == 'user') != (index % 2 == 0) check. */
static int alternates(const serve_msg *m, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(m[i].role, "user") != (i % 2 == 0)) return 0;
    return 1;
}

static const char ALTERNATE[] = "Conversation roles must alternate user/assistant/user/assistant/...";

int serve_template_apply(const serve_template *t, const serve_msg *m, int n, int gen, const char *bos,
                         const char *eos, serve_buf *b, serve_error *e) {
    sb_put(b, "", 0);
    switch (t->kind) {
    case SERVE_TMPL_LLAMA3:
        for (int i = 0; i < n; i++) {
            if (i == 0) sb_str(b, bos);
            sb_printf(b, "<|start_header_id|>%s<|end_header_id|>\n\n", m[i].role);
            put_trimmed(b, m[i].content);
            sb_str(b, "<|eot_id|>");
        }
        if (gen) sb_str(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case SERVE_TMPL_CHATML:
        for (int i = 0; i < n; i++) {
            if (i == 0 && t->default_system[0] && strcmp(m[0].role, "system"))
                sb_printf(b, "<|im_start|>system\n%s<|im_end|>\n", t->default_system);
            sb_printf(b, "<|im_start|>%s\n", m[i].role);
            sb_str(b, m[i].content);
            sb_str(b, "<|im_end|>\n");
        }
        if (gen) sb_str(b, "<|im_start|>assistant\n");
        break;
    case SERVE_TMPL_MISTRAL:
        sb_str(b, bos);
        for (int i = 0; i < n; i++) {
            if (!strcmp(m[i].role, "user") != (i % 2 == 0)) return raise_error(e, ALTERNATE);
            if (!strcmp(m[i].role, "user")) {
                sb_str(b, "[INST] ");
                sb_str(b, m[i].content);
                sb_str(b, " [/INST]");
            } else if (!strcmp(m[i].role, "assistant")) {
                sb_str(b, m[i].content);
                sb_str(b, eos);
                sb_str(b, " ");
            } else {
                return raise_error(e, "Only user and assistant roles are supported!");
            }
        }
        break;
    case SERVE_TMPL_GEMMA:
        sb_str(b, bos);
        if (n > 0 && !strcmp(m[0].role, "system")) return raise_error(e, "System role not supported");
        if (!alternates(m, n)) return raise_error(e, ALTERNATE);
        for (int i = 0; i < n; i++) {
            sb_printf(b, "<start_of_turn>%s\n", !strcmp(m[i].role, "assistant") ? "model" : m[i].role);
            put_trimmed(b, m[i].content);
            sb_str(b, "<end_of_turn>\n");
        }
        if (gen) sb_str(b, "<start_of_turn>model\n");
        break;
    case SERVE_TMPL_LLAMA2: {
        int sys = n > 0 && !strcmp(m[0].role, "system");
        const serve_msg *loop = m + sys;
        int ln = n - sys;
        if (!alternates(loop, ln)) return raise_error(e, ALTERNATE);
        for (int i = 0; i < ln; i++) {
            serve_buf content = {0};
            if (i == 0 && sys) sb_printf(&content, "<<SYS>>\n%s\n<</SYS>>\n\n", m[0].content);
            sb_str(&content, loop[i].content);
            if (!strcmp(loop[i].role, "user")) {
                sb_str(b, bos);
                sb_str(b, "[INST] ");
                put_trimmed(b, content.s ? content.s : "");
                sb_str(b, " [/INST]");
            } else if (!strcmp(loop[i].role, "assistant")) {
                sb_str(b, " ");
                put_trimmed(b, content.s ? content.s : "");
                sb_str(b, " ");
                sb_str(b, eos);
            }
            if (content.oom) b->oom = 1;
            sb_free(&content);
        }
        break;
    }
    case SERVE_TMPL_PHI3:
        for (int i = 0; i < n; i++) {
            const char *r = m[i].role;
            if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")) continue;
            sb_printf(b, "<|%s|>\n", r);
            sb_str(b, m[i].content);
            sb_str(b, "<|end|>\n");
        }
        sb_str(b, gen ? "<|assistant|>\n" : eos);
        break;
    default:
        e->status = 400;
        snprintf(e->message, sizeof e->message, "no chat template");
        return -1;
    }
    if (b->oom) {
        e->status = 500;
        snprintf(e->message, sizeof e->message, "out of memory formatting the conversation");
        return -1;
    }
    return 0;
}
