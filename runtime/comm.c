// comm.c: MPI-backed implementation of comm.h. Large buffers go in chunks of at most
// 2^30 elements because MPI counts are int.
#include "runtime/comm.h"

#include <mpi.h>
#include <stdlib.h>

struct kd_comm {
    MPI_Comm comm;
    int rank, size, local_rank;
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
    MPI_Comm local;
    mpi_check(MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local));
    mpi_check(MPI_Comm_rank(local, &c->local_rank));
    MPI_Comm_free(&local);
    *out = c;
    return KD_OK;
}

void kd_comm_finalize(kd_comm *c) {
    if (!c) return;
    free(c->counts);
    free(c->displs);
    free(c);
    MPI_Finalize();
}

int kd_comm_rank(const kd_comm *c) { return c->rank; }
int kd_comm_size(const kd_comm *c) { return c->size; }
int kd_comm_local_rank(const kd_comm *c) { return c->local_rank; }
void *kd_comm_mpi(const kd_comm *c) { return (void *)&c->comm; }

void kd_comm_allreduce_f32(kd_comm *c, float *buf, size_t n) {
    const size_t step = (size_t)1 << 30;
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        mpi_check(MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)k, MPI_FLOAT, MPI_SUM, c->comm));
    }
}

double kd_comm_sum_f64(kd_comm *c, double v) {
    double r = 0;
    mpi_check(MPI_Allreduce(&v, &r, 1, MPI_DOUBLE, MPI_SUM, c->comm));
    return r;
}

double kd_comm_max_f64(kd_comm *c, double v) {
    double r = 0;
    mpi_check(MPI_Allreduce(&v, &r, 1, MPI_DOUBLE, MPI_MAX, c->comm));
    return r;
}

int kd_comm_any(kd_comm *c, int flag) {
    int in = flag != 0, r = 0;
    mpi_check(MPI_Allreduce(&in, &r, 1, MPI_INT, MPI_LOR, c->comm));
    return r;
}

void kd_comm_bcast(kd_comm *c, void *buf, size_t bytes) {
    mpi_check(MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, c->comm));
}

void kd_comm_barrier(kd_comm *c) { mpi_check(MPI_Barrier(c->comm)); }

void kd_shard_bounds(size_t total, int size, int rank, size_t *lo, size_t *hi) {
    *lo = (size_t)((unsigned __int128)total * (unsigned)rank / (unsigned)size);
    *hi = (size_t)((unsigned __int128)total * (unsigned)(rank + 1) / (unsigned)size);
}

static void shard_layout(kd_comm *c, size_t total) {
    if (c->counts && c->shard_total == total) return;
    KD_ASSERT(total / (size_t)c->size < (size_t)1 << 31);
    free(c->counts);
    free(c->displs);
    c->counts = kd_malloc(sizeof(int) * (size_t)c->size);
    c->displs = kd_malloc(sizeof(int) * (size_t)c->size);
    for (int r = 0; r < c->size; r++) {
        size_t lo, hi;
        kd_shard_bounds(total, c->size, r, &lo, &hi);
        c->counts[r] = (int)(hi - lo);
        c->displs[r] = (int)lo;  // checked: total < 2^31 * size is required for displs
    }
    KD_ASSERT(total < (size_t)1 << 31);
    c->shard_total = total;
}

void kd_comm_reduce_scatter_f32(kd_comm *c, const float *full, float *shard, size_t total) {
    shard_layout(c, total);
    mpi_check(MPI_Reduce_scatter(full, shard, c->counts, MPI_FLOAT, MPI_SUM, c->comm));
}

void kd_comm_allgather_f32(kd_comm *c, float *buf, size_t total) {
    shard_layout(c, total);
    mpi_check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, c->counts, c->displs,
                             MPI_FLOAT, c->comm));
}

_Noreturn void kd_comm_abort(kd_comm *c, int code) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(c ? c->comm : MPI_COMM_WORLD, code);
    abort();
}
