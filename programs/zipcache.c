/* zipcache: command-line front end. Each sub-command lives in cmd_<name>.c
 * and is a thin user of libzipcache. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmds.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command COMMANDS[] = {
    {"demo", cmd_demo, "line retrieval on one document: fp16 vs a compressed cache, with their memory"},
    {"run", cmd_run, "generate text from a prompt (streams to stdout)"},
    {"info", cmd_info, "print a model's metadata and tensor table"},
    {"tokenize", cmd_tokenize, "print the token ids of a text, one per line"},
    {"convert", cmd_convert, "convert a GGUF or Hugging Face checkpoint to GGUF f32/f16/q8_0/q4_0"},
    {"synth", cmd_synth, "write a random-weight GGUF in the shape of a real model"},
    {"bench", cmd_bench, "benchmark prefill/decode per KV policy, and kernels"},
    {"eval", cmd_eval, "evaluate: ppl, lines, gsm8k, humaneval, sweep, saliency, recon"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server: parallel sessions in one KV budget"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: zipcache <command> [options]   (zipcache <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "zipcache: unknown command '%s' (try zipcache --help)\n", argv[1]);
    return CLI_EXIT_USAGE;
}
