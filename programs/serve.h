/* zipcache serve: the parts of the server that do not touch HTTP or the
 * model, so that tests and the fuzz target can drive them alone:
 *   serve_buf       a growing text buffer and JSON string escaping (serve_request.c)
 *   serve_request   an OpenAI completions / chat request parsed and checked (serve_request.c)
 *   serve_template  chat templates: recognizing a model's Jinja template and
 *                   formatting a conversation natively (serve_template.c)
 * The HTTP server, slots and scheduler are in cmd_serve.c. */
#ifndef ZC_PROGRAMS_SERVE_H
#define ZC_PROGRAMS_SERVE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Text buffer ----------------------------------------------------------- */
typedef struct {
    char *s;        /* NUL-terminated; NULL until the first append */
    size_t len, cap;
    int oom;        /* an append failed: the content is incomplete */
} serve_buf;

void sb_put(serve_buf *b, const char *s, size_t n);
void sb_str(serve_buf *b, const char *s);
void sb_printf(serve_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[n] as a JSON string literal (quotes included). Bytes that are not valid
 * UTF-8 become U+FFFD, so the output is always valid JSON. */
void sb_json_str(serve_buf *b, const char *s, size_t n);
void sb_free(serve_buf *b);

/* ---- Requests -------------------------------------------------------------- */
#define SERVE_MAX_STOP 4

typedef struct {
    char *role;     /* "system", "user", "assistant", "tool", "developer" */
    char *content;  /* text; parts of type "text" concatenated; "" for null */
} serve_msg;

typedef struct {
    int chat;                  /* /v1/chat/completions: messages; else prompt */
    char *prompt;              /* completions */
    serve_msg *msgs;           /* chat: [n_msgs] */
    int n_msgs;
    long long max_tokens;      /* -1: not given */
    double temperature, top_p, min_p, repeat_penalty;
    int top_k;
    int has_seed;
    uint64_t seed;
    char *stop[SERVE_MAX_STOP];
    int n_stop;
    int stream;
    int include_usage;         /* stream_options.include_usage */
} serve_request;

/* Why a request is refused: HTTP status, OpenAI error type, the parameter. */
typedef struct {
    int status;                /* 400 */
    char message[256];
    char param[32];            /* "" when none */
} serve_error;

/* Parse and check a JSON request body (untrusted): the body must be one
 * object; every field OpenAI clients send is type- and range-checked (the
 * error names the parameter); `n` other than 1 is refused; unknown fields are
 * ignored. Returns 0 with *req filled (free with serve_request_free), or -1
 * with *err filled. */
int serve_parse_request(const char *body, size_t len, int chat, serve_request *req, serve_error *err);
void serve_request_free(serve_request *req);

/* ---- Chat templates ------------------------------------------------------- */
typedef enum {
    SERVE_TMPL_NONE = 0,
    SERVE_TMPL_LLAMA3,   /* <|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|> */
    SERVE_TMPL_CHATML,   /* <|im_start|>role\n ... <|im_end|>\n (Qwen2/3, SmolLM, OpenHermes) */
    SERVE_TMPL_MISTRAL,  /* [INST] ... [/INST] (Mistral-7B-Instruct-v0.1) */
    SERVE_TMPL_GEMMA,    /* <start_of_turn>user\n ... <end_of_turn>\n */
    SERVE_TMPL_LLAMA2,   /* [INST] <<SYS>>\n ... \n<</SYS>>\n\n ... [/INST] */
    SERVE_TMPL_PHI3,     /* <|user|>\n ... <|end|>\n */
} serve_tmpl_kind;

typedef struct {
    serve_tmpl_kind kind;
    char default_system[256]; /* chatml: the system message some templates add when none is given */
} serve_template;

/* The template called `name` ("llama3", "chatml", "mistral", "gemma",
 * "llama2", "phi3"); -1 for an unknown name. */
int serve_template_by_name(const char *name, serve_template *t);
/* Recognize a model's Jinja template by the markers of each family; -1 if it
 * is none of them. A ChatML template that writes a fixed system message when
 * the conversation has none (Qwen2, SmolLM2) keeps it in default_system. */
int serve_template_detect(const char *jinja, serve_template *t);
const char *serve_template_name(serve_tmpl_kind k);
/* The comma-separated names, for messages. */
const char *serve_template_names(void);
/* The conversation formatted as the template renders it with
 * add_generation_prompt (a final assistant header) when gen is set; bos and
 * eos are the model's token texts. Returns 0, or -1 with *err filled where
 * the template raises (a system message for gemma/mistral, roles that do
 * not alternate user/assistant). */
int serve_template_apply(const serve_template *t, const serve_msg *msgs, int n, int gen, const char *bos,
                         const char *eos, serve_buf *out, serve_error *err);
/* The text that ends a turn (a stop string / token), "" when eos does. */
const char *serve_template_eot(const serve_template *t);

#endif
