// grad_comm.c: the trainer's gradient and parameter collectives on backend memory
// (grad_comm.h): MPI on host memory, the backend's own collectives on device memory, or
// staging through the host.
#include "runtime/train/grad_comm.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/base/log.h"

// Sets up the backend's communicator on every rank; 1 when every rank has one.
static int device_init(kd_grad_comm *g) {
    const kd_coll_ops *co = g->ops->coll;
    int rank = kd_comm_rank(g->comm), world = kd_comm_size(g->comm);
    char why[256] = "";
    void *id = kd_calloc(1, co->id_bytes);
    int rc = KD_OK;
    if (rank == 0 && co->make_id(g->ops->ctx, id, why, sizeof why) != 0) rc = KD_ERUNTIME;
    int failed = kd_comm_any(g->comm, rc != KD_OK);
    if (!failed) {
        kd_comm_bcast(g->comm, id, co->id_bytes);
        g->dev = co->init(g->ops->ctx, id, rank, world, why, sizeof why);
        failed = kd_comm_any(g->comm, g->dev == NULL);
    }
    free(id);
    if (failed) {
        if (g->dev) co->fini(g->ops->ctx, g->dev);
        g->dev = NULL;
        if (why[0]) kd_log_warn("rank %d: %s backend collectives unavailable: %s", rank, g->ops->name, why);
        return 0;
    }
    return 1;
}

void kd_grad_comm_init(kd_grad_comm *g, kd_comm *comm, const kd_ops *ops, size_t total) {
    memset(g, 0, sizeof *g);
    g->comm = comm, g->ops = ops, g->total = total;
    int world = kd_comm_size(comm);
    g->counts = kd_malloc(sizeof(size_t) * (size_t)world);
    g->displs = kd_malloc(sizeof(size_t) * (size_t)world);
    for (int r = 0; r < world; r++) {
        size_t lo, hi;
        kd_shard_range(total, world, r, &lo, &hi);
        g->displs[r] = lo, g->counts[r] = hi - lo;
    }
    if (ops->mem->host_visible)
        g->path = KD_GC_HOST;
    else if (world == 1)
        g->path = KD_GC_SINGLE;
    else if (ops->coll && device_init(g))
        g->path = KD_GC_DEVICE;
    else {
        g->path = KD_GC_STAGED;
        g->host = kd_malloc(sizeof(float) * (total ? total : 1));
        g->host_shard = kd_malloc(sizeof(float) * (g->counts[kd_comm_rank(comm)] + 1));
        if (kd_comm_rank(comm) == 0)
            kd_log_info("%s backend: gradients and parameters cross ranks through host memory "
                        "and MPI (no device collectives)", ops->name);
    }
}

void kd_grad_comm_free(kd_grad_comm *g) {
    if (g->dev) g->ops->coll->fini(g->ops->ctx, g->dev);
    free(g->counts), free(g->displs), free(g->host), free(g->host_shard);
    memset(g, 0, sizeof *g);
}

void kd_grad_comm_reduce_scatter(kd_grad_comm *g, const float *full, float *shard) {
    int rank = kd_comm_rank(g->comm);
    size_t lo = g->displs[rank], n = g->counts[rank];
    switch (g->path) {
    case KD_GC_HOST:
        kd_comm_reduce_scatter_f32(g->comm, full, shard, g->total);
        break;
    case KD_GC_SINGLE:
        g->ops->mem->copy(g->ops->ctx, shard, full + lo, n * sizeof(float));
        break;
    case KD_GC_DEVICE:
        kd_comm_watch_begin(g->comm, "reduce_scatter(grads, device)");
        g->ops->coll->reduce_scatter(g->ops->ctx, g->dev, full, shard, g->counts, g->displs);
        kd_comm_watch_end(g->comm);
        break;
    case KD_GC_STAGED:
        g->ops->mem->download(g->ops->ctx, g->host, full, g->total * sizeof(float));
        kd_comm_reduce_scatter_f32(g->comm, g->host, g->host_shard, g->total);
        g->ops->mem->upload(g->ops->ctx, shard, g->host_shard, n * sizeof(float));
        break;
    }
}

void kd_grad_comm_allgather(kd_grad_comm *g, float *buf) {
    int rank = kd_comm_rank(g->comm);
    size_t lo = g->displs[rank], n = g->counts[rank];
    switch (g->path) {
    case KD_GC_HOST:
        kd_comm_allgather_f32(g->comm, buf, g->total);
        break;
    case KD_GC_SINGLE:
        break;
    case KD_GC_DEVICE:
        kd_comm_watch_begin(g->comm, "allgather(params, device)");
        g->ops->coll->allgather(g->ops->ctx, g->dev, buf, g->counts, g->displs);
        kd_comm_watch_end(g->comm);
        break;
    case KD_GC_STAGED:
        g->ops->mem->download(g->ops->ctx, g->host + lo, buf + lo, n * sizeof(float));
        kd_comm_allgather_f32(g->comm, g->host, g->total);
        g->ops->mem->upload(g->ops->ctx, buf, g->host, g->total * sizeof(float));
        break;
    }
}

const char *kd_grad_comm_name(const kd_grad_comm *g) {
    static const char *names[] = {"mpi", "device", "host-staged", "single"};
    return names[g->path];
}
