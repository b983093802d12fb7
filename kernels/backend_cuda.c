// backend_cuda.c: kd_ops_cuda(), the CUDA table when the build has CUDA (KD_HAVE_CUDA)
// and a device answers; otherwise NULL and a one-line reason the caller prints before
// falling back to kd_ops_cpu(). Only the run's backend choice calls it, so only programs
// that may run on a GPU pull in the CUDA libraries.
#include <stddef.h>
#include <stdio.h>

#include "kernels/ops.h"

#ifdef KD_HAVE_CUDA
// kernels/cuda/ops_cuda.cu: probes cudaGetDeviceCount and returns the table or NULL + why.
const kd_ops *kd_cuda_ops_probe(char *why, size_t why_len);
const kd_ops *kd_cuda_ops_table(void);
#endif

const kd_ops *kd_ops_cuda_table(void) {
#ifdef KD_HAVE_CUDA
    return kd_cuda_ops_table();
#else
    return NULL;
#endif
}

const kd_ops *kd_ops_cuda(char *why, size_t why_len) {
#ifdef KD_HAVE_CUDA
    return kd_cuda_ops_probe(why, why_len);
#else
    if (why && why_len)
        snprintf(why, why_len, "kdtrain was built without CUDA (KD_CUDA=off or nvcc not found)");
    return NULL;
#endif
}
