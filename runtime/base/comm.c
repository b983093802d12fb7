// comm.c: MPI-backed implementation of comm.h. Large buffers go in chunks of at most
// 2^30 elements because MPI counts are int.
#include "runtime/base/comm.h"

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kd_comm {
    MPI_Comm comm;
    int rank, size;
    // watchdog: the collective in flight (name NULL when none), since when, at which step
    _Atomic(const char *) op;
    _Atomic double op_since;
    _Atomic long step;
    int in_section; // a kd_comm_watch_begin section is open (main thread only)
    double timeout_s;
    pthread_t watchdog;
    int watchdog_on;
    atomic_int stop;
    int *counts, *displs;  // per-rank shard sizes, for buffers of `shard_total`
    size_t shard_total;
};

#define mpi_check(call) mpi_check_at((call), #call, __FILE__, __LINE__)
static void mpi_check_at(int rc, const char *what, const char *file, int line) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "kdtrain: %s:%d: %s failed: %s (hint: a rank died or the network failed; "
            "rerun with the same command to resume)\n", file, line, what, msg);
    MPI_Abort(MPI_COMM_WORLD, KD_ERUNTIME);
}

int kd_comm_init(kd_comm **out, int *argc, char ***argv) {
    int provided = 0;
    mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    kd_comm *c = kd_calloc(1, sizeof *c);
    c->comm = MPI_COMM_WORLD;
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    mpi_check(MPI_Comm_rank(c->comm, &c->rank));
    mpi_check(MPI_Comm_size(c->comm, &c->size));
    *out = c;
    return KD_OK;
}

kd_comm *kd_comm_world(void) {
    static kd_comm world;
    static int made;
    if (!made) {
        world.comm = MPI_COMM_WORLD;
        mpi_check(MPI_Comm_rank(world.comm, &world.rank));
        mpi_check(MPI_Comm_size(world.comm, &world.size));
        made = 1;
    }
    return &world;
}

void kd_comm_finalize(kd_comm *c) {
    if (!c) return;
    if (c->watchdog_on) {
        atomic_store(&c->stop, 1);
        pthread_join(c->watchdog, NULL);
    }
    free(c->counts);
    free(c->displs);
    free(c);
    MPI_Finalize();
}

// ----------------------------------------------------------------------------- watchdog

static void *watchdog_main(void *arg) {
    kd_comm *c = arg;
    while (!atomic_load(&c->stop)) {
        usleep(200 * 1000);
        const char *op = atomic_load(&c->op);
        double since = atomic_load(&c->op_since);
        if (op && kd_now() - since > c->timeout_s) {
            fprintf(stderr, "kdtrain: rank %d: watchdog: collective '%s' at step %ld has not completed after %.0f s "
                    "(run.collective_timeout_s): a rank is stuck or dead; aborting so the job can be restarted and "
                    "resume from its last checkpoint\n", c->rank, op, atomic_load(&c->step), c->timeout_s);
            fflush(stderr);
            _exit(KD_ERUNTIME);  // mpirun / srun tear down the other ranks
        }
    }
    return NULL;
}

void kd_comm_start_watchdog(kd_comm *c, double timeout_s) {
    if (c->watchdog_on || timeout_s <= 0) return;
    c->timeout_s = timeout_s;
    if (pthread_create(&c->watchdog, NULL, watchdog_main, c) == 0) c->watchdog_on = 1;
}

void kd_comm_set_step(kd_comm *c, long step) { atomic_store(&c->step, step); }

// Inside a section, collectives are part of it: the section's watch stays as it is.
static void op_begin(kd_comm *c, const char *name) {
    if (c->in_section) return;
    atomic_store(&c->op_since, kd_now());
    atomic_store(&c->op, name);
}

static void op_end(kd_comm *c) {
    if (!c->in_section) atomic_store(&c->op, (const char *)NULL);
}

void kd_comm_watch_begin(kd_comm *c, const char *what) {
    op_begin(c, what);
    c->in_section = 1;
}
void kd_comm_watch_end(kd_comm *c) {
    c->in_section = 0;
    op_end(c);
}

int kd_comm_rank(const kd_comm *c) { return c->rank; }
int kd_comm_size(const kd_comm *c) { return c->size; }

void kd_comm_allreduce_f64(kd_comm *c, double *buf, size_t n) {
    const size_t step = (size_t)1 << 30;
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        op_begin(c, "allreduce(f64)");
        mpi_check(MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)k, MPI_DOUBLE, MPI_SUM, c->comm));
        op_end(c);
    }
}

double kd_comm_sum_f64(kd_comm *c, double v) {
    double r = 0;
    op_begin(c, "allreduce(sum)");
    mpi_check(MPI_Allreduce(&v, &r, 1, MPI_DOUBLE, MPI_SUM, c->comm));
    op_end(c);
    return r;
}

double kd_comm_max_f64(kd_comm *c, double v) {
    double r = 0;
    op_begin(c, "allreduce(max)");
    mpi_check(MPI_Allreduce(&v, &r, 1, MPI_DOUBLE, MPI_MAX, c->comm));
    op_end(c);
    return r;
}

int kd_comm_any(kd_comm *c, int flag) {
    int in = flag != 0, r = 0;
    op_begin(c, "allreduce(flag)");
    mpi_check(MPI_Allreduce(&in, &r, 1, MPI_INT, MPI_LOR, c->comm));
    op_end(c);
    return r;
}

int kd_comm_agree(kd_comm *c, int rc, kd_error *err) {
    int mine = rc != KD_OK ? c->rank : c->size, first = c->size;
    op_begin(c, "allreduce(agree)");
    mpi_check(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->comm));
    op_end(c);
    if (first == c->size) return KD_OK;
    kd_error e = {0};
    if (c->rank == first) {
        e.code = rc;
        if (err && err->code != KD_OK)
            memcpy(e.msg, err->msg, sizeof e.msg);
        else
            snprintf(e.msg, sizeof e.msg, "rank %d failed without a message", first);
    }
    op_begin(c, "broadcast(error)");
    mpi_check(MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, c->comm));
    op_end(c);
    if (err) *err = e;
    return e.code;
}

void kd_comm_bcast(kd_comm *c, void *buf, size_t bytes) {
    const size_t step = (size_t)1 << 30;
    op_begin(c, "broadcast");
    for (size_t i = 0; i < bytes; i += step) {
        size_t k = bytes - i < step ? bytes - i : step;
        mpi_check(MPI_Bcast((char *)buf + i, (int)k, MPI_BYTE, 0, c->comm));
    }
    op_end(c);
}

void kd_comm_gatherv_f32(kd_comm *c, const float *send, int n, float *recv, const int *counts,
                         const int *displs) {
    op_begin(c, "gather");
    mpi_check(MPI_Gatherv(send, n, MPI_FLOAT, recv, counts, displs, MPI_FLOAT, 0, c->comm));
    op_end(c);
}

static void shard_layout(kd_comm *c, size_t total) {
    if (c->counts && c->shard_total == total) return;
    // MPI counts and displacements are int: 2^31 floats (8 GiB of fp32 parameters) is the
    // limit of one flat buffer here; larger models need bucketed collectives.
    KD_ASSERT(total < (size_t)1 << 31);
    free(c->counts);
    free(c->displs);
    c->counts = kd_malloc(sizeof(int) * (size_t)c->size);
    c->displs = kd_malloc(sizeof(int) * (size_t)c->size);
    for (int r = 0; r < c->size; r++) {
        size_t lo, hi;
        kd_shard_range(total, c->size, r, &lo, &hi);
        c->counts[r] = (int)(hi - lo);
        c->displs[r] = (int)lo;
    }
    c->shard_total = total;
}

void kd_comm_reduce_scatter_f32(kd_comm *c, const float *full, float *shard, size_t total) {
    shard_layout(c, total);
    op_begin(c, "reduce_scatter(grads)");
    mpi_check(MPI_Reduce_scatter(full, shard, c->counts, MPI_FLOAT, MPI_SUM, c->comm));
    op_end(c);
}

void kd_comm_allgather_f32(kd_comm *c, float *buf, size_t total) {
    shard_layout(c, total);
    op_begin(c, "allgather(params)");
    mpi_check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, c->counts, c->displs,
                             MPI_FLOAT, c->comm));
    op_end(c);
}

struct kd_comm_op {
    MPI_Request req;
    int *counts; // (world) kept until the operation completes, as MPI requires
};

kd_comm_op *kd_comm_ireduce_scatter_f32(kd_comm *c, const float *send, float *recv,
                                        const size_t *counts) {
    kd_comm_op *op = kd_malloc(sizeof *op);
    op->counts = kd_malloc(sizeof(int) * (size_t)c->size);
    for (int r = 0; r < c->size; r++) {
        KD_ASSERT(counts[r] < (size_t)1 << 31);
        op->counts[r] = (int)counts[r];
    }
    mpi_check(MPI_Ireduce_scatter(send, recv, op->counts, MPI_FLOAT, MPI_SUM, c->comm, &op->req));
    return op;
}

void kd_comm_op_progress(kd_comm *c, kd_comm_op **ops, int n) {
    (void)c;
    for (int i = 0; i < n; i++) {
        if (!ops[i] || ops[i]->req == MPI_REQUEST_NULL) continue;
        int done = 0;
        mpi_check(MPI_Test(&ops[i]->req, &done, MPI_STATUS_IGNORE));
    }
}

void kd_comm_op_wait(kd_comm *c, kd_comm_op *op, const char *what) {
    op_begin(c, what);
    mpi_check(MPI_Wait(&op->req, MPI_STATUS_IGNORE));
    op_end(c);
    free(op->counts);
    free(op);
}

void kd_shard_range(size_t total, int world, int rank, size_t *lo, size_t *hi) {
    // 128-bit intermediate: total * rank must not overflow for any realistic size
    *lo = (size_t)((unsigned __int128)total * (unsigned)rank / (unsigned)world);
    *hi = (size_t)((unsigned __int128)total * (unsigned)(rank + 1) / (unsigned)world);
}
