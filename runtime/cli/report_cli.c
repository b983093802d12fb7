// report_cli.c: `kdtrain report RUN_DIR [--out FILE.html]` (docs/cli.md, docs/observe.md):
// its options and exit status; the page is runtime/run/report.c. Exit 0 with a report
// (also for an unfinished or damaged run: the page says what is missing), 2 if RUN_DIR is
// not a run directory or the options are wrong, 3 if the file cannot be written.
#include <stdio.h>
#include <string.h>

#include "runtime/cli/cli.h"
#include "runtime/run/report.h"

static const char report_help[] =
    "usage: kdtrain report RUN_DIR [--out FILE.html]\n"
    "  Write one self-contained HTML page about the run (stages, curves, evaluations,\n"
    "  hardware, what is missing); default RUN_DIR/report.html. Prints the path.\n";

int kd_report_main(int argc, char **argv) {
    const char *run = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s", report_help);
            return KD_OK;
        }
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] != '-' && !run) run = argv[i];
        else {
            fprintf(stderr, "kdtrain report: unexpected argument '%s'\n%s", argv[i], report_help);
            return KD_EINPUT;
        }
    }
    if (!run) {
        fprintf(stderr, "kdtrain report: expected a RUN_DIR\n%s", report_help);
        return KD_EINPUT;
    }
    char path[4096];
    kd_error err = {0};
    int rc = kd_run_report(run, out, path, sizeof path, &err);
    if (rc) {
        fprintf(stderr, "kdtrain: error: %s\n", err.msg);
        return rc;
    }
    printf("%s\n", path);
    return KD_OK;
}
