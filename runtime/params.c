// params.c: look-ups on the named-tensor table and the ZeRO-1 shard arithmetic (params.h).
#include "runtime/params.h"

#include <string.h>

int kd_params_find(const kd_param_table *pt, const char *name) {
    for (int i = 0; i < pt->n; i++)
        if (strcmp(pt->t[i].name, name) == 0) return i;
    return -1;
}

void kd_shard_range(size_t total, int world, int rank, size_t *lo, size_t *hi) {
    // 128-bit intermediate: total * rank must not overflow for any realistic size
    *lo = (size_t)((unsigned __int128)total * (unsigned)rank / (unsigned)world);
    *hi = (size_t)((unsigned __int128)total * (unsigned)(rank + 1) / (unsigned)world);
}
