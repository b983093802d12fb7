// nccl.cu: the CUDA backend's collectives (kd_coll_ops, kernels/ops.h) over NCCL, so that
// data-parallel gradients and parameters move GPU to GPU without passing through the host.
// ZeRO-1 shards may differ in size by one element, which ncclReduceScatter/ncclAllGather
// (equal counts) do not allow, so a reduce-scatter is one ncclReduce per rank's range
// (root = that rank) and an all-gather one in-place ncclBroadcast per range, each set in
// one ncclGroupStart/End: the same traffic as the collective, uneven ranges allowed. Both
// run on the default stream (the one every op of this backend uses) and are waited for
// before returning. The gradient buckets that overlap the backward (reduce_scatter_start)
// run on the communicator's own stream instead, created non-blocking (the legacy default
// stream would otherwise serialise with it), ordered after the work queued so far by an
// event; reduce_scatter_wait makes the default stream wait for them. Built only when NCCL
// was found (KD_HAVE_NCCL); kd_cuda_coll() is NULL otherwise, and the trainer then stages
// through the host.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "kernels/ops.h"
}

#ifdef KD_HAVE_NCCL
#include <nccl.h>

static int nccl_failed(ncclResult_t r, const char *what, char *why, size_t why_len) {
    if (r == ncclSuccess) return 0;
    if (why && why_len) snprintf(why, why_len, "%s: %s", what, ncclGetErrorString(r));
    return 1;
}

// A failing collective in the middle of a step is a lost peer or device: print, abort (the
// launcher then ends the job; the run resumes from its last checkpoint).
static void nccl_check(ncclResult_t r, const char *what, int line) {
    if (r == ncclSuccess) return;
    fprintf(stderr, "kdtrain: kernels/cuda/nccl.cu:%d: %s failed: %s (hint: NCCL_DEBUG=INFO "
            "shows why)\n", line, what, ncclGetErrorString(r));
    fflush(stderr);
    abort();
}
#define NCCL_CHECK(call) nccl_check((call), #call, __LINE__)

static int nc_make_id(void *ctx, void *id, char *why, size_t why_len) {
    (void)ctx;
    return nccl_failed(ncclGetUniqueId((ncclUniqueId *)id), "ncclGetUniqueId", why, why_len);
}

// The communicator with the stream and events of its overlapped reduce-scatters.
typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    cudaEvent_t queued, done;
} nc_comm;

static int cuda_failed(cudaError_t e, const char *what, char *why, size_t why_len) {
    if (e == cudaSuccess) return 0;
    if (why && why_len) snprintf(why, why_len, "%s: %s", what, cudaGetErrorString(e));
    return 1;
}

static void nc_fini(void *ctx, void *comm) {
    (void)ctx;
    nc_comm *c = (nc_comm *)comm;
    if (!c) return;
    if (c->comm) ncclCommDestroy(c->comm);
    if (c->stream) cudaStreamDestroy(c->stream);
    if (c->queued) cudaEventDestroy(c->queued);
    if (c->done) cudaEventDestroy(c->done);
    free(c);
}

static void *nc_init(void *ctx, const void *id, int rank, int world, char *why, size_t why_len) {
    nc_comm *c = (nc_comm *)calloc(1, sizeof *c);
    if (!c) return snprintf(why, why_len, "out of host memory"), (void *)NULL;
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    if (nccl_failed(ncclCommInitRank(&c->comm, world, uid, rank), "ncclCommInitRank", why,
                    why_len) ||
        cuda_failed(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking),
                    "cudaStreamCreateWithFlags", why, why_len) ||
        cuda_failed(cudaEventCreateWithFlags(&c->queued, cudaEventDisableTiming),
                    "cudaEventCreateWithFlags", why, why_len) ||
        cuda_failed(cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming),
                    "cudaEventCreateWithFlags", why, why_len)) {
        nc_fini(ctx, c);
        return NULL;
    }
    return c;
}

static void cuda_or_die(cudaError_t e, int line) {
    if (e != cudaSuccess) nccl_check(ncclUnhandledCudaError, cudaGetErrorString(e), line);
}

// One ncclReduce per rank's (non-empty) range, grouped, on stream s.
static void reduce_ranges(ncclComm_t c, const float *full, float *shard, const size_t *counts,
                          const size_t *displs, cudaStream_t s) {
    int world = 0, rank = 0;
    NCCL_CHECK(ncclCommCount(c, &world));
    NCCL_CHECK(ncclCommUserRank(c, &rank));
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < world; r++)
        if (counts[r])
            NCCL_CHECK(ncclReduce(full + displs[r], r == rank ? shard : NULL, counts[r],
                                  ncclFloat, ncclSum, r, c, s));
    NCCL_CHECK(ncclGroupEnd());
}

static void nc_reduce_scatter(void *ctx, void *comm, const float *full, float *shard,
                              const size_t *counts, const size_t *displs) {
    (void)ctx;
    reduce_ranges(((nc_comm *)comm)->comm, full, shard, counts, displs, 0);
    cuda_or_die(cudaStreamSynchronize(0), __LINE__);
}

static void nc_reduce_scatter_start(void *ctx, void *comm, const float *full, float *shard,
                                    const size_t *counts, const size_t *displs) {
    (void)ctx;
    nc_comm *c = (nc_comm *)comm;
    cuda_or_die(cudaEventRecord(c->queued, 0), __LINE__); // the gradients' kernels so far
    cuda_or_die(cudaStreamWaitEvent(c->stream, c->queued, 0), __LINE__);
    reduce_ranges(c->comm, full, shard, counts, displs, c->stream);
}

static void nc_reduce_scatter_wait(void *ctx, void *comm) {
    (void)ctx;
    nc_comm *c = (nc_comm *)comm;
    cuda_or_die(cudaEventRecord(c->done, c->stream), __LINE__);
    cuda_or_die(cudaStreamWaitEvent(0, c->done, 0), __LINE__);
}

static void nc_allgather(void *ctx, void *comm, float *buf, const size_t *counts,
                         const size_t *displs) {
    (void)ctx;
    ncclComm_t c = ((nc_comm *)comm)->comm;
    int world = 0;
    NCCL_CHECK(ncclCommCount(c, &world));
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < world; r++)
        if (counts[r])
            NCCL_CHECK(ncclBroadcast(buf + displs[r], buf + displs[r], counts[r], ncclFloat, r,
                                     c, 0));
    NCCL_CHECK(ncclGroupEnd());
    cuda_or_die(cudaStreamSynchronize(0), __LINE__);
}

static kd_coll_ops g_coll;

extern "C" const kd_coll_ops *kd_cuda_coll(void) {
    g_coll.id_bytes = sizeof(ncclUniqueId);
    g_coll.make_id = nc_make_id, g_coll.init = nc_init, g_coll.fini = nc_fini;
    g_coll.reduce_scatter = nc_reduce_scatter, g_coll.allgather = nc_allgather;
    g_coll.reduce_scatter_start = nc_reduce_scatter_start;
    g_coll.reduce_scatter_wait = nc_reduce_scatter_wait;
    return &g_coll;
}
#else
extern "C" const kd_coll_ops *kd_cuda_coll(void) {
    return NULL;
}
#endif
