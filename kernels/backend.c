// backend.c: the completeness rule of kd_ops. kd_ops_supports / kd_ops_missing check the
// sub-tables against the lists of entries below (one list per sub-table, kept in step with
// ops.h by static asserts). Selecting the CUDA backend is backend_cuda.c, apart, so that
// a program that only asks what a table supports does not link the CUDA libraries.
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kernels/ops.h"

// ============================================================================ entry lists

typedef void (*any_fn)(void);
typedef struct {
    const char *name;
    size_t off; // offset of the function pointer in its sub-table
} entry;
#define E(type, f)                                                                                 \
    { #f, offsetof(type, f) }

static const entry mem_entries[] = {E(kd_mem_ops, alloc),  E(kd_mem_ops, free),
                                    E(kd_mem_ops, upload), E(kd_mem_ops, download),
                                    E(kd_mem_ops, copy),   E(kd_mem_ops, zero)};
static const entry vec_entries[] = {E(kd_vec_ops, add), E(kd_vec_ops, axpy), E(kd_vec_ops, scale),
                                    E(kd_vec_ops, sumsq)};
static const entry nn_entries[] = {
    E(kd_nn_ops, embedding_fwd), E(kd_nn_ops, embedding_bwd), E(kd_nn_ops, matmul_fwd),
    E(kd_nn_ops, matmul_bwd),    E(kd_nn_ops, rmsnorm_fwd),   E(kd_nn_ops, rmsnorm_bwd),
    E(kd_nn_ops, rope_fwd),      E(kd_nn_ops, rope_bwd),      E(kd_nn_ops, attention_scratch),
    E(kd_nn_ops, attention_fwd), E(kd_nn_ops, attention_bwd), E(kd_nn_ops, attention_probs),
    E(kd_nn_ops, swiglu_fwd),    E(kd_nn_ops, swiglu_bwd),    E(kd_nn_ops, cross_entropy)};
static const entry losses_entries[] = {
    E(kd_losses_ops, distill_full_scratch), E(kd_losses_ops, distill_full),
    E(kd_losses_ops, distill_topk_scratch), E(kd_losses_ops, distill_topk),
    E(kd_losses_ops, token_logp_fwd),       E(kd_losses_ops, token_logp_bwd)};
static const entry optim_entries[] = {E(kd_optim_ops, adamw)};
static const entry mamba2_entries[] = {
    E(kd_mamba2_ops, conv_scratch), E(kd_mamba2_ops, conv_fwd),  E(kd_mamba2_ops, conv_bwd),
    E(kd_mamba2_ops, ssd_scratch),  E(kd_mamba2_ops, ssd_fwd),   E(kd_mamba2_ops, ssd_bwd),
    E(kd_mamba2_ops, scan_ref),     E(kd_mamba2_ops, gnorm_fwd), E(kd_mamba2_ops, gnorm_bwd),
    E(kd_mamba2_ops, mat_scratch),  E(kd_mamba2_ops, mat_fwd),   E(kd_mamba2_ops, mat_bwd)};
static const entry decode_entries[] = {
    E(kd_decode_ops, attention_scratch), E(kd_decode_ops, attention),
    E(kd_decode_ops, mamba2_step_scratch), E(kd_decode_ops, mamba2_step)};
#undef E

// A sub-table is its function pointers and nothing else (kd_mem_ops: after host_visible),
// so a field added to ops.h without its line above fails the build here.
#define N_OF(list) (sizeof list / sizeof list[0])
_Static_assert(sizeof(kd_mem_ops) ==
                   offsetof(kd_mem_ops, alloc) + N_OF(mem_entries) * sizeof(any_fn),
               "mem_entries must list every op of kd_mem_ops");
_Static_assert(sizeof(kd_vec_ops) == N_OF(vec_entries) * sizeof(any_fn), "vec_entries");
_Static_assert(sizeof(kd_nn_ops) == N_OF(nn_entries) * sizeof(any_fn), "nn_entries");
_Static_assert(sizeof(kd_losses_ops) == N_OF(losses_entries) * sizeof(any_fn), "losses_entries");
_Static_assert(sizeof(kd_optim_ops) == N_OF(optim_entries) * sizeof(any_fn), "optim_entries");
_Static_assert(sizeof(kd_mamba2_ops) == N_OF(mamba2_entries) * sizeof(any_fn), "mamba2_entries");
_Static_assert(sizeof(kd_decode_ops) == N_OF(decode_entries) * sizeof(any_fn), "decode_entries");

typedef struct {
    const char *name;
    size_t off; // offset of the sub-table pointer in kd_ops
    const entry *entries;
    int n;
} subtable;

static const subtable subtables[KD_CAP_COUNT] = {
    [KD_CAP_MEM] = {"mem", offsetof(kd_ops, mem), mem_entries, (int)N_OF(mem_entries)},
    [KD_CAP_VEC] = {"vec", offsetof(kd_ops, vec), vec_entries, (int)N_OF(vec_entries)},
    [KD_CAP_NN] = {"nn", offsetof(kd_ops, nn), nn_entries, (int)N_OF(nn_entries)},
    [KD_CAP_LOSSES] = {"losses", offsetof(kd_ops, losses), losses_entries,
                       (int)N_OF(losses_entries)},
    [KD_CAP_OPTIM] = {"optim", offsetof(kd_ops, optim), optim_entries, (int)N_OF(optim_entries)},
    [KD_CAP_MAMBA2] = {"mamba2", offsetof(kd_ops, mamba2), mamba2_entries,
                       (int)N_OF(mamba2_entries)},
    [KD_CAP_DECODE] = {"decode", offsetof(kd_ops, decode), decode_entries,
                       (int)N_OF(decode_entries)},
};

// ============================================================================ queries

static const void *table_of(const kd_ops *ops, const subtable *s) {
    const void *t;
    memcpy(&t, (const char *)ops + s->off, sizeof t);
    return t;
}

static int entry_present(const void *table, const entry *e) {
    any_fn fn;
    memcpy(&fn, (const char *)table + e->off, sizeof fn);
    return fn != NULL;
}

const char *kd_cap_name(kd_cap cap) {
    return (unsigned)cap < KD_CAP_COUNT ? subtables[cap].name : "?";
}

int kd_ops_supports(const kd_ops *ops, kd_cap cap) {
    if ((unsigned)cap >= KD_CAP_COUNT) return 0;
    const subtable *s = &subtables[cap];
    const void *t = table_of(ops, s);
    if (!t) return 0;
    for (int i = 0; i < s->n; i++)
        if (!entry_present(t, &s->entries[i])) return 0;
    return 1;
}

// Appends ", what" (or "what" first) to names, truncating silently.
static void note(char *names, size_t len, const char *what) {
    if (!names || !len) return;
    size_t k = strlen(names);
    if (k + 1 < len) snprintf(names + k, len - k, "%s%s", k ? ", " : "", what);
}

int kd_ops_missing(const kd_ops *ops, char *names, size_t names_len) {
    if (names && names_len) names[0] = '\0';
    int missing = 0;
    char what[96];
    for (int c = 0; c < KD_CAP_COUNT; c++) {
        const subtable *s = &subtables[c];
        const void *t = table_of(ops, s);
        if (!t) {
            missing += s->n;
            snprintf(what, sizeof what, "%s (%d ops)", s->name, s->n);
            note(names, names_len, what);
            continue;
        }
        for (int i = 0; i < s->n; i++) {
            if (entry_present(t, &s->entries[i])) continue;
            missing++;
            snprintf(what, sizeof what, "%s.%s", s->name, s->entries[i].name);
            note(names, names_len, what);
        }
    }
    return missing;
}
