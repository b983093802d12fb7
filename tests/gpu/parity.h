// parity.h: the harness of gpu_parity (tests/gpu/parity.c runs it, parity_cases.c holds
// the table of cases): one run of one case on one backend, seeded random inputs uploaded
// to that backend, outputs downloaded for comparison. Header-only (static inline).
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/math.h"
#include "kernels/ops.h"

// ============================================================================ the harness

#define MAX_OUT 8
#define MAX_ALLOC 32

// One run of one case on one backend.
typedef struct run {
    const kd_ops *o;
    uint64_t rng;
    void *alloc[MAX_ALLOC];
    int nalloc;
    const char *name[MAX_OUT];
    float *out[MAX_OUT]; // host copies of the outputs
    size_t nout[MAX_OUT];
    int nouts;
    int missing; // an op the case needs is NULL in this backend
} run;

static inline void die(const char *what) {
    fprintf(stderr, "gpu_parity: %s\n", what);
    exit(1);
}

static inline float frand(run *r) { // uniform in [0, 1)
    r->rng ^= r->rng << 13, r->rng ^= r->rng >> 7, r->rng ^= r->rng << 17;
    return (float)((r->rng >> 40) / (double)(1ull << 24));
}
static inline int irand(run *r, int n) {
    return (int)(frand(r) * n) % n;
}

// Backend memory holding `bytes` of host data src.
static inline void *up(run *r, const void *src, size_t bytes) {
    void *p = r->o->mem->alloc(r->o->ctx, bytes ? bytes : 4);
    if (!p) die("backend alloc failed");
    if (r->nalloc == MAX_ALLOC) die("too many buffers in one case");
    r->alloc[r->nalloc++] = p;
    if (bytes) r->o->mem->upload(r->o->ctx, p, src, bytes);
    return p;
}
// n random floats in [lo, hi) in backend memory.
static inline float *rnd(run *r, size_t n, float lo, float hi) {
    float *h = calloc(n + 1, sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = lo + (hi - lo) * frand(r);
    float *d = up(r, h, n * sizeof(float));
    free(h);
    return d;
}
// n random ints in [lo, hi) in backend memory.
static inline int32_t *irnd(run *r, size_t n, int lo, int hi) {
    int32_t *h = calloc(n + 1, sizeof(int32_t));
    for (size_t i = 0; i < n; i++) h[i] = lo + irand(r, hi - lo);
    int32_t *d = up(r, h, n * sizeof(int32_t));
    free(h);
    return d;
}
// (B,T) document ids: each row starts a new document at a few random places.
static inline int32_t *segs(run *r, int B, int T) {
    int32_t *h = malloc((size_t)B * T * sizeof(int32_t) + 4);
    for (int b = 0; b < B; b++) {
        int id = 0;
        for (int t = 0; t < T; t++) h[(size_t)b * T + t] = (t > 0 && frand(r) < 0.15f) ? ++id : id;
    }
    int32_t *d = up(r, h, (size_t)B * T * sizeof(int32_t));
    free(h);
    return d;
}
static inline kd_scratch scratch(run *r, size_t bytes) {
    kd_scratch s = {NULL, bytes};
    if (bytes) {
        s.p = r->o->mem->alloc(r->o->ctx, bytes);
        if (!s.p) die("backend alloc of scratch failed");
        r->alloc[r->nalloc++] = s.p;
    }
    return s;
}
// Records n floats of backend memory d as output `name`.
static inline void out(run *r, const char *name, const float *d, size_t n) {
    if (r->nouts == MAX_OUT) die("too many outputs in one case");
    float *h = calloc(n + 1, sizeof(float));
    r->o->mem->download(r->o->ctx, h, d, n * sizeof(float));
    r->name[r->nouts] = name, r->out[r->nouts] = h, r->nout[r->nouts++] = n;
}
// Records host values as output `name`.
static inline void out_host(run *r, const char *name, const float *h, size_t n) {
    if (r->nouts == MAX_OUT) die("too many outputs in one case");
    float *c = malloc(n * sizeof(float) + 4);
    memcpy(c, h, n * sizeof(float));
    r->name[r->nouts] = name, r->out[r->nouts] = c, r->nout[r->nouts++] = n;
}
static inline void run_free(run *r) {
    for (int i = 0; i < r->nalloc; i++) r->o->mem->free(r->o->ctx, r->alloc[i]);
    for (int i = 0; i < r->nouts; i++) free(r->out[i]);
}
// Marks the run as missing an op when fn is NULL; the case returns early.
#define NEED(r, fn)                                                                                \
    do {                                                                                           \
        if (!(fn)) {                                                                               \
            (r)->missing = 1;                                                                      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

typedef struct pcase pcase;
typedef void (*case_fn)(run *r, const pcase *c);
struct pcase {
    kd_cap cap;
    const char *op;
    case_fn fn;
    int d[8];          // shape, read by fn
    double atol, rtol; // pass: max|a-b| <= atol + rtol * max|ref|
    int quick;         // 1: in the --quick subset
};

// The table of cases (parity_cases.c).
extern const pcase g_cases[];
extern const int g_ncases;
