// grid_host.h: runs the CUDA kernels' grid bodies (kernels/*_grid.h) on the host, for the
// grid tests. GRID runs body over idx = 0..n-1 as a CUDA grid does; a GPU runs the threads
// of a stage in any order, so the tests also run every stage backwards (g_reverse = 1) and
// require bitwise equal results: no thread of a stage may read what another thread of it
// writes. HOST_STAGE runs one stage of a launch plan (the *_PLAN lists of the grid
// headers), so a test executes exactly the stages and grid sizes the .cu launches.
#pragma once
#include <stddef.h>

static int g_reverse = 0; // 1: run every stage's grid backwards
#define GRID(body, n, args)                                                                        \
    do {                                                                                           \
        const size_t n_ = (size_t)(n);                                                             \
        for (size_t k_ = 0; k_ < n_; k_++) body(g_reverse ? n_ - 1 - k_ : k_, &(args));            \
    } while (0)
#define HOST_STAGE(body, n, args) GRID(body, n, args);
