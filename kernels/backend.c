// backend.c: backend selection glue. kd_ops_cuda() hands out the CUDA table when the
// build has CUDA (KD_HAVE_CUDA) and a device answers; otherwise NULL and a one-line reason
// the caller prints before falling back to kd_ops_cpu().
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kernels/ops.h"

#ifdef KD_HAVE_CUDA
// kernels/cuda/ops_cuda.cu: probes cudaGetDeviceCount and returns the table or NULL + why.
const kd_ops *kd_cuda_ops_probe(char *why, size_t why_len);
#endif

const kd_ops *kd_ops_cuda(char *why, size_t why_len) {
#ifdef KD_HAVE_CUDA
    return kd_cuda_ops_probe(why, why_len);
#else
    if (why && why_len)
        snprintf(why, why_len, "kdtrain was built without CUDA (KD_CUDA=off or nvcc not found)");
    return NULL;
#endif
}

// Every slot after `kind` is a function pointer; a backend is complete when none is NULL.
int kd_ops_missing(const kd_ops *ops) {
    const char *p = (const char *)ops + offsetof(kd_ops, kind) + sizeof(ops->kind);
    // round up to pointer alignment: the first function pointer follows `kind`
    size_t start = (size_t)(p - (const char *)ops);
    start = (start + sizeof(void (*)(void)) - 1) / sizeof(void (*)(void)) * sizeof(void (*)(void));
    int missing = 0;
    for (size_t off = start; off + sizeof(void (*)(void)) <= sizeof(kd_ops); off += sizeof(void (*)(void))) {
        void (*fn)(void);
        memcpy(&fn, (const char *)ops + off, sizeof fn);
        missing += fn == NULL;
    }
    return missing;
}
