// nccl.cu: the CUDA backend's collectives (kd_coll_ops, kernels/ops.h) over NCCL, so that
// data-parallel gradients and parameters move GPU to GPU without passing through the host.
// ZeRO-1 shards may differ in size by one element, which ncclReduceScatter/ncclAllGather
// (equal counts) do not allow, so a reduce-scatter is one ncclReduce per rank's range
// (root = that rank) and an all-gather one in-place ncclBroadcast per range, each set in
// one ncclGroupStart/End: the same traffic as the collective, uneven ranges allowed. Both
// run on the default stream (the one every op of this backend uses) and are waited for
// before returning. Built only when NCCL was found (KD_HAVE_NCCL); kd_cuda_coll() is NULL
// otherwise, and the trainer then stages through the host.
#include <cuda_runtime.h>
#include <stdio.h>
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

static void *nc_init(void *ctx, const void *id, int rank, int world, char *why, size_t why_len) {
    (void)ctx;
    ncclComm_t comm = NULL;
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    if (nccl_failed(ncclCommInitRank(&comm, world, uid, rank), "ncclCommInitRank", why, why_len))
        return NULL;
    return comm;
}

static void nc_fini(void *ctx, void *comm) {
    (void)ctx;
    if (comm) ncclCommDestroy((ncclComm_t)comm);
}

static void nc_reduce_scatter(void *ctx, void *comm, const float *full, float *shard,
                              const size_t *counts, const size_t *displs) {
    (void)ctx;
    ncclComm_t c = (ncclComm_t)comm;
    int world = 0, rank = 0;
    NCCL_CHECK(ncclCommCount(c, &world));
    NCCL_CHECK(ncclCommUserRank(c, &rank));
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < world; r++)
        if (counts[r])
            NCCL_CHECK(ncclReduce(full + displs[r], r == rank ? shard : NULL, counts[r],
                                  ncclFloat, ncclSum, r, c, 0));
    NCCL_CHECK(ncclGroupEnd());
    cudaError_t e = cudaStreamSynchronize(0);
    if (e != cudaSuccess) nccl_check(ncclUnhandledCudaError, cudaGetErrorString(e), __LINE__);
}

static void nc_allgather(void *ctx, void *comm, float *buf, const size_t *counts,
                         const size_t *displs) {
    (void)ctx;
    ncclComm_t c = (ncclComm_t)comm;
    int world = 0;
    NCCL_CHECK(ncclCommCount(c, &world));
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < world; r++)
        if (counts[r])
            NCCL_CHECK(ncclBroadcast(buf + displs[r], buf + displs[r], counts[r], ncclFloat, r,
                                     c, 0));
    NCCL_CHECK(ncclGroupEnd());
    cudaError_t e = cudaStreamSynchronize(0);
    if (e != cudaSuccess) nccl_check(ncclUnhandledCudaError, cudaGetErrorString(e), __LINE__);
}

static kd_coll_ops g_coll;

extern "C" const kd_coll_ops *kd_cuda_coll(void) {
    g_coll.id_bytes = sizeof(ncclUniqueId);
    g_coll.make_id = nc_make_id, g_coll.init = nc_init, g_coll.fini = nc_fini;
    g_coll.reduce_scatter = nc_reduce_scatter, g_coll.allgather = nc_allgather;
    return &g_coll;
}
#else
extern "C" const kd_coll_ops *kd_cuda_coll(void) {
    return NULL;
}
#endif
