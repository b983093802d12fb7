// reduce.cuh: the block-wide reduction shared by the CUDA kernels (ops_cuda.cu, losses.cu).
// Called by every thread of a block of KD_CUDA_TPB threads (a power of two); every thread
// gets the result. The reduction tree is fixed, so a result does not depend on timing.
#pragma once
#include <math.h>

#define KD_CUDA_TPB 256 // threads per block of every row kernel

struct kd_cuda_sum {
    template <typename T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct kd_cuda_max {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
    __device__ double operator()(double a, double b) const { return fmax(a, b); }
};

// op over the v of the block's threads (op: kd_cuda_sum or kd_cuda_max).
template <typename T, typename Op> __device__ T kd_block_reduce(T v, Op op) {
    __shared__ T sh[KD_CUDA_TPB];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = KD_CUDA_TPB / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] = op(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    T r = sh[0];
    __syncthreads(); // sh is reused by the next reduction
    return r;
}
