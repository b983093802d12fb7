// submit_cli.c: `kdtrain submit RECIPE`, `kdtrain status RUN_DIR` and `kdtrain cancel
// RUN_DIR`: their options, usage and exit status (docs/slurm.md, docs/cli.md). The work is
// runtime/run/submit.c (kd_submit) and runtime/run/slurm_status.c (kd_slurm_status,
// kd_slurm_cancel).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cli/cli.h"
#include "runtime/run/run_status.h"
#include "runtime/run/submit.h"

#define MAX_SETS 64
#define MAX_SBATCH_ARGS 32

typedef struct {
    kd_submit_opts o;
    const char *sets[MAX_SETS];
    const char *sbatch_args[MAX_SBATCH_ARGS];
    int n_sets, n_sbatch_args;
} submit_cli;

static void usage(FILE *f) {
    fprintf(f,
            "usage: kdtrain submit RECIPE [--set KEY=VALUE]... --nodes N --ntasks-per-node R\n"
            "         [--gpus-per-node G] [--partition P] [--time HH:MM:SS] [--account A]\n"
            "         [--stages a,b] [--max-requeues K] [--signal-secs S] [--sbatch-arg ARG]...\n"
            "         [--launcher srun|mpirun] [--kdtrain PATH] [--dry-run]\n"
            "  Writes RUN/slurm/NN-stage.sbatch for each stage (RUN = run.out_dir), submits them\n"
            "  as a chain (afterok), prints the job ids and records them in RUN/slurm/jobs.tsv.\n"
            "  --max-requeues K   self-requeues after preemption per stage (default 3)\n"
            "  --signal-secs S    USR1 this many seconds before the time limit (default 300)\n"
            "  --sbatch-arg ARG   extra #SBATCH line, e.g. --sbatch-arg=--exclusive\n"
            "  --launcher L       srun --mpi=pmix (default) or mpirun\n"
            "  --kdtrain PATH     binary the scripts run (default: this kdtrain)\n"
            "  --dry-run          print the scripts; write and submit nothing\n");
}

// ----------------------------------------------------------------------------- options

static int pos_int(const char *opt, const char *v, int min, int *out, kd_error *err) {
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || x < min || x > 1000000)
        return kd_fail(err, KD_EINPUT, "%s: expected an integer >= %d, found '%s'", opt, min,
                       v ? v : "");
    *out = (int)x;
    return KD_OK;
}

// The options that take a value (--opt VALUE or --opt=VALUE).
static const char *const value_opts[] = {"--set",           "--sbatch-arg",
                                         "--nodes",         "--ntasks-per-node",
                                         "--gpus-per-node", "--max-requeues",
                                         "--signal-secs",   "--partition",
                                         "--account",       "--time",
                                         "--stages",        "--launcher",
                                         "--kdtrain",       NULL};

static int takes_value(const char *name) {
    for (int k = 0; value_opts[k]; k++)
        if (!strcmp(name, value_opts[k])) return 1;
    return 0;
}

// One option of value_opts with its value.
static int set_value(submit_cli *c, const char *name, const char *v, kd_error *err) {
    kd_submit_opts *o = &c->o;
    if (!strcmp(name, "--set")) {
        if (c->n_sets >= MAX_SETS)
            return kd_fail(err, KD_EINPUT, "submit: at most %d --set", MAX_SETS);
        c->sets[c->n_sets++] = v;
    } else if (!strcmp(name, "--sbatch-arg")) {
        if (c->n_sbatch_args >= MAX_SBATCH_ARGS)
            return kd_fail(err, KD_EINPUT, "submit: at most %d --sbatch-arg", MAX_SBATCH_ARGS);
        if (strchr(v, '\n'))
            return kd_fail(err, KD_EINPUT, "--sbatch-arg: a newline is not allowed");
        c->sbatch_args[c->n_sbatch_args++] = v;
    } else if (!strcmp(name, "--nodes")) {
        return pos_int(name, v, 1, &o->nodes, err);
    } else if (!strcmp(name, "--ntasks-per-node")) {
        return pos_int(name, v, 1, &o->ntasks_per_node, err);
    } else if (!strcmp(name, "--gpus-per-node")) {
        return pos_int(name, v, 0, &o->gpus_per_node, err);
    } else if (!strcmp(name, "--max-requeues")) {
        return pos_int(name, v, 0, &o->max_requeues, err);
    } else if (!strcmp(name, "--signal-secs")) {
        return pos_int(name, v, 1, &o->signal_secs, err);
    } else if (!strcmp(name, "--partition")) {
        o->partition = v;
    } else if (!strcmp(name, "--account")) {
        o->account = v;
    } else if (!strcmp(name, "--time")) {
        o->time_limit = v;
        if (!*v || strspn(v, "0123456789:-") != strlen(v))
            return kd_fail(err, KD_EINPUT, "--time: expected [D-]HH:MM:SS, found '%s'", v);
    } else if (!strcmp(name, "--stages")) {
        o->stages = v;
    } else if (!strcmp(name, "--launcher")) {
        o->launcher = v;
        if (strcmp(v, "srun") && strcmp(v, "mpirun"))
            return kd_fail(err, KD_EINPUT, "--launcher: expected srun or mpirun, found '%s'", v);
    } else if (!strcmp(name, "--kdtrain")) {
        o->kdtrain = v;
    }
    return KD_OK;
}

// -1 after --help (nothing more to do), else KD_OK or KD_EINPUT.
static int parse_opts(int argc, char **argv, submit_cli *c, kd_error *err) {
    memset(c, 0, sizeof *c);
    kd_submit_opts *o = &c->o;
    o->sets = c->sets, o->sbatch_args = c->sbatch_args;
    o->max_requeues = 3;
    o->signal_secs = 300;
    o->launcher = "srun";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[64];
        // --opt=value and --opt value are both accepted.
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
        if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(name, "--dry-run")) {
            o->dry_run = 1;
        } else if (takes_value(name)) {
            if (!v && i + 1 >= argc)
                return kd_fail(err, KD_EINPUT, "submit: %s needs a value", name);
            if (!v) v = argv[++i];
            int rc = set_value(c, name, v, err);
            if (rc) return rc;
        } else if (a[0] == '-') {
            return kd_fail(err, KD_EINPUT,
                           "submit: unknown option '%s' (see kdtrain submit --help)", a);
        } else if (!o->recipe) {
            o->recipe = a;
        } else {
            return kd_fail(err, KD_EINPUT, "submit: unexpected argument '%s' (one recipe only)", a);
        }
        // Values other than --set and --sbatch-arg land on #SBATCH lines: no newlines there.
        if (v && strchr(v, '\n'))
            return kd_fail(err, KD_EINPUT, "%s: a newline is not allowed", name);
    }
    o->n_sets = c->n_sets, o->n_sbatch_args = c->n_sbatch_args;
    if (!o->recipe)
        return kd_fail(err, KD_EINPUT, "submit: missing RECIPE (see kdtrain submit --help)");
    if (!o->nodes) return kd_fail(err, KD_EINPUT, "submit: --nodes N is required");
    if (!o->ntasks_per_node)
        return kd_fail(err, KD_EINPUT, "submit: --ntasks-per-node R is required");
    return KD_OK;
}

int kd_submit_main(int argc, char **argv) {
    kd_error err = {0};
    submit_cli c;
    int rc = parse_opts(argc, argv, &c, &err);
    if (rc == -1) return KD_OK;
    if (!rc) rc = kd_submit(&c.o, &err);
    if (rc) fprintf(stderr, "kdtrain: error: %s\n", err.msg);
    return rc;
}

// ----------------------------------------------------------------------------- status, cancel

static const char status_help[] =
    "usage: kdtrain status RUN_DIR\n"
    "  Per stage: SLURM job id(s), state, restarts, newest checkpoint step, last\n"
    "  logged loss (loss@step), DONE marker, and a failed stage's error line.\n"
    "  A run started with mpirun (no slurm/jobs.tsv): the stage, step, last loss,\n"
    "  ETA, newest checkpoint, and whether its process is alive (docs/observe.md).\n";
static const char cancel_help[] =
    "usage: kdtrain cancel RUN_DIR\n"
    "  scancel every pending or running job of the run's chain (newest stage\n"
    "  first). A running kdtrain gets SIGTERM, saves and is not requeued.\n";

// `kdtrain status|cancel RUN_DIR`: the one argument, then fn on it.
static int run_dir_command(int argc, char **argv, const char *help,
                           int (*fn)(const char *run, kd_error *err)) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("%s", help);
        return KD_OK;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "kdtrain %s: expected one RUN_DIR\n%s", argv[0], help);
        return KD_EINPUT;
    }
    kd_error err = {0};
    int rc = fn(argv[1], &err);
    if (rc) fprintf(stderr, "kdtrain: error: %s\n", err.msg);
    return rc;
}

// SLURM's view when kdtrain submit queued the run, else the mpirun launch's.
static int status_any(const char *run, kd_error *err) {
    char jobs[4096];
    snprintf(jobs, sizeof jobs, "%s/slurm/jobs.tsv", run);
    return access(jobs, F_OK) == 0 ? kd_slurm_status(run, err) : kd_run_status(run, err);
}

int kd_status_main(int argc, char **argv) {
    return run_dir_command(argc, argv, status_help, status_any);
}

int kd_cancel_main(int argc, char **argv) {
    return run_dir_command(argc, argv, cancel_help, kd_slurm_cancel);
}
