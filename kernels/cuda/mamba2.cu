// mamba2.cu: the CUDA kernels of the Mamba-2 mixer (kd_mamba2_ops; contracts in
// kernels/ops.h, maths in docs/mamba2.md). kd_cuda_mamba2() hands the sub-table to
// kernels/cuda/ops_cuda.cu; NULL until the kernels are written.
extern "C" {
#include "kernels/ops.h"
}

extern "C" const kd_mamba2_ops *kd_cuda_mamba2(void) {
    return NULL;
}
