// cuda_util.cuh: what every CUDA source of the backend shares: checked CUDA and cuBLAS calls
// (a failing call inside an op is a lost device or a bug: print file:line, the call and why,
// abort; ops return void by contract), the wrapper that turns a per-thread grid body of
// kernels/*_grid.h into a __global__ kernel, its launch (one thread per grid index, blocks
// of KD_CUDA_TPB) and the check that a caller's scratch is as large as the op asked.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda/reduce.cuh"

static inline void kd_cuda_die(const char *file, int line, const char *what, const char *why) {
    fprintf(stderr, "kdtrain: %s:%d: %s failed: %s\n", file, line, what, why);
    fflush(stderr);
    abort();
}

#define CUDA_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) kd_cuda_die(__FILE__, __LINE__, #call, cudaGetErrorString(e_));     \
    } while (0)

// A failing cuBLAS call inside an op is a lost device or a bug, like a failing CUDA call:
// print where, abort.
#define BLAS_CHECK(call)                                                                           \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) kd_cuda_die(__FILE__, __LINE__, #call, "cuBLAS error");   \
    } while (0)

// kname(args, n): one thread per idx in [0, n) runs body(idx, &args).
#define KD_GRID_KERNEL(kname, body, argtype)                                                       \
    __global__ void kname(argtype a, size_t n) {                                                   \
        size_t i_ = blockIdx.x * (size_t)blockDim.x + threadIdx.x;                                 \
        if (i_ < n) body(i_, &a);                                                                  \
    }

// Launches kname over n grid indices (nothing when n is 0) and checks the launch.
#define KD_GRID_LAUNCH(kname, n, args)                                                             \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (n_) {                                                                                  \
            kname<<<(unsigned)((n_ + KD_CUDA_TPB - 1) / KD_CUDA_TPB), KD_CUDA_TPB>>>(args, n_);    \
            CUDA_CHECK(cudaGetLastError());                                                        \
        }                                                                                          \
    } while (0)

// The kernel of a grid body that launch plans (kernels/*_grid.h) name: body##_k.
#define KD_GRID_KERNEL_OF(body, argtype) KD_GRID_KERNEL(body##_k, body, argtype)
// One stage of a launch plan: KD_M2G_SSD_FWD_PLAN(KD_GRID_STAGE, a) launches its kernels.
#define KD_GRID_STAGE(body, n, args) KD_GRID_LAUNCH(body##_k, n, args);

// A scratch smaller than the op's *_scratch query asked for is a caller bug.
#define KD_SCRATCH_CHECK(ws, need)                                                                 \
    do {                                                                                           \
        if ((ws).bytes < (need) || ((need) && !(ws).p))                                            \
            kd_cuda_die(__FILE__, __LINE__, "scratch", "smaller than the *_scratch query");        \
    } while (0)
