// signals.h: SIGTERM, SIGINT and SIGUSR1 (SLURM preemption) only set a flag here; the
// trainer combines the flags of all ranks once per step and then saves and exits with
// KD_EREQUEUE (75) collectively. A second SIGINT exits at once.
#pragma once

void kd_signals_install(void);
// The signal number received (0 if none).
int kd_signals_pending(void);
