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
    free(g->blo), free(g->bhi), free(g->req);
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

// ----------------------------------------------------------------------------- buckets

int kd_grad_comm_set_buckets(kd_grad_comm *g, const size_t *bounds, int n, size_t bucket_floats) {
    free(g->blo), free(g->bhi), free(g->req);
    g->blo = g->bhi = NULL, g->req = NULL, g->nb = 0;
    const kd_coll_ops *co = g->ops->coll;
    int can = g->path == KD_GC_HOST ||
              (g->path == KD_GC_DEVICE && co->reduce_scatter_start && co->reduce_scatter_wait);
    if (!can || kd_comm_size(g->comm) == 1 || bucket_floats == 0 || n <= 0) return 0;
    g->blo = kd_malloc(sizeof(size_t) * (size_t)n);
    g->bhi = kd_malloc(sizeof(size_t) * (size_t)n);
    size_t top = g->total;
    for (int i = 0; i < n; i++) {
        KD_ASSERT(bounds[i] <= top && (i + 1 < n || bounds[i] == 0));
        if (top > bounds[i] && (top - bounds[i] >= bucket_floats || bounds[i] == 0)) {
            g->blo[g->nb] = bounds[i], g->bhi[g->nb] = top, g->nb++;
            top = bounds[i];
        }
    }
    g->req = kd_calloc((size_t)(g->nb ? g->nb : 1), sizeof(kd_comm_op *));
    return g->nb > 0;
}

// Starts bucket i: each rank receives the sum of the part of [blo, bhi) inside its shard.
static void bucket_start(kd_grad_comm *g, int i) {
    int world = kd_comm_size(g->comm), rank = kd_comm_rank(g->comm);
    size_t a = g->blo[i], b = g->bhi[i];
    size_t *cnt = kd_malloc(sizeof(size_t) * (size_t)world),
           *dsp = kd_malloc(sizeof(size_t) * (size_t)world);
    for (int r = 0; r < world; r++) { // the intersection of [a, b) and rank r's shard
        size_t lo = g->displs[r] > a ? g->displs[r] : a,
               hi = g->displs[r] + g->counts[r] < b ? g->displs[r] + g->counts[r] : b;
        dsp[r] = lo, cnt[r] = hi > lo ? hi - lo : 0;
    }
    float *dst = g->shard + (cnt[rank] ? dsp[rank] - g->displs[rank] : 0);
    if (g->path == KD_GC_HOST)
        g->req[i] = kd_comm_ireduce_scatter_f32(g->comm, g->full + a, dst, cnt);
    else
        g->ops->coll->reduce_scatter_start(g->ops->ctx, g->dev, g->full, dst, cnt, dsp);
    free(cnt), free(dsp);
}

void kd_grad_comm_begin(kd_grad_comm *g, const float *full, float *shard) {
    KD_ASSERT(g->nb > 0 && g->launched == 0);
    g->full = full, g->shard = shard, g->last_lo = (size_t)-1;
}

void kd_grad_comm_ready(kd_grad_comm *g, size_t lo) {
    if (!g->full) return; // not in a step (e.g. an evaluation's backward)
    if (lo >= g->last_lo)
        kd_panic(__FILE__, __LINE__, "gradients [%zu, %zu) reported final twice: the step ran "
                 "a second backward pass (a task's step must run one)", lo, g->total);
    g->last_lo = lo;
    while (g->launched < g->nb && g->blo[g->launched] >= lo) bucket_start(g, g->launched++);
    if (g->path == KD_GC_HOST) kd_comm_op_progress(g->comm, g->req, g->launched);
}

void kd_grad_comm_finish(kd_grad_comm *g) {
    KD_ASSERT(g->full != NULL);
    while (g->launched < g->nb) bucket_start(g, g->launched++);
    if (g->path == KD_GC_HOST) {
        for (int i = 0; i < g->nb; i++) {
            kd_comm_op_wait(g->comm, g->req[i], "reduce_scatter(grads, bucket)");
            g->req[i] = NULL;
        }
    } else {
        kd_comm_watch_begin(g->comm, "reduce_scatter(grads, device buckets)");
        g->ops->coll->reduce_scatter_wait(g->ops->ctx, g->dev);
        kd_comm_watch_end(g->comm);
    }
    g->launched = 0, g->full = NULL, g->shard = NULL;
}

const char *kd_grad_comm_name(const kd_grad_comm *g) {
    static const char *names[] = {"mpi", "device", "host-staged", "single"};
    return names[g->path];
}
