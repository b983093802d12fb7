// test_data_tool.c: a tests-only stand-in for `kdtrain data ...` until runtime/cli/main.c
// dispatches to kd_data_main: `test_data_tool data pack ...` behaves exactly like it.
#include <stdio.h>
#include <string.h>

#include "runtime/cli/cli.h"

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "data") != 0) {
        fprintf(stderr, "usage: test_data_tool data <pack|inspect|synth> ...\n");
        return 2;
    }
    return kd_data_main(argc - 1, argv + 1);
}
