// run.h: `kdtrain run` and `kdtrain check`: load and validate a recipe and its data
// before anything is written, lay out the run directory, pick the backend, and run the
// stages in order (skipping finished ones). Called by main.c only.
#pragma once
#include "runtime/comm.h"

// argv[0] is "run" or "check". Returns an exit status.
int kd_run_main(int argc, char **argv, kd_comm *comm);
