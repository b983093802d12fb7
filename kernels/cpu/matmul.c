// matmul.c: the Linear layer (no bias) on the CPU, forward and backward, as three sgemm
// products. PyTorch weight layout: w is (OC,C), out = inp . w^T.
// Threading: the backend runs OpenBLAS single-threaded (kd_cpu_blas_single_thread) and
// splits each product into row panels, one per OpenMP thread. One thread pool for the
// whole backend: OpenBLAS's own pool, left spinning after each product, used to steal
// ~30% of the two cores from the OpenMP loops around it (docs/performance.md).
#include <cblas.h>
#include <omp.h>

#include "kernels/cpu/cpu.h"

// Rows per panel are rounded to this (a multiple of the sgemm kernels' register tiles).
#define KD_MM_ALIGN 32
// Below this many multiply-adds a product runs on the calling thread only.
#define KD_MM_PAR_MIN (1 << 18)

void kd_cpu_blas_single_thread(void) {
    openblas_set_num_threads(1);
}

// C (M,N) = alpha op(A) op(B) + beta C, row-major, split over the M rows of C. Row m of
// op(A) starts at A + m*lda (NoTrans) or A + m (Trans). Runs on the calling thread when
// already inside a parallel region or when the product is small.
static void par_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K,
                      float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc) {
    int nt = omp_in_parallel() || (double)M * N * K < KD_MM_PAR_MIN ? 1 : omp_get_max_threads();
    if (nt <= 1) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int rows = (M + nt - 1) / nt;
    rows = (rows + KD_MM_ALIGN - 1) / KD_MM_ALIGN * KD_MM_ALIGN;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int m0 = 0; m0 < M; m0 += rows) {
        int mr = m0 + rows < M ? rows : M - m0;
        const float *a = ta == CblasNoTrans ? A + (size_t)m0 * lda : A + m0;
        cblas_sgemm(CblasRowMajor, ta, tb, mr, N, K, alpha, a, lda, B, ldb, beta,
                    C + (size_t)m0 * ldc, ldc);
    }
}

// out is (N,OC), inp is (N,C), w is (OC,C): out = inp . w^T (overwritten).
void kd_cpu_matmul_fwd(void *ctx, float *out, const float *inp, const float *w, int N, int C,
                       int OC) {
    (void)ctx;
    if (N <= 0 || OC <= 0) return;
    par_sgemm(CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
}

// dout is (N,OC). dinp (N,C) = dout . w (overwritten) ; dw (OC,C) += dout^T . inp. Either
// may be NULL (frozen weights need no dw; the first layer's input needs no dinp).
void kd_cpu_matmul_bwd(void *ctx, float *dinp, float *dw, const float *dout, const float *inp,
                       const float *w, int N, int C, int OC) {
    (void)ctx;
    if (N <= 0 || C <= 0 || OC <= 0) return;
    if (dinp) par_sgemm(CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 0.0f, dinp, C);
    if (dw) par_sgemm(CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
}
