// run_cli.c: `kdtrain run RECIPE` and `kdtrain check RECIPE`: their options and usage, and
// the exit status (docs/cli.md). The work is runtime/run/run.c's (kd_run_check,
// kd_run_stages); every rank parses the same command line and prints nothing but rank 0.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cli/cli.h"
#include "runtime/run/run.h"

#define MAX_SETS 64

typedef struct {
    int check_only;
    kd_run_opts run;
    const char *sets[MAX_SETS];
} run_cli_opts;

static void usage(int check) {
    if (check)
        printf("usage: kdtrain check RECIPE [--set KEY=VALUE]... [--ranks N] [--mem-gib G]\n"
               "  Validate a recipe, its data files and shapes without training; print a summary.\n"
               "  --set KEY=VALUE   override a recipe key (e.g. stages.pretrain.optim.lr=1e-4)\n"
               "  --ranks N         check batch divisibility for N ranks (default: the MPI world "
               "size)\n"
               "  --mem-gib G       check that the model state and activations fit in G GiB per "
               "rank\n"
               "                    (default: this machine's memory; e.g. 80 for a recipe meant "
               "for H100s)\n");
    else
        printf(
            "usage: [mpirun -np N] kdtrain run RECIPE [--set KEY=VALUE]... [--quiet]\n"
            "  Run the recipe's stages in order on N data-parallel ranks.\n"
            "  --set KEY=VALUE   override a recipe key (e.g. stages.pretrain.steps=50)\n"
            "  --resume MODE     auto (default): continue each unfinished stage from its newest "
            "valid\n"
            "                    checkpoint; never: start unfinished stages over; force: resume "
            "even\n"
            "                    if the recipe's model or data changed since the checkpoint; PATH: "
            "the\n"
            "                    first unfinished stage continues from that checkpoint directory\n"
            "  --stage NAME      run only this stage (earlier stages must have finished)\n"
            "  --quiet           no settings table or progress lines\n"
            "exit status: 0 done, 2 bad input, 3 runtime failure (last checkpoint intact),\n"
            "             75 stopped by a signal or run.max_minutes after saving (requeue)\n");
}

// --resume MODE|PATH
static int parse_resume(const char *v, kd_run_opts *o, kd_error *err) {
    if (strcmp(v, "auto") == 0)
        o->resume = KD_RESUME_AUTO;
    else if (strcmp(v, "never") == 0)
        o->resume = KD_RESUME_NEVER;
    else if (strcmp(v, "force") == 0)
        o->resume = KD_RESUME_FORCE;
    else if (v[0] && v[0] != '-')
        o->resume = KD_RESUME_AUTO, o->resume_path = v;
    else
        return kd_fail(err, KD_EINPUT,
                       "--resume: expected auto, never, force or a checkpoint PATH, found '%s'", v);
    return KD_OK;
}

// -1 after --help (nothing more to do), else KD_OK or KD_EINPUT.
static int parse_opts(int argc, char **argv, run_cli_opts *c, kd_error *err) {
    memset(c, 0, sizeof *c);
    kd_run_opts *o = &c->run;
    o->sets = c->sets;
    c->check_only = strcmp(argv[0], "check") == 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(c->check_only);
            return -1;
        } else if (strcmp(a, "--set") == 0) {
            if (i + 1 >= argc) return kd_fail(err, KD_EINPUT, "--set needs KEY=VALUE");
            if (o->n_sets >= MAX_SETS)
                return kd_fail(err, KD_EINPUT, "at most %d --set options", MAX_SETS);
            c->sets[o->n_sets++] = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            if (o->n_sets >= MAX_SETS)
                return kd_fail(err, KD_EINPUT, "at most %d --set options", MAX_SETS);
            c->sets[o->n_sets++] = a + 6;
        } else if (strcmp(a, "--ranks") == 0 && c->check_only) {
            if (i + 1 >= argc || atoi(argv[i + 1]) < 1)
                return kd_fail(err, KD_EINPUT, "--ranks needs a positive integer");
            o->ranks = atoi(argv[++i]);
        } else if (strcmp(a, "--mem-gib") == 0 && c->check_only) {
            char *end = NULL;
            double g = i + 1 < argc ? strtod(argv[i + 1], &end) : 0;
            if (!end || *end || !(g > 0) || g > 1e6)
                return kd_fail(err, KD_EINPUT, "--mem-gib needs a number of GiB > 0, found '%s'",
                               i + 1 < argc ? argv[i + 1] : "");
            o->mem_gib = g, i++;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--resume") == 0 && !c->check_only) {
            int rc = parse_resume(i + 1 < argc ? argv[++i] : "", o, err);
            if (rc) return rc;
        } else if (strcmp(a, "--stage") == 0 && !c->check_only) {
            if (i + 1 >= argc) return kd_fail(err, KD_EINPUT, "--stage needs a stage name");
            o->stage = argv[++i];
        } else if (a[0] == '-') {
            return kd_fail(err, KD_EINPUT, "%s: unknown option '%s' (see kdtrain %s --help)",
                           argv[0], a, argv[0]);
        } else if (!o->recipe) {
            o->recipe = a;
        } else {
            return kd_fail(err, KD_EINPUT, "%s: unexpected argument '%s' (one recipe only)",
                           argv[0], a);
        }
    }
    if (!o->recipe)
        return kd_fail(err, KD_EINPUT, "%s: missing RECIPE (see kdtrain %s --help)", argv[0],
                       argv[0]);
    return KD_OK;
}

int kd_run_main(int argc, char **argv, kd_comm *comm) {
    kd_error err = {0};
    run_cli_opts c;
    int rank = kd_comm_rank(comm);
    int rc = parse_opts(argc, argv, &c, &err);
    if (rc == -1) return KD_OK;
    if (!rc)
        rc = c.check_only ? kd_run_check(comm, &c.run, &err) : kd_run_stages(comm, &c.run, &err);
    if (!rc && c.check_only && rank == 0) printf("kdtrain: %s: OK\n", c.run.recipe);
    if (rc && rank == 0) fprintf(stderr, "kdtrain: error: %s\n", err.msg);
    return rc;
}
