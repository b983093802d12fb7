// main.c: the kdtrain command line. Parses the subcommand and hands off; the only place
// that turns an error code into an exit status.
#include <stdio.h>
#include <string.h>

#include "runtime/common.h"

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        printf("usage: kdtrain <run|check|data|ckpt> ...\n");
        return argc < 2 ? KD_EINPUT : KD_OK;
    }
    fprintf(stderr, "kdtrain: unknown command '%s'\n", argv[1]);
    return KD_EINPUT;
}
