// hash.c: 64-bit FNV-1a (hash.h).
#include "runtime/base/hash.h"

uint64_t kd_fnv1a64(const void *data, size_t n) {
    return kd_fnv1a64_basis(0xcbf29ce484222325ULL, data, n);
}

uint64_t kd_fnv1a64_basis(uint64_t basis, const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = basis;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
