// test_ckpt_fixture.h: a small parameter table with awkward shapes (1-D to 4-D, sizes that
// ZeRO-1 shards split mid-row) and deterministic contents, shared by the checkpoint tests.
// Values are pure functions of the flat index, so any rank at any world size can check
// any range exactly (comparisons are bitwise: storing float32 must lose nothing).
// fx_save writes the fixture from every rank; fx_mpi_begin/fx_mpi_end are the start and
// end of an MPI checkpoint test (one scratch directory, failures summed over ranks).
#pragma once
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "runtime/store/checkpoint.h"

static const struct {
    const char *name;
    int ndim, shape[4];
} fx_tensors[] = {
    {"embed_tokens.weight", 2, {37, 16}},
    {"layers.0.self_attn.q_proj.weight", 2, {16, 16}},
    {"layers.0.input_layernorm.weight", 1, {16}},
    {"layers.1.mixer.conv1d.weight", 3, {24, 1, 4}},
    {"layers.1.mixer.A_log", 1, {3}},
    {"layers.1.mlp.up_proj.weight", 4, {2, 3, 4, 5}},
    {"lm_head.weight", 2, {37, 16}},
};
#define FX_N ((int)(sizeof fx_tensors / sizeof fx_tensors[0]))

// Table with tensor `grow` (if >= 0) given a first dimension twice as large.
static inline kd_param_table fx_table(int grow) {
    kd_param_table pt = {FX_N, calloc(FX_N, sizeof(kd_param_info)), 0};
    for (int i = 0; i < FX_N; i++) {
        kd_param_info *p = &pt.t[i];
        snprintf(p->name, sizeof p->name, "%s", fx_tensors[i].name);
        p->ndim = fx_tensors[i].ndim;
        p->numel = 1;
        for (int d = 0; d < p->ndim; d++) {
            p->shape[d] = fx_tensors[i].shape[d] * (i == grow && d == 0 ? 2 : 1);
            p->numel *= (size_t)p->shape[d];
        }
        p->offset = pt.total;
        pt.total += p->numel;
    }
    return pt;
}

// Deterministic contents: which = 0 params, 1 m, 2 v.
static inline float fx_value(int which, size_t i, int seed) {
    if (which == 0) return (float)sin(0.37 * (double)i + seed) * 0.1f;
    if (which == 1) return (float)i * 1e-3f - 0.5f + (float)seed;
    return 1.0f / (1.0f + (float)i) + (float)seed;
}

static inline void fx_fill(float *dst, int which, size_t lo, size_t hi, int seed) {
    for (size_t i = lo; i < hi; i++) dst[i - lo] = fx_value(which, i, seed);
}

// Index of the first element of got[0..n) that differs from element lo+k of `which`, or -1.
static inline long fx_first_diff(const float *got, int which, size_t lo, size_t n, int seed) {
    for (size_t k = 0; k < n; k++) {
        float want = fx_value(which, lo + k, seed);
        if (memcmp(&got[k], &want, sizeof want) != 0) return (long)k;
    }
    return -1;
}

static inline kd_train_state fx_state(int64_t step) {
    kd_train_state ts;
    memset(&ts, 0, sizeof ts);
    ts.stage_index = 3;
    snprintf(ts.stage_name, sizeof ts.stage_name, "kd \"quoted\"");
    ts.step = step;
    ts.optim_step = step - 1;
    ts.samples_consumed = step * 32;
    ts.epoch = 2;
    ts.rng[0] = 0xfedcba9876543210ull;
    ts.rng[1] = 1;
    ts.rng[2] = 0;
    ts.rng[3] = ~0ull;
    snprintf(ts.recipe_hash, sizeof ts.recipe_hash, "%064d", 7);
    snprintf(ts.model_hash, sizeof ts.model_hash, "%064d", 9);
    ts.bad_steps = 4;
    ts.n_extra = 2;
    snprintf(ts.extra[0].key, sizeof ts.extra[0].key, "lr_scale");
    snprintf(ts.extra[0].value, sizeof ts.extra[0].value, "0.5");
    snprintf(ts.extra[1].key, sizeof ts.extra[1].key, "note");
    snprintf(ts.extra[1].value, sizeof ts.extra[1].value, "tab\there\\ \"q\"");
    return ts;
}

static inline int fx_attrs(kd_ckpt_attr *a) {
    memset(a, 0, 3 * sizeof *a);
    snprintf(a[0].name, sizeof a[0].name, "d_model");
    a[0].type = KD_ATTR_INT;
    a[0].i = 16;
    snprintf(a[1].name, sizeof a[1].name, "rope_theta");
    a[1].type = KD_ATTR_FLOAT;
    a[1].f = 10000.5;
    snprintf(a[2].name, sizeof a[2].name, "layer_types");
    a[2].type = KD_ATTR_STRING;
    snprintf(a[2].s, sizeof a[2].s, "attn,mamba2");
    return 3;
}

// Saves the fixture with contents `seed` as step `step` under root, from every rank of
// MPI_COMM_WORLD (each rank writes its ZeRO-1 shard of m and v). weights_only leaves m and
// v out; with_attrs stores fx_attrs; out (outn bytes, may be NULL) gets the new path.
static inline int fx_save(const char *root, int64_t step, int seed, int weights_only,
                          int with_attrs, char *out, size_t outn, kd_error *err) {
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    kd_param_table pt = fx_table(-1);
    size_t lo, hi;
    kd_shard_range(pt.total, world, rank, &lo, &hi);
    float *p = malloc(pt.total * sizeof(float)), *m = malloc((hi - lo + 1) * sizeof(float)),
          *v = malloc((hi - lo + 1) * sizeof(float));
    fx_fill(p, 0, 0, pt.total, seed);
    fx_fill(m, 1, lo, hi, seed);
    fx_fill(v, 2, lo, hi, seed);
    kd_train_state ts = fx_state(step);
    kd_ckpt_attr attrs[3];
    int na = with_attrs ? fx_attrs(attrs) : 0;
    kd_error_clear(err);
    int rc = kd_ckpt_save(kd_comm_world(), root, step, &pt, p, weights_only ? NULL : m,
                          weights_only ? NULL : v, &ts, na ? attrs : NULL, na, out, outn, err);
    free(p), free(m), free(v), free(pt.t);
    return rc;
}

// Starts an MPI checkpoint test: MPI_Init, check_rank/check_world for FAIL lines, and one
// scratch directory (check_tmpdir) made by rank 0 and known to all (dir, n bytes).
// Returns 0, or -1 on every rank when rank 0 could not make the directory.
static inline int fx_mpi_begin(int *argc, char ***argv, char *dir, size_t n, const char *tag) {
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &check_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &check_world);
    int bad = check_rank == 0 ? check_tmpdir(dir, n, tag) : 0;
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(dir, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD);
    return bad;
}

// Ends it: sums check_failures over ranks, rank 0 removes dir and prints ok_msg when all
// passed; MPI_Finalize. Returns the exit status (the same on every rank).
static inline int fx_mpi_end(const char *dir, const char *ok_msg) {
    MPI_Barrier(MPI_COMM_WORLD);
    int any = 0;
    MPI_Allreduce(&check_failures, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (check_rank == 0) {
        check_rmtree(dir);
        if (any)
            fprintf(stderr, "%d check(s) FAILED over %d ranks\n", any, check_world);
        else
            printf("%s\n", ok_msg);
    }
    MPI_Finalize();
    return any ? 1 : 0;
}
