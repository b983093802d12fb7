// params.c: look-ups on the named-tensor table and the ZeRO-1 shard arithmetic (params.h).
#include "runtime/model/params.h"

#include <string.h>

int kd_params_find(const kd_param_table *pt, const char *name) {
    for (int i = 0; i < pt->n; i++)
        if (strcmp(pt->t[i].name, name) == 0) return i;
    return -1;
}
