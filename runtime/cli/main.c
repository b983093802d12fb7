// main.c: the kdtrain command line. Dispatches the subcommand and is the only place that
// turns an error code into an exit status (docs/cli.md).
#include <stdio.h>
#include <string.h>

#include "runtime/base/comm.h"
#include "runtime/base/common.h"
#include "runtime/cli/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: kdtrain <command> [options]   (kdtrain <command> --help for details)\n"
            "commands:\n"
            "  run RECIPE [--set K=V]...   run a recipe's stages (under mpirun for N ranks)\n"
            "  check RECIPE [--set K=V]... validate a recipe and its data without training\n"
            "  data <pack|inspect|synth>   make and inspect HDF5 token datasets\n"
            "  ckpt <list|verify|digest>   inspect checkpoints\n"
            "  export MODEL --out DIR      write a model as a Hugging Face directory\n"
            "  generate MODEL --prompt T   complete prompts with a trained model\n"
            "  tokenize --tokenizer SPEC   text to ids (or --decode ids to text), one line each\n"
            "  submit RECIPE --nodes N ... queue the stages on SLURM as a job chain\n"
            "  status RUN_DIR              stage, step, loss, ETA, liveness (SLURM: jobs) of a run\n"
            "  report RUN_DIR [--out F]    write an HTML report of a run (plots, evals, stages)\n"
            "  cancel RUN_DIR              cancel a run's pending and running SLURM jobs\n"
            "  version                     print the version\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return KD_EINPUT;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return KD_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("kdtrain %s\n", KD_VERSION);
        return KD_OK;
    }
    if (strcmp(cmd, "data") == 0) return kd_data_main(argc - 1, argv + 1);
    if (strcmp(cmd, "ckpt") == 0) return kd_ckpt_main(argc - 1, argv + 1);
    if (strcmp(cmd, "generate") == 0) return kd_generate_main(argc - 1, argv + 1);
    if (strcmp(cmd, "tokenize") == 0) return kd_tokenize_main(argc - 1, argv + 1);
    if (strcmp(cmd, "submit") == 0) return kd_submit_main(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0) return kd_status_main(argc - 1, argv + 1);
    if (strcmp(cmd, "cancel") == 0) return kd_cancel_main(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0) return kd_report_main(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "check") == 0 || strcmp(cmd, "export") == 0) {
        kd_comm *comm = NULL;
        kd_comm_init(&comm, &argc, &argv);
        int rc = strcmp(cmd, "export") == 0 ? kd_export_main(argc - 1, argv + 1, comm)
                                            : kd_run_main(argc - 1, argv + 1, comm);
        fflush(stdout);
        fflush(stderr);
        kd_comm_finalize(comm);
        return rc;
    }
    fprintf(stderr, "kdtrain: unknown command '%s'\n", cmd);
    usage(stderr);
    return KD_EINPUT;
}
