// bgemm.h: the description of one batched row-major GEMM over (b, h, chunk) blocks, shared by
// the host and the device. Callers: the chunked SSD's GEMM plans (kernels/mamba2_grid_ssd_gemm.h),
// run by kernels/cuda/mamba2_ssd.cu through cublasSgemmBatched and by tests/unit/test_mamba2_grid.c
// through a naive host loop. Invariants: a descriptor only does address arithmetic (its base
// pointers may be device memory); batch entry e = (b*nh + h)*nc + (c - c0) and no two entries
// write the same element of C (so the entries may run in any order); kd_bgemm_colmajor is the
// single place where the row-major description becomes cuBLAS's column-major argument order.
#pragma once
#include <stddef.h>

#include "kernels/math.h" // KD_HD

// One operand: the block of entry (b, h, c) starts at base + b*sb + (h/hdiv)*sh + c*sc and is
// row-major with row stride ld. hdiv = H/n_kv lets head h read kv head h/hdiv (GQA); 1 else.
typedef struct kd_bgemm_op {
    const float *in; // A and B operands
    float *out;      // the C operand
    size_t sb, sh, sc;
    int hdiv, ld;
} kd_bgemm_op;

// Row-major C (m,n) = alpha op(A) op(B) + beta C per entry; op(A) is (m,k): A (m,k) when ta
// is 0, A^T of a stored (k,m) when ta is 1; op(B) is (k,n) likewise. beta == 0 never reads C.
// The entries are b < nb, h < nh, c in [c0, c0+nc); pa, pb, pc (count entries each, memory
// the executor reads: device memory on a GPU) receive the block pointers (kd_bgemm_ptrs).
typedef struct kd_bgemm {
    int ta, tb, m, n, k;
    float alpha, beta;
    int nb, nh, nc, c0;
    kd_bgemm_op A, B, C;
    const float **pa, **pb;
    float **pc;
} kd_bgemm;

static inline size_t kd_bgemm_count(const kd_bgemm *g) {
    return (size_t)g->nb * g->nh * g->nc;
}

KD_HD static inline size_t kd_bgemm_off(const kd_bgemm_op *o, size_t b, int h, int c) {
    return b * o->sb + (size_t)(h / o->hdiv) * o->sh + (size_t)c * o->sc;
}

// Grid body (count threads): the pointers of entry e.
KD_HD static inline void kd_bgemm_ptrs(size_t e, const kd_bgemm *g) {
    const int c = g->c0 + (int)(e % (size_t)g->nc), h = (int)(e / g->nc % (size_t)g->nh);
    const size_t b = e / ((size_t)g->nc * g->nh);
    g->pa[e] = g->A.in + kd_bgemm_off(&g->A, b, h, c);
    g->pb[e] = g->B.in + kd_bgemm_off(&g->B, b, h, c);
    g->pc[e] = g->C.out + kd_bgemm_off(&g->C, b, h, c);
}

// The same product as a column-major call: a row-major (r,s) block with stride ld is the
// column-major (s,r) block with leading dimension ld, its transpose. So row-major
// C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: B comes first with B's flag (its
// stored matrix read column-major is already B^T when tb is 0), then A with A's flag, and
// m and n swap: gemm(op1, op2, m', n', k, alpha, p1, ld1, p2, ld2, beta, pc, ldc) computes
// column-major C'[i + j*ldc] = sum_l op1(X1)[i,l] op2(X2)[l,j] (op = 1: transposed).
typedef struct kd_bgemm_cm {
    int op1, op2, m, n, k, ld1, ld2, ldc;
    const float *const *p1, *const *p2;
    float *const *pc;
} kd_bgemm_cm;

static inline kd_bgemm_cm kd_bgemm_colmajor(const kd_bgemm *g) {
    kd_bgemm_cm c;
    c.op1 = g->tb, c.op2 = g->ta;
    c.m = g->n, c.n = g->m, c.k = g->k;
    c.p1 = g->pb, c.ld1 = g->B.ld;
    c.p2 = g->pa, c.ld2 = g->A.ld;
    c.pc = g->pc, c.ldc = g->C.ld;
    return c;
}

// BLAS's rule for the leading dimensions of a column-major call (cuBLAS answers
// CUBLAS_STATUS_INVALID_VALUE otherwise): each at least its stored matrix's row count.
static inline int kd_bgemm_cm_valid(const kd_bgemm_cm *c) {
    const int r1 = c->op1 ? c->k : c->m, r2 = c->op2 ? c->n : c->k;
    return c->ld1 >= (r1 > 1 ? r1 : 1) && c->ld2 >= (r2 > 1 ? r2 : 1) &&
           c->ldc >= (c->m > 1 ? c->m : 1);
}
