// tokenize_tool.c: `kdtrain tokenize` (runtime/cli/tokenize_cli.c, compiled in) in a binary
// that links only the data layer, for the valgrind run of the tokenizer parity test: the
// kdtrain binary links the CUDA libraries, which valgrind takes ~11 s to read at every
// start. Usage as kdtrain's: tokenize_tool tokenize --tokenizer SPEC [...].
#include <stdio.h>
#include <string.h>

#include "runtime/cli/cli.h"

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "tokenize") != 0) {
        fprintf(stderr, "usage: tokenize_tool tokenize --tokenizer SPEC [...]\n");
        return 2;
    }
    return kd_tokenize_main(argc - 1, argv + 1);
}
