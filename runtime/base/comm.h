// comm.h: the data-parallel world: MPI setup, the collectives the trainer and the
// checkpoint code need, collective agreement on flags and errors, and checked MPI calls.
// The only module that includes mpi.h for training and checkpoint traffic; every other
// layer sees kd_comm as opaque. Every call here is collective unless it says otherwise.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/base/common.h"

typedef struct kd_comm kd_comm;

// MPI_Init (thread level FUNNELED) and world info. SLURM variables are logged by the run.
int kd_comm_init(kd_comm **out, int *argc, char ***argv);
void kd_comm_finalize(kd_comm *c);
// The world of a caller that called MPI_Init itself (unit tests, tools): one shared
// kd_comm over MPI_COMM_WORLD, made on first use; never pass it to kd_comm_finalize.
kd_comm *kd_comm_world(void);
int kd_comm_rank(const kd_comm *c);
int kd_comm_size(const kd_comm *c);

// ZeRO-1 shard of a flat buffer of `total` floats over W ranks: rank r owns [lo, hi) with
// lo = floor(r*total/W), hi = floor((r+1)*total/W). Shards differ by at most one element,
// cover [0,total) exactly and in rank order; a rank may own nothing when W > total.
void kd_shard_range(size_t total, int world, int rank, size_t *lo, size_t *hi);

// In-place sum over ranks of n doubles (host memory).
void kd_comm_allreduce_f64(kd_comm *c, double *buf, size_t n);
double kd_comm_sum_f64(kd_comm *c, double v);
double kd_comm_max_f64(kd_comm *c, double v);
// 1 if any rank passed a non-zero flag (every rank gets the same answer).
int kd_comm_any(kd_comm *c, int flag);
// "Did any rank fail, and with which error": every rank passes its own status (and err
// holding its message when rc != KD_OK); every rank returns the status of the lowest
// failing rank, and err (if not NULL) is replaced by that rank's error, so all ranks
// report the same message. KD_OK (err untouched) when no rank failed.
int kd_comm_agree(kd_comm *c, int rc, kd_error *err);
// Every rank gets rank 0's bytes (any size).
void kd_comm_bcast(kd_comm *c, void *buf, size_t bytes);
// Rank 0 receives rank r's n_r = counts[r] floats at recv + displs[r] (counts/displs are
// read on rank 0 only; recv may be NULL elsewhere). Every rank passes its own n and send.
void kd_comm_gatherv_f32(kd_comm *c, const float *send, int n, float *recv, const int *counts,
                         const int *displs);
// ZeRO-1 (shards as kd_shard_range): rank r receives the sum over ranks of full[lo_r, hi_r) into shard.
void kd_comm_reduce_scatter_f32(kd_comm *c, const float *full, float *shard, size_t total);
// Every rank's shard [lo_r, hi_r) of buf is gathered into every rank's buf.
void kd_comm_allgather_f32(kd_comm *c, float *buf, size_t total);
// Nonblocking reduce-scatter of one range of a flat buffer (the trainer's gradient buckets,
// started while the backward runs): send is the range (n floats, n = the sum of counts),
// rank r receives the sum over ranks of its counts[r] floats, in rank order, into recv.
// Every rank starts the same ranges in the same order. counts is copied. The buffers must
// stay untouched until kd_comm_op_wait returns.
typedef struct kd_comm_op kd_comm_op;
kd_comm_op *kd_comm_ireduce_scatter_f32(kd_comm *c, const float *send, float *recv,
                                        const size_t *counts);
// Lets started operations progress (MPI moves nonblocking collectives only inside MPI
// calls); not collective, returns at once.
void kd_comm_op_progress(kd_comm *c, kd_comm_op **ops, int n);
// Waits for op (under the watchdog, named `what`) and frees it.
void kd_comm_op_wait(kd_comm *c, kd_comm_op *op, const char *what);
// Watchdog: a thread that ends this rank (so mpirun/srun tear the job down) when one of the
// collectives above has not completed within timeout_s; its message names the collective
// and the step set by kd_comm_set_step.
void kd_comm_start_watchdog(kd_comm *c, double timeout_s);
void kd_comm_set_step(kd_comm *c, long step);
// Put a section made of many collectives and I/O (a checkpoint save or load) under the
// watchdog as one operation named `what`, so a rank frozen anywhere in it is detected and
// the message names the section. Collectives inside keep the section's watch (they do not
// end it); sections do not nest.
void kd_comm_watch_begin(kd_comm *c, const char *what);
void kd_comm_watch_end(kd_comm *c);
