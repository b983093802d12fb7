// test_kernels_fd.c: every backward kernel of the CPU backend against central finite
// differences of L = sum(out * R) (R random, fixed), taken along random unit directions
// of each input. Also checks the accumulate (+=) vs OVERWRITE contracts of kernels/ops.h
// by pre-filling gradient buffers with random values (accumulate) or garbage (overwrite).
//
// Tolerance: |fd - analytic| <= 1e-2 * max(|fd|,|analytic|) + 1e-4, with h = 0.1 along a
// unit direction (so each of the n >= 96 elements moves by ~0.1/sqrt(n) <= 1e-2), in
// float32. Why: L is summed in double, but every output element carries float rounding
// (~6e-8 relative), so the difference quotient has noise ~ 6e-8 * sqrt(n_out) / (2h);
// at h = 1e-2 that reached 3e-4 on the attention case (n_out = 5120) and failed under
// valgrind's different libm paths. Measured over 20 directions per op, h = 0.1 gave the
// smallest disagreement for every op (worst 4e-3 relative, tiny attention; 1e-3 for the
// rest), h = 1e-2 up to 2e-2 and h = 3e-3 up to 9e-2: noise dominates, not truncation.
// 1e-2 keeps a 2.5x margin on the worst case and still catches wrong terms, which are
// O(1) relative (dropping the accumulate into dw showed 0.6-1.6 absolute errors).
#include "kernels/ops.h"
#include "test_kernels_util.h"

#define FD_H 1e-1f
#define FD_REL 1e-2
#define FD_ABS 1e-4
#define FD_DIRS 4

static const kd_ops *ops;

static double dot_d(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}
// g (n) -= base (n): what an accumulating bwd added.
static void sub_base(float *g, const float *base, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] -= base[i];
}

// ============================================================================ matmul

typedef struct {
    float *inp, *w, *out, *R;
    int N, C, OC;
} mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    ops->nn->matmul_fwd(ops->ctx, c->out, c->inp, c->w, c->N, c->C, c->OC);
    return dot_d(c->out, c->R, (size_t)c->N * c->OC);
}
static void test_matmul(int N, int C, int OC) {
    mm_ctx c = {rand_tensor((size_t)N * C, 1),
                rand_tensor((size_t)OC * C, 0.3f),
                rand_tensor((size_t)N * OC, 1),
                rand_tensor((size_t)N * OC, 1),
                N,
                C,
                OC};
    float *b1 = rand_tensor((size_t)N * C, 1), *b2 = rand_tensor((size_t)OC * C, 1);
    float *dinp = dup_tensor(b1, (size_t)N * C), *dw = dup_tensor(b2, (size_t)OC * C);
    // dinp starts as garbage (it is overwritten), dw from a base (it accumulates)
    ops->nn->matmul_bwd(ops->ctx, dinp, dw, c.R, c.inp, c.w, N, C, OC);
    sub_base(dw, b2, (size_t)OC * C);
    check_fd("matmul dinp", c.inp, (size_t)N * C, dinp, mm_loss, &c, FD_H, FD_DIRS, FD_REL, FD_ABS);
    check_fd("matmul dw", c.w, (size_t)OC * C, dw, mm_loss, &c, FD_H, FD_DIRS, FD_REL, FD_ABS);
    // NULL skips: dw alone must equal the dw of the full call
    float *dw2 = calloc((size_t)OC * C, sizeof(float));
    ops->nn->matmul_bwd(ops->ctx, NULL, dw2, c.R, c.inp, c.w, N, C, OC);
    float maxd = 0;
    for (size_t i = 0; i < (size_t)OC * C; i++) maxd = fmaxf(maxd, fabsf(dw2[i] - dw[i]));
    check(maxd <= 1e-4f,
          "matmul_bwd(dinp=NULL) dw equals full-call dw (tol 1e-4: base add/sub rounding)", maxd, 0,
          1e-4);
    free(c.inp), free(c.w), free(c.out), free(c.R), free(b1), free(b2), free(dinp), free(dw),
        free(dw2);
}

// ============================================================================ RMSNorm

typedef struct {
    float *inp, *w, *out, *rstd, *R;
    int N, C;
} rn_ctx;
static double rn_loss(void *p) {
    rn_ctx *c = p;
    ops->nn->rmsnorm_fwd(ops->ctx, c->out, c->rstd, c->inp, c->w, c->N, c->C, 1e-5f);
    return dot_d(c->out, c->R, (size_t)c->N * c->C);
}
static void test_rmsnorm(int N, int C) {
    size_t nc = (size_t)N * C;
    rn_ctx c = {rand_tensor(nc, 1),
                rand_tensor(C, 1),
                rand_tensor(nc, 1),
                rand_tensor(N, 1),
                rand_tensor(nc, 1),
                N,
                C};
    for (int i = 0; i < C; i++) c.w[i] += 1.0f;
    rn_loss(&c); // fills rstd
    float *b1 = rand_tensor(nc, 1), *b2 = rand_tensor(C, 1);
    float *dinp = dup_tensor(b1, nc), *dw = dup_tensor(b2, C);
    ops->nn->rmsnorm_bwd(ops->ctx, dinp, dw, c.R, c.inp, c.w, c.rstd, N, C);
    sub_base(dinp, b1, nc);
    sub_base(dw, b2, C);
    check_fd("rmsnorm dinp", c.inp, nc, dinp, rn_loss, &c, FD_H, FD_DIRS, FD_REL, FD_ABS);
    check_fd("rmsnorm dw", c.w, C, dw, rn_loss, &c, FD_H, FD_DIRS, FD_REL, FD_ABS);
    free(c.inp), free(c.w), free(c.out), free(c.rstd), free(c.R), free(b1), free(b2), free(dinp),
        free(dw);
}

// ============================================================================ RoPE

typedef struct {
    float *x, *y, *R;
    int32_t *pos;
    int N, nrot, stride, HD;
    float *inv_freq; // (HD/2)
} rp_ctx;
static double rp_loss(void *p) {
    rp_ctx *c = p;
    size_t n = (size_t)c->N * c->stride;
    memcpy(c->y, c->x, sizeof(float) * n);
    ops->nn->rope_fwd(ops->ctx, c->y, c->pos, c->N, c->nrot, c->stride, c->HD, c->inv_freq);
    return dot_d(c->y, c->R, n);
}
static void test_rope(int N, int nheads, int nrot, int HD) {
    int stride = nheads * HD;
    size_t n = (size_t)N * stride;
    rp_ctx c = {rand_tensor(n, 1),
                rand_tensor(n, 1),
                rand_tensor(n, 1),
                malloc(sizeof(int32_t) * N),
                N,
                nrot,
                stride,
                HD,
                malloc(sizeof(float) * (size_t)(HD / 2))};
    for (int i = 0; i < HD / 2; i++) c.inv_freq[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)HD);
    for (int i = 0; i < N; i++) c.pos[i] = (int32_t)(rng_u32() % 3000); // far from 0
    float *dx = dup_tensor(c.R, n);
    ops->nn->rope_bwd(ops->ctx, dx, c.pos, N, nrot, stride, HD, c.inv_freq);
    check_fd("rope dx", c.x, n, dx, rp_loss, &c, FD_H, FD_DIRS, FD_REL, FD_ABS);
    free(c.x), free(c.y), free(c.R), free(c.pos), free(c.inv_freq), free(dx);
}

// ============================================================================ attention

typedef struct {
    float *qkv, *out, *lse, *R;
    int32_t *seg;
    int B, T, NH, NKV, HD;
    kd_scratch ws;
} at_ctx;
static double at_loss(void *p) {
    at_ctx *c = p;
    ops->nn->attention_fwd(ops->ctx, c->out, c->lse, c->qkv, c->seg, c->B, c->T, c->NH, c->NKV,
                           c->HD, c->ws);
    return dot_d(c->out, c->R, (size_t)c->B * c->T * c->NH * c->HD);
}
static void test_attention(int B, int T, int NH, int NKV, int HD, int use_seg) {
    size_t nqkv = (size_t)B * T * (NH + 2 * NKV) * HD, nout = (size_t)B * T * NH * HD;
    size_t nlse = (size_t)B * NH * T;
    at_ctx c = {rand_tensor(nqkv, 1),
                rand_tensor(nout, 1),
                rand_tensor(nlse, 1),
                rand_tensor(nout, 1),
                NULL,
                B,
                T,
                NH,
                NKV,
                HD,
                {NULL, ops->nn->attention_scratch(ops->ctx, B, T, NH, HD)}};
    c.ws.p = malloc(c.ws.bytes ? c.ws.bytes : 1);
    if (use_seg) { // documents of random lengths, packed back to back
        c.seg = malloc(sizeof(int32_t) * B * T);
        for (int b = 0; b < B; b++) {
            int doc = 0;
            for (int t = 0; t < T; t++) {
                if (t > 0 && rng_u32() % 17 == 0) doc++;
                c.seg[b * T + t] = doc;
            }
        }
    }
    at_loss(&c);
    float *dqkv = malloc(sizeof(float) * nqkv);
    for (size_t i = 0; i < nqkv; i++) dqkv[i] = 777.0f; // OVERWRITE contract
    ops->nn->attention_bwd(ops->ctx, dqkv, c.R, c.out, c.lse, c.qkv, c.seg, B, T, NH, NKV, HD,
                           c.ws);
    char what[128];
    snprintf(what, sizeof what, "attention dqkv B=%d T=%d NH=%d NKV=%d HD=%d seg=%d", B, T, NH, NKV,
             HD, use_seg);
    check_fd(what, c.qkv, nqkv, dqkv, at_loss, &c, FD_H, FD_DIRS, FD_REL, FD_ABS);
    free(c.qkv), free(c.out), free(c.lse), free(c.R), free(c.seg), free(dqkv), free(c.ws.p);
}

// ============================================================================ SwiGLU

typedef struct {
    float *gu, *out, *R;
    int N, F;
} sg_ctx;
static double sg_loss(void *p) {
    sg_ctx *c = p;
    ops->nn->swiglu_fwd(ops->ctx, c->out, c->gu, c->N, c->F);
    return dot_d(c->out, c->R, (size_t)c->N * c->F);
}
static void test_swiglu(int N, int F) {
    sg_ctx c = {rand_tensor((size_t)N * 2 * F, 2), rand_tensor((size_t)N * F, 1),
                rand_tensor((size_t)N * F, 1), N, F};
    float *dgu = malloc(sizeof(float) * N * 2 * F);
    for (size_t i = 0; i < (size_t)N * 2 * F; i++) dgu[i] = 777.0f; // OVERWRITE contract
    ops->nn->swiglu_bwd(ops->ctx, dgu, c.R, c.gu, N, F);
    check_fd("swiglu dgu", c.gu, (size_t)N * 2 * F, dgu, sg_loss, &c, FD_H, FD_DIRS, FD_REL,
             FD_ABS);
    free(c.gu), free(c.out), free(c.R), free(dgu);
}

// ============================================================================ embedding

typedef struct {
    float *wte, *out, *R;
    int32_t *ids;
    int N, C;
} em_ctx;
static double em_loss(void *p) {
    em_ctx *c = p;
    ops->nn->embedding_fwd(ops->ctx, c->out, c->ids, c->wte, c->N, c->C);
    return dot_d(c->out, c->R, (size_t)c->N * c->C);
}
static void test_embedding(int V, int N, int C) {
    em_ctx c = {rand_tensor((size_t)V * C, 1),
                rand_tensor((size_t)N * C, 1),
                rand_tensor((size_t)N * C, 1),
                malloc(sizeof(int32_t) * N),
                N,
                C};
    for (int i = 0; i < N; i++) c.ids[i] = (int32_t)(rng_u32() % (V / 3)); // many repeats
    c.ids[N - 1] = c.ids[0];
    float *base = rand_tensor((size_t)V * C, 1), *dwte = dup_tensor(base, (size_t)V * C);
    ops->nn->embedding_bwd(ops->ctx, dwte, c.R, c.ids, N, C);
    sub_base(dwte, base, (size_t)V * C);
    check_fd("embedding dwte (repeated ids)", c.wte, (size_t)V * C, dwte, em_loss, &c, FD_H,
             FD_DIRS, FD_REL, FD_ABS);
    free(c.wte), free(c.out), free(c.R), free(c.ids), free(base), free(dwte);
}

// ============================================================================ cross entropy

typedef struct {
    float *logits, *loss, *w;
    int32_t *t;
    int N, V;
    float dscale;
} ce_ctx;
static double ce_loss(void *p) { // L = dscale * sum_i loss_i
    ce_ctx *c = p;
    ops->nn->cross_entropy(ops->ctx, c->loss, NULL, c->logits, c->t, c->w, c->N, c->V, 0.0f);
    double s = 0.0;
    for (int i = 0; i < c->N; i++) s += c->loss[i];
    return c->dscale * s;
}
static void test_cross_entropy(int N, int V, int weighted) {
    ce_ctx c = {rand_tensor((size_t)N * V, 2),
                rand_tensor(N, 1),
                NULL,
                malloc(sizeof(int32_t) * N),
                N,
                V,
                0.37f};
    if (weighted) {
        c.w = rand_tensor(N, 1);
        for (int i = 0; i < N; i++) c.w[i] = fabsf(c.w[i]) + 0.1f;
    }
    for (int i = 0; i < N; i++) c.t[i] = (i % 4 == 1) ? -1 : (int32_t)(rng_u32() % V);
    float *dl = malloc(sizeof(float) * N * V);
    for (size_t i = 0; i < (size_t)N * V; i++) dl[i] = 777.0f; // must be overwritten
    ops->nn->cross_entropy(ops->ctx, c.loss, dl, c.logits, c.t, c.w, N, V, c.dscale);
    char what[96];
    snprintf(what, sizeof what, "cross_entropy dlogits weighted=%d (ignored targets)", weighted);
    check_fd(what, c.logits, (size_t)N * V, dl, ce_loss, &c, FD_H, FD_DIRS, FD_REL, FD_ABS);
    ops->nn->cross_entropy(ops->ctx, c.loss, NULL, c.logits, c.t, c.w, N, V,
                           c.dscale); // loss at x0 again
    // ignored rows: zero loss, zero gradient
    for (int i = 0; i < N; i++)
        if (c.t[i] < 0) {
            float mx = fabsf(c.loss[i]);
            for (int j = 0; j < V; j++) mx = fmaxf(mx, fabsf(dl[(size_t)i * V + j]));
            check(mx == 0.0f, "cross_entropy ignored row has zero loss and gradient", mx, 0, 0);
        }
    // dlogits may alias logits: identical result to the separate buffer
    float *alias = dup_tensor(c.logits, (size_t)N * V), *l2 = malloc(sizeof(float) * N);
    ops->nn->cross_entropy(ops->ctx, l2, alias, alias, c.t, c.w, N, V, c.dscale);
    float maxd = 0;
    for (size_t i = 0; i < (size_t)N * V; i++) maxd = fmaxf(maxd, fabsf(alias[i] - dl[i]));
    for (int i = 0; i < N; i++) maxd = fmaxf(maxd, fabsf(l2[i] - c.loss[i]));
    check(maxd == 0.0f, "cross_entropy with dlogits aliasing logits is bit-identical", maxd, 0, 0);
    free(c.logits), free(c.loss), free(c.w), free(c.t), free(dl), free(alias), free(l2);
}

int main(void) {
    ops = kd_ops_cpu();
    rng_seed(42);
    test_matmul(7, 33, 19);
    test_matmul(64, 96, 80);
    test_rmsnorm(9, 96);               // C > 64 exercises the blocked dw reduction
    test_rope(11, 8, 6, 16);           // qkv-like rows: 4 q + 2 k rotated, 2 v heads untouched
    test_attention(2, 80, 4, 2, 8, 1); // GQA, T > one 64-row block, document masking
    test_attention(2, 80, 4, 2, 8, 0);
    test_attention(1, 9, 2, 2, 4, 0);  // plain MHA, tiny
    test_attention(1, 70, 4, 1, 8, 1); // multi-query
    test_attention(1, 1100, 2, 1, 8, 1); // three key tiles: the recomputed, rescaled path
    test_attention(1, 1100, 2, 1, 8, 0);
    test_swiglu(13, 40);
    test_embedding(30, 50, 80);
    test_cross_entropy(12, 37, 1);
    test_cross_entropy(12, 37, 0);
    return check_done("test_kernels_fd");
}
