// decode.cu: the CUDA kernels of decoding (kd_decode_ops: attention over a KV cache, the
// Mamba-2 recurrent step; contracts in kernels/ops.h). kd_cuda_decode() hands the
// sub-table to kernels/cuda/ops_cuda.cu; NULL until the kernels are written.
extern "C" {
#include "kernels/ops.h"
}

extern "C" const kd_decode_ops *kd_cuda_decode(void) {
    return NULL;
}
