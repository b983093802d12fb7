// test_decode_grid.c: the per-thread bodies of the CUDA decode kernels (kernels/decode_grid.h),
// run on the host over their whole grids, stage by stage in the order kernels/cuda/decode.cu
// launches them, give what the CPU backend's decode ops give: attention over a KV cache (out
// and the cache after the append) and the Mamba-2 recurrent step (y, conv_state, ssm_state).
// Shapes cover GQA (NH > NKV) and MHA, B > 1 with a different n[b] per row, Tmax > n[b],
// several consecutive steps on the same cache/state, and strided xbc/dt rows. Every stage is
// also run with its grid walked backwards and must give bitwise the same results (a GPU runs
// a stage's threads in any order). Each shape also checks that the comparison can fail: the
// grid run against a CPU run fed a different n (attention) or a different state (step) must
// differ by far more than the tolerance.
// Tolerance 1e-5 norm-wise relative (||a-b||/||b||): both sides are float32 with the same
// loop order, so they agree to rounding (compiler contraction may differ: ~1e-7); a wrong
// index, mask or head mapping gives errors above 1e-2. Cache slots and states that are
// copies, not sums, must be bitwise equal.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grid_host.h"
#include "kernels/decode_grid.h"
#include "kernels/ops.h"

#define TOL 1e-5


static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { // uniform in [-1, 1)
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}
static float *rnd(size_t n, float scale) {
    float *x = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) x[i] = scale * frand();
    return x;
}
static float *dup(const float *x, size_t n) {
    float *y = malloc(n * sizeof(float) + 4);
    memcpy(y, x, n * sizeof(float));
    return y;
}

// ||a-b|| / max(||b||, 1e-30)
static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d, den += (double)b[i] * b[i];
    }
    if (num != num) return INFINITY;
    return sqrt(num) / (den > 1e-60 ? sqrt(den) : 1e-30);
}

// One counted check: rel_err(got, want) <= TOL; on failure names the worst element.
static void cmp(const char *what, const float *got, const float *want, size_t n) {
    double e = rel_err(got, want, n);
    size_t worst = 0;
    double wd = -1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > wd || d != d) wd = d, worst = i;
    }
    printf("    %-28s rel err %.2e (tol %.0e)%s\n", what, e, TOL, e <= TOL ? "" : "  FAIL");
    CHECK(e <= TOL, "%s: relative error %.3g > %.1g (worst [%zu]: got %.9g, want %.9g)", what, e,
          TOL, worst, got[worst], want[worst]);
}
// One counted check: bitwise equal.
static void same(const char *what, const float *a, const float *b, size_t n) {
    size_t i = 0;
    while (i < n && memcmp(a + i, b + i, sizeof(float)) == 0) i++;
    printf("    %-28s %s\n", what, i == n ? "bitwise equal" : "DIFFER  FAIL");
    CHECK(i == n, "%s: differs first at [%zu]: %.9g vs %.9g", what, i, a[i], b[i]);
}
// One counted check that the comparison can see a wrong answer: err must exceed 100*TOL.
static void sees(const char *what, double err) {
    printf("    %-28s rel err %.2e (must be > %.0e)\n", what, err, 100 * TOL);
    CHECK(err > 100 * TOL, "%s: a deliberately wrong input gives only %.3g: the check is blind",
          what, err);
}

// ============================================================================ attention

typedef struct {
    int B, Tmax, NH, NKV, HD, steps;
    int n0[4]; // n[b] of the first step; each later step adds 1
} attn_case;

// Runs the three grid stages on host memory (the order decode.cu launches them).
static void grid_attention(float *out, float *kv, const float *qkv, const int32_t *n, int B,
                           int Tmax, int NH, int NKV, int HD, float *p) {
    kd_decg_attn a;
    memset(&a, 0, sizeof a);
    a.out = out, a.kv = kv, a.qkv = qkv, a.n = n, a.p = p;
    a.B = B, a.Tmax = Tmax, a.NH = NH, a.NKV = NKV, a.HD = HD;
    KD_DECG_ATTN_PLAN(HOST_STAGE, a)
}

static void test_attention(const kd_ops *cpu, const attn_case *c) {
    const int B = c->B, Tmax = c->Tmax, NH = c->NH, NKV = c->NKV, HD = c->HD;
    const size_t R = (size_t)(NH + 2 * NKV) * HD, S = 2 * (size_t)NKV * HD;
    const size_t nkv = (size_t)B * Tmax * S, nout = (size_t)B * NH * HD;
    printf("  attention B=%d Tmax=%d NH=%d NKV=%d HD=%d steps=%d\n", B, Tmax, NH, NKV, HD,
           c->steps);
    float *kv_cpu = rnd(nkv, 1.0f); // every slot filled: unused slots must stay as they are
    float *kv_grid = dup(kv_cpu, nkv), *kv_rev = dup(kv_cpu, nkv);
    float *out_cpu = rnd(nout, 1.0f), *out_grid = rnd(nout, 1.0f), *out_rev = rnd(nout, 1.0f);
    size_t wsb = cpu->decode->attention_scratch(cpu->ctx, B, Tmax, NH);
    kd_scratch ws = {cpu->mem->alloc(cpu->ctx, wsb ? wsb : 1), wsb};
    float *p = malloc(kd_decg_attn_scratch(B, Tmax, NH) + 4);
    int32_t n[4];
    for (int b = 0; b < B; b++) n[b] = c->n0[b];
    for (int s = 0; s < c->steps; s++) {
        float *qkv = rnd((size_t)B * R, 1.5f);
        char what[64];
        cpu->decode->attention(cpu->ctx, out_cpu, kv_cpu, qkv, n, B, Tmax, NH, NKV, HD, ws);
        g_reverse = 0;
        grid_attention(out_grid, kv_grid, qkv, n, B, Tmax, NH, NKV, HD, p);
        g_reverse = 1;
        grid_attention(out_rev, kv_rev, qkv, n, B, Tmax, NH, NKV, HD, p);
        snprintf(what, sizeof what, "step %d out", s);
        cmp(what, out_grid, out_cpu, nout);
        snprintf(what, sizeof what, "step %d kv cache", s);
        same(what, kv_grid, kv_cpu, nkv);
        snprintf(what, sizeof what, "step %d backwards grid", s);
        same(what, out_rev, out_grid, nout);
        if (s == 0 && Tmax > 1) {
            // the comparison sees the mask: the same call with every n[b] one shorter (or
            // one longer where n[b] == 1) attends over other slots (Tmax == 1 has no other)
            int32_t m[4];
            float *kv_m = dup(kv_grid, nkv), *out_m = malloc(nout * sizeof(float));
            for (int b = 0; b < B; b++) m[b] = n[b] > 1 ? n[b] - 1 : n[b] + 1;
            g_reverse = 0;
            grid_attention(out_m, kv_m, qkv, m, B, Tmax, NH, NKV, HD, p);
            sees("another n gives another out", rel_err(out_m, out_cpu, nout));
            free(kv_m), free(out_m);
        }
        free(qkv);
        for (int b = 0; b < B; b++) n[b] = n[b] < Tmax ? n[b] + 1 : n[b];
    }
    cpu->mem->free(cpu->ctx, ws.p);
    free(p), free(kv_cpu), free(kv_grid), free(kv_rev), free(out_cpu), free(out_grid),
        free(out_rev);
}

// ============================================================================ Mamba-2 step

typedef struct {
    kd_mamba2_dims d;
    int B, pad, steps; // pad: extra floats at the end of every xbc and dt row
    int bias;          // 0: conv_b NULL
} step_case;

static void grid_step(float *y, float *cs, float *ss, const float *xbc, int ld_xbc, const float *dt,
                      int lddt, const float *w, const float *cb, const float *dtb,
                      const float *alog, const float *D, const kd_mamba2_dims *d, int B,
                      float *act) {
    kd_decg_step s;
    memset(&s, 0, sizeof s);
    s.y = y, s.conv_state = cs, s.ssm_state = ss, s.xbc = xbc, s.dt = dt;
    s.conv_w = w, s.conv_b = cb, s.dt_bias = dtb, s.A_log = alog, s.D = D, s.act = act;
    s.ld_xbc = ld_xbc, s.lddt = lddt, s.B = B;
    s.H = d->H, s.n_kv = d->n_kv, s.P = d->P, s.N = d->N, s.W = d->W;
    KD_DECG_STEP_PLAN(HOST_STAGE, s)
}

static void test_step(const kd_ops *cpu, const step_case *c) {
    const kd_mamba2_dims *d = &c->d;
    const int B = c->B, H = d->H, P = d->P, N = d->N, W = d->W;
    const int CD = 2 * d->n_kv * P + H * N, ld_xbc = CD + c->pad, lddt = H + c->pad;
    const size_t ncs = (size_t)B * CD * (W - 1), nss = (size_t)B * H * P * N;
    const size_t ny = (size_t)B * H * P;
    printf("  mamba2_step B=%d H=%d n_kv=%d P=%d N=%d W=%d pad=%d bias=%d steps=%d\n", B, H,
           d->n_kv, P, N, W, c->pad, c->bias, c->steps);
    float *w = rnd((size_t)CD * W, 0.5f), *cb = c->bias ? rnd(CD, 0.2f) : NULL;
    float *dtb = rnd(H, 0.5f), *alog = rnd(H, 1.0f), *D = rnd(H, 1.0f);
    float *cs_cpu = rnd(ncs + 1, 1.0f), *ss_cpu = rnd(nss, 1.0f);
    float *cs_grid = dup(cs_cpu, ncs + 1), *ss_grid = dup(ss_cpu, nss);
    float *cs_rev = dup(cs_cpu, ncs + 1), *ss_rev = dup(ss_cpu, nss);
    float *y_cpu = rnd(ny, 1.0f), *y_grid = rnd(ny, 1.0f), *y_rev = rnd(ny, 1.0f);
    size_t wsb = cpu->decode->mamba2_step_scratch(cpu->ctx, d, B);
    kd_scratch ws = {cpu->mem->alloc(cpu->ctx, wsb ? wsb : 1), wsb};
    float *act = malloc(kd_decg_step_scratch(d, B) + 4);
    for (int s = 0; s < c->steps; s++) {
        float *xbc = rnd((size_t)B * ld_xbc, 1.0f), *dt = rnd((size_t)B * lddt, 1.0f);
        char what[64];
        cpu->decode->mamba2_step(cpu->ctx, y_cpu, cs_cpu, ss_cpu, xbc, ld_xbc, dt, lddt, w, cb, dtb,
                                 alog, D, d, B, ws);
        g_reverse = 0;
        grid_step(y_grid, cs_grid, ss_grid, xbc, ld_xbc, dt, lddt, w, cb, dtb, alog, D, d, B, act);
        g_reverse = 1;
        grid_step(y_rev, cs_rev, ss_rev, xbc, ld_xbc, dt, lddt, w, cb, dtb, alog, D, d, B, act);
        snprintf(what, sizeof what, "step %d y", s);
        cmp(what, y_grid, y_cpu, ny);
        snprintf(what, sizeof what, "step %d ssm_state", s);
        cmp(what, ss_grid, ss_cpu, nss);
        snprintf(what, sizeof what, "step %d conv_state", s);
        same(what, cs_grid, cs_cpu, ncs + 1); // + 1: the float past the end stays untouched
        snprintf(what, sizeof what, "step %d backwards grid", s);
        same(what, y_rev, y_grid, ny);
        same("  ... ssm_state", ss_rev, ss_grid, nss);
        if (s == 0) {
            // the comparison sees the state: the same step from a zero SSM state differs
            float *y_m = malloc(ny * sizeof(float)), *cs_m = dup(cs_cpu, ncs + 1);
            float *ss_m = calloc(nss, sizeof(float));
            g_reverse = 0;
            grid_step(y_m, cs_m, ss_m, xbc, ld_xbc, dt, lddt, w, cb, dtb, alog, D, d, B, act);
            sees("zero state gives another y", rel_err(y_m, y_cpu, ny));
            free(y_m), free(cs_m), free(ss_m);
        }
        free(xbc), free(dt);
    }
    cpu->mem->free(cpu->ctx, ws.p);
    free(act), free(w), free(cb), free(dtb), free(alog), free(D);
    free(cs_cpu), free(ss_cpu), free(cs_grid), free(ss_grid), free(cs_rev), free(ss_rev);
    free(y_cpu), free(y_grid), free(y_rev);
}

int main(void) {
    const kd_ops *cpu = kd_ops_cpu();
    CHECK(cpu->decode != NULL, "the CPU backend has no decode sub-table");
    if (!cpu->decode) return check_done("decode_grid_bodies_vs_cpu");
    static const attn_case ac[] = {
        {1, 1, 1, 1, 4, 1, {1}},              // one slot, one head
        {2, 8, 4, 2, 8, 3, {3, 6}},           // GQA, two rows at different lengths
        {3, 16, 6, 2, 16, 3, {1, 5, 14}},     // GQA 3:1, n[b] reaches Tmax on row 2
        {2, 12, 4, 4, 8, 2, {7, 2}},          // MHA
        {4, 33, 8, 1, 32, 2, {33, 1, 17, 9}}, // MQA, one row full, HD = 32
    };
    static const step_case sc[] = {
        {{2, 1, 4, 4, 4, 4}, 1, 0, 3, 1},  // one row, GQA 2:1
        {{4, 2, 8, 8, 4, 4}, 3, 5, 3, 1},  // B = 3, padded rows
        {{3, 3, 4, 4, 2, 4}, 2, 1, 2, 0},  // no conv bias, W = 2 (one-slot history)
        {{6, 2, 16, 16, 4, 8}, 2, 3, 3, 1} // wider heads
    };
    printf("attention\n");
    for (size_t i = 0; i < sizeof ac / sizeof ac[0]; i++) test_attention(cpu, &ac[i]);
    printf("mamba2_step\n");
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) test_step(cpu, &sc[i]);
    // a CUDA build's table must hold the whole decode sub-table
    const kd_ops *cu = kd_ops_cuda_table();
    if (cu) {
        int ok = kd_ops_supports(cu, KD_CAP_DECODE);
        printf("cuda table: decode %s\n", ok ? "complete" : "MISSING");
        CHECK(ok, "the CUDA table lacks (part of) the decode sub-table");
    }
    return check_done("decode_grid_bodies_vs_cpu");
}
