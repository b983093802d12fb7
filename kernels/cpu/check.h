// check.h: the invariant check of the CPU kernels. The kernels sit below every other
// layer, so they carry their own: a broken invariant (a caller bug, never bad user input:
// sizes and ids are validated by the callers first) prints file:line and aborts.
#pragma once
#include <stdio.h>
#include <stdlib.h>

#define KD_CPU_ASSERT(cond)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: internal error: %s\n", __FILE__, __LINE__, #cond);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
