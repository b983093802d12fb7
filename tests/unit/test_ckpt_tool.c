// test_ckpt_tool.c: a tests-only driver for the shell tests. `ckpt ...` runs the
// `kdtrain ckpt` CLI (kd_ckpt_main) until main.c dispatches it; `save ROOT STEP SEED
// [weights]` and `check DIR SEED` save / load the fixture under mpirun at any world size,
// so a script can save on one world size and load on another. check compares bitwise.
#include <mpi.h>
#include <string.h>

#include "runtime/cli/cli.h"
#include "test_ckpt_fixture.h"

static int do_save(const char *root, int64_t step, int seed, int weights_only) {
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    kd_error err = {0};
    char out[4096];
    int rc = fx_save(root, step, seed, weights_only, 1, out, sizeof out, &err);
    if (rank == 0) {
        if (rc)
            fprintf(stderr, "save failed (%d): %s\n", rc, err.msg);
        else
            printf("saved %s on %d ranks\n", out, world);
    }
    return rc;
}

static int do_check(const char *dir, int seed) {
    int rank, world, bad = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    kd_param_table pt = fx_table(-1);
    size_t lo, hi;
    kd_shard_range(pt.total, world, rank, &lo, &hi);
    float *p = calloc(pt.total, sizeof(float)), *m = calloc(hi - lo + 1, sizeof(float)),
          *v = calloc(hi - lo + 1, sizeof(float));
    kd_train_state ts;
    kd_error err = {0};
    int rc = kd_ckpt_load(kd_comm_world(), dir, &pt, p, m, v, &ts, &err);
    if (rc) {
        fprintf(stderr, "rank %d: load failed (%d): %s\n", rank, rc, err.msg);
        return 1;
    }
    const float *bufs[3] = {p, m, v};
    for (int w = 0; w < 3; w++) {
        size_t a = w ? lo : 0, n = w ? hi - lo : pt.total;
        long k = fx_first_diff(bufs[w], w, a, n, seed);
        if (k >= 0) {
            fprintf(stderr, "FAIL rank %d/%d: %s[%zu] = %.9g, saved %.9g\n", rank, world,
                    w == 0   ? "params"
                    : w == 1 ? "m"
                             : "v",
                    a + (size_t)k, bufs[w][k], fx_value(w, a + (size_t)k, seed));
            bad = 1;
        }
    }
    kd_train_state want = fx_state(ts.step);
    if (ts.optim_step != want.optim_step || ts.rng[0] != want.rng[0] || ts.rng[3] != want.rng[3] ||
        strcmp(ts.extra[1].value, want.extra[1].value) != 0) {
        fprintf(stderr, "FAIL rank %d: state differs (optim_step %lld want %lld)\n", rank,
                (long long)ts.optim_step, (long long)want.optim_step);
        bad = 1;
    }
    if (rank == 0 && !bad)
        printf("loaded %s on %d ranks (saved on %d): params, m, v shards and state match\n", dir,
               world, ts.world_size);
    free(p), free(m), free(v), free(pt.t);
    return bad;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "ckpt") == 0) return kd_ckpt_main(argc - 1, argv + 1);
    MPI_Init(&argc, &argv);
    int rc = 2;
    if (argc >= 5 && strcmp(argv[1], "save") == 0)
        rc = do_save(argv[2], atoll(argv[3]), atoi(argv[4]),
                     argc > 5 && strcmp(argv[5], "weights") == 0);
    else if (argc == 4 && strcmp(argv[1], "check") == 0)
        rc = do_check(argv[2], atoi(argv[3]));
    else
        fprintf(
            stderr,
            "usage: test_ckpt_tool ckpt ... | save ROOT STEP SEED [weights] | check DIR SEED\n");
    int any = 0;
    MPI_Allreduce(&rc, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any;
}
