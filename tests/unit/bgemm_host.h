// bgemm_host.h: runs a batched GEMM descriptor (kernels/bgemm.h) on the host, for the tests.
// The pointer arrays come from the grid body the GPU runs (kd_bgemm_ptrs, under GRID, so
// g_reverse walks it backwards); then every entry runs a naive row-major loop or, with
// g_colmajor set, goes through kd_bgemm_colmajor and a naive column-major loop: the argument
// order kernels/cuda/mamba2_ssd.cu hands cublasSgemmBatched. Under g_reverse the entries run
// last to first too (they may run in any order on a GPU). Both loops sum over k in the same
// order, so the two paths agree bitwise when the mapping is right.
#pragma once
#include "kernels/bgemm.h"
#include "grid_host.h"

static int g_colmajor = 0; // 1: execute through the column-major mapping

// Row-major C (m,n) = alpha op(A) op(B) + beta C (ta, tb: 1 = transposed); beta 0 never reads C.
static void naive_gemm_rm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            for (int l = 0; l < k; l++)
                s += (ta ? A[(size_t)l * lda + i] : A[(size_t)i * lda + l]) *
                     (tb ? B[(size_t)j * ldb + l] : B[(size_t)l * ldb + j]);
            float *c = C + (size_t)i * ldc + j;
            *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
        }
}

// Column-major C (m,n) = alpha op1(X1) op2(X2) + beta C, the BLAS convention: element (i,j)
// of a matrix with leading dimension ld is at i + j*ld.
static void naive_gemm_cm(int op1, int op2, int m, int n, int k, float alpha, const float *X1,
                          int ld1, const float *X2, int ld2, float beta, float *C, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            for (int l = 0; l < k; l++)
                s += (op1 ? X1[l + (size_t)i * ld1] : X1[i + (size_t)l * ld1]) *
                     (op2 ? X2[j + (size_t)l * ld2] : X2[l + (size_t)j * ld2]);
            float *c = C + i + (size_t)j * ldc;
            *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
        }
}

// Runs every entry of g (the pointer arrays g->pa, pb, pc are host memory here).
static void host_bgemm(const kd_bgemm *g) {
    const size_t n = kd_bgemm_count(g);
    GRID(kd_bgemm_ptrs, n, *g);
    const kd_bgemm_cm c = kd_bgemm_colmajor(g);
    for (size_t k = 0; k < n; k++) {
        const size_t e = g_reverse ? n - 1 - k : k;
        if (g_colmajor)
            naive_gemm_cm(c.op1, c.op2, c.m, c.n, c.k, g->alpha, c.p1[e], c.ld1, c.p2[e], c.ld2,
                          g->beta, c.pc[e], c.ldc);
        else
            naive_gemm_rm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->pa[e], g->A.ld, g->pb[e],
                          g->B.ld, g->beta, g->pc[e], g->C.ld);
    }
}
