/* cli_common.c — helpers shared by the subcommands' argument parsing. */
#include "gateway/cli.h"

#include <string.h>

int gf_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
        if (strcmp(argv[i], "--") == 0)
            break;
    }
    return 0;
}
