// test_grad_comm.c: the trainer's gradient reduce-scatter and parameter all-gather
// (runtime/train/grad_comm.c) under a real mpirun, on each of its paths: host memory (MPI
// on the buffers), device memory staged through the host, device memory with the
// backend's own collectives, and a device setup that fails on rank 0 (must fall back to
// staging on every rank). "Device memory" is the CPU backend with host_visible cleared,
// and the backend collectives are an MPI stand-in with NCCL's contract (id made on rank 0,
// broadcast, init on every rank; one reduce per rank's range, one broadcast per range), so
// everything but NCCL itself is exercised here. Every path must give each rank the exact
// sum of its shard and the exact gathered buffer (small integers: sums are exact). The
// bucketed reduce-scatter that overlaps the backward is checked the same way.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/train/grad_comm.h"

#define TOTAL 1001

static int g_bad = 0;
static int g_fail_id = 0; // the stand-in's make_id fails (the fallback case)

// ---------------------------------------------------------------- MPI stand-in for NCCL
static int fake_make_id(void *ctx, void *id, char *why, size_t why_len) {
    (void)ctx;
    if (g_fail_id) {
        snprintf(why, why_len, "stand-in: no id");
        return 1;
    }
    memset(id, 0x5a, 16);
    return 0;
}
static void *fake_init(void *ctx, const void *id, int rank, int world, char *why, size_t wl) {
    (void)ctx, (void)rank, (void)why, (void)wl;
    static int handle;
    int mine = ((const unsigned char *)id)[7] == 0x5a, all = 0, n = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    if (all != n || n != world) g_bad++, fprintf(stderr, "FAIL: id did not reach every rank\n");
    return &handle;
}
static void fake_fini(void *ctx, void *comm) {
    (void)ctx, (void)comm;
}
static void fake_reduce_scatter(void *ctx, void *comm, const float *full, float *shard,
                                const size_t *counts, const size_t *displs) {
    (void)ctx, (void)comm;
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    for (int r = 0; r < world; r++)
        MPI_Reduce(full + displs[r], r == rank ? shard : NULL, (int)counts[r], MPI_FLOAT, MPI_SUM,
                   r, MPI_COMM_WORLD);
}
static void fake_allgather(void *ctx, void *comm, float *buf, const size_t *counts,
                           const size_t *displs) {
    (void)ctx, (void)comm;
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    for (int r = 0; r < world; r++)
        MPI_Bcast(buf + displs[r], (int)counts[r], MPI_FLOAT, r, MPI_COMM_WORLD);
}
// The stand-in's "start" completes at once (MPI, blocking): what it checks is the ranges
// and destinations the buckets hand it, not asynchrony.
static int g_waits = 0;
static void fake_wait(void *ctx, void *comm) {
    (void)ctx, (void)comm;
    g_waits++;
}
static const kd_coll_ops fake_coll = {16,           fake_make_id,   fake_init,
                                      fake_fini,    fake_reduce_scatter, fake_allgather,
                                      fake_reduce_scatter, fake_wait};
static const kd_coll_ops fake_coll_sync = {16,        fake_make_id,   fake_init, fake_fini,
                                           fake_reduce_scatter, fake_allgather, NULL, NULL};

// ---------------------------------------------------------------- one path
static void run_path(const kd_ops *ops, const char *want_path, kd_comm *comm) {
    int rank = kd_comm_rank(comm), world = kd_comm_size(comm);
    kd_grad_comm gc;
    kd_grad_comm_init(&gc, comm, ops, TOTAL);
    if (strcmp(kd_grad_comm_name(&gc), want_path) != 0)
        g_bad++, fprintf(stderr, "FAIL rank %d: path %s, expected %s\n", rank,
                         kd_grad_comm_name(&gc), want_path);
    size_t lo, hi;
    kd_shard_range(TOTAL, world, rank, &lo, &hi);
    float *full = malloc(sizeof(float) * TOTAL), *shard = malloc(sizeof(float) * (hi - lo + 1));
    for (int i = 0; i < TOTAL; i++) full[i] = (float)(rank * 1000 + i);
    for (size_t i = 0; i <= hi - lo; i++) shard[i] = -1.0f;
    kd_grad_comm_reduce_scatter(&gc, full, shard);
    int bad = 0;
    for (size_t i = lo; i < hi; i++) {
        float want = (float)(1000 * world * (world - 1) / 2 + world * (int)i);
        bad += shard[i - lo] != want;
    }
    // all-gather: rank r's range holds r*10000+i; elsewhere garbage before the call
    for (int i = 0; i < TOTAL; i++) full[i] = -7.0f;
    for (size_t i = lo; i < hi; i++) full[i] = (float)(rank * 10000 + (int)i);
    kd_grad_comm_allgather(&gc, full);
    for (int r = 0; r < world; r++) {
        size_t a, b;
        kd_shard_range(TOTAL, world, r, &a, &b);
        for (size_t i = a; i < b; i++) bad += full[i] != (float)(r * 10000 + (int)i);
    }
    if (bad) g_bad++, fprintf(stderr, "FAIL rank %d path %s: %d wrong values\n", rank, want_path, bad);
    else if (rank == 0) printf("ok: %s path: reduce-scatter and all-gather exact\n", want_path);
    kd_grad_comm_free(&gc);
    free(full), free(shard);
}

// ---------------------------------------------------------------- buckets
// The reduce-scatter in buckets (kd_grad_comm_set_buckets/begin/ready/finish) must give the
// same exact shard as the plain one, whatever the bucket size, whichever ready calls came
// (finish starts the rest), two steps in a row.
static void run_buckets(const kd_ops *ops, const char *path, kd_comm *comm) {
    int rank = kd_comm_rank(comm), world = kd_comm_size(comm);
    static const size_t bounds[] = {900, 700, 650, 400, 120, 0};
    static const struct {
        size_t floats;
        int want_nb;
    } cases[] = {{1, 6}, {250, 4}, {100000, 1}};
    size_t lo, hi;
    kd_shard_range(TOTAL, world, rank, &lo, &hi);
    float *full = malloc(sizeof(float) * TOTAL), *shard = malloc(sizeof(float) * (hi - lo + 1));
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        kd_grad_comm gc;
        kd_grad_comm_init(&gc, comm, ops, TOTAL);
        int on = kd_grad_comm_set_buckets(&gc, bounds, 6, cases[c].floats);
        if (world == 1 || !on) {
            if (world > 1) g_bad++, fprintf(stderr, "FAIL %s: buckets refused\n", path);
            kd_grad_comm_free(&gc);
            continue;
        }
        if (gc.nb != cases[c].want_nb)
            g_bad++, fprintf(stderr, "FAIL %s: %zu floats: %d buckets, want %d\n", path,
                             cases[c].floats, gc.nb, cases[c].want_nb);
        int bad = 0;
        for (int step = 0; step < 2; step++) {
            for (int i = 0; i < TOTAL; i++) full[i] = (float)(rank * 1000 + i + step);
            for (size_t i = 0; i <= hi - lo; i++) shard[i] = -1.0f;
            kd_grad_comm_begin(&gc, full, shard);
            kd_grad_comm_ready(&gc, 900); // step 1: the backward's calls stop early (a failure)
            if (step == 0)
                for (int i = 1; i < 6; i++) kd_grad_comm_ready(&gc, bounds[i]);
            kd_grad_comm_finish(&gc);
            for (size_t i = lo; i < hi; i++)
                bad += shard[i - lo] != (float)(1000 * world * (world - 1) / 2 + world * ((int)i + step));
        }
        if (bad) g_bad++, fprintf(stderr, "FAIL rank %d %s buckets of %zu: %d wrong\n", rank, path, cases[c].floats, bad);
        else if (rank == 0) printf("ok: %s path, %d bucket(s): exact\n", path, gc.nb);
        kd_grad_comm_free(&gc);
    }
    free(full), free(shard);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    kd_comm *comm = kd_comm_world();
    const kd_ops *cpu = kd_ops_cpu();
    kd_mem_ops dev_mem = *cpu->mem;
    dev_mem.host_visible = 0; // as if the buffers were device memory
    kd_ops staged = *cpu, device = *cpu;
    staged.mem = &dev_mem, staged.coll = NULL;
    device.mem = &dev_mem, device.coll = &fake_coll;
    run_path(cpu, "mpi", comm);
    run_path(&staged, kd_comm_size(comm) > 1 ? "host-staged" : "single", comm);
    run_path(&device, kd_comm_size(comm) > 1 ? "device" : "single", comm);
    run_buckets(cpu, "mpi", comm);
    run_buckets(&device, "device", comm);
    if (kd_comm_size(comm) > 1 && g_waits != 6) // one wait per step of the three cases
        g_bad++, fprintf(stderr, "FAIL: %d waits on the device collectives, want 6\n", g_waits);
    kd_ops device_sync = device;
    device_sync.coll = &fake_coll_sync; // no start/wait: no buckets, the plain path stays
    {
        kd_grad_comm gc;
        kd_grad_comm_init(&gc, comm, &device_sync, TOTAL);
        static const size_t b[] = {500, 0};
        if (kd_grad_comm_set_buckets(&gc, b, 2, 1))
            g_bad++, fprintf(stderr, "FAIL: buckets without reduce_scatter_start\n");
        kd_grad_comm_free(&gc);
    }
    g_fail_id = 1;
    run_path(&device, kd_comm_size(comm) > 1 ? "host-staged" : "single", comm);
    int any = 0;
    MPI_Allreduce(&g_bad, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : 0;
}
