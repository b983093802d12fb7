// matmul.c: the Linear layer (no bias) on the CPU, forward and backward, as three
// cblas_sgemm calls. PyTorch weight layout: w is (OC,C), out = inp . w^T.
// Called outside any OpenMP region, so OpenBLAS may use all its threads.
#include <cblas.h>

#include "kernels/cpu/cpu.h"

// out is (N,OC), inp is (N,C), w is (OC,C): out = inp . w^T (overwritten).
void kd_cpu_matmul_fwd(float *out, const float *inp, const float *w, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out,
                OC);
}

// dout is (N,OC). dinp (N,C) += dout . w ; dw (OC,C) += dout^T . inp. Either may be NULL
// (frozen weights need no dw; the first layer's input needs no dinp).
void kd_cpu_matmul_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                       int N, int C, int OC) {
    if (N <= 0 || C <= 0 || OC <= 0) return;
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 1.0f,
                    dinp, C);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
                    dw, C);
}
