// cli.h: the command-line front end. Each `kdtrain <command>` has one entry point here;
// main.c dispatches to them. argv[0] is the command's name; each returns the exit status
// (docs/cli.md: 0 done, 2 bad input, 3 runtime failure, 75 saved for requeue). This layer
// is the only one that parses a command line or prints usage.
#pragma once
#include "runtime/base/comm.h"

int kd_data_main(int argc, char **argv);      // data_cli.c: data pack|inspect|synth|chat|prefs
int kd_ckpt_main(int argc, char **argv);      // ckpt_cli.c: ckpt list|verify|digest
int kd_generate_main(int argc, char **argv);  // generate_cli.c: generate MODEL ...
int kd_tokenize_main(int argc, char **argv);  // tokenize_cli.c: tokenize --tokenizer SPEC
int kd_export_main(int argc, char **argv, kd_comm *comm);  // export_cli.c: export MODEL --out DIR
int kd_run_main(int argc, char **argv, kd_comm *comm);     // run_cli.c: run|check RECIPE
int kd_submit_main(int argc, char **argv);    // submit_cli.c: submit RECIPE (SLURM)
int kd_status_main(int argc, char **argv);    // submit_cli.c: status RUN_DIR
int kd_cancel_main(int argc, char **argv);    // submit_cli.c: cancel RUN_DIR
int kd_report_main(int argc, char **argv);    // report_cli.c: report RUN_DIR [--out F]
