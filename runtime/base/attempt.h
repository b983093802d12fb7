// attempt.h: the record of who runs a stage, for observers (docs/observe.md): one line
// appended to STAGE/attempts.jsonl each time a stage starts or resumes training, with the
// host, pid and start time of rank 0's process, the ranks, the backend and the CPUs.
// Callers: the trainer (rank 0, once the stage's resume succeeded, so a refused start
// writes nothing); `kdtrain status` and `kdtrain report` read it (runtime/run/run_read.c).
#pragma once

// One attempts.jsonl line: {"time", "host", "pid", "start_ticks", "ranks", "backend",
// "cpus"}; time is when the stage started (unix seconds; 0: now). Best effort (observers
// only): failures are ignored. Stages that do not train get their line from the run once
// they finished (kd_attempt_noted tells whether the trainer wrote one).
void kd_attempt_note(const char *stage_dir, int ranks, const char *backend, double time);
int kd_attempt_noted(const char *stage_dir);
// Now, in unix seconds.
double kd_unix_now(void);
// The start time of process pid in clock ticks since boot (/proc/PID/stat field 22), 0 if
// unknown: with the pid it names one process, even after the pid is reused.
unsigned long long kd_proc_start_ticks(int pid);
