/* Placeholder until the owning change lands. */
#include <stdio.h>

#include "cli.h"
#include "cmds.h"

int cmd_run(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "zipcache run: not built yet\n");
    return CLI_EXIT_USAGE;
}
