// test_kernels_fwd.c: forward values of the CPU kernels against plain naive references
// written here in double (matmul triple loop, O(T^2) attention loop, ...), AdamW against
// hand-computed steps, and the memory / elementwise ops.
//
// Tolerance: 1e-5 relative to max(|ref_i|, rms(ref)) (see check_close). float32 kernels
// with reductions of <= 128 terms carry ~sqrt(K)*6e-8 ~ 1e-6 relative error, so 1e-5 is
// tight enough to catch any wrong index or missing term while not flaking on rounding.
#include "kernels/ops.h"
#include "test_kernels_util.h"

#define FWD_REL 1e-5

static const kd_ops *ops;

static double *dalloc(size_t n) {
    return calloc(n ? n : 1, sizeof(double));
}

// ============================================================================ matmul

static void test_matmul(int N, int C, int OC) {
    float *inp = rand_tensor((size_t)N * C, 1), *w = rand_tensor((size_t)OC * C, 1);
    float *out = rand_tensor((size_t)N * OC, 1);
    double *ref = dalloc((size_t)N * OC);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += (double)inp[n * C + c] * w[o * C + c];
            ref[n * OC + o] = s;
        }
    ops->nn->matmul_fwd(ops->ctx, out, inp, w, N, C, OC);
    check_close("matmul_fwd vs triple loop", out, ref, (size_t)N * OC, FWD_REL);
    free(inp), free(w), free(out), free(ref);
}

// ============================================================================ attention

// Naive reference: for each (b,h,i) scores over visible keys, softmax, weighted values.
// Checks out, lse (the row's log-sum-exp) and the probabilities of attention_probs.
static void test_attention(int B, int T, int NH, int NKV, int HD, int use_seg) {
    int R = (NH + 2 * NKV) * HD, OD = NH * HD, G = NH / NKV;
    size_t nqkv = (size_t)B * T * R, nout = (size_t)B * T * OD, natt = (size_t)B * NH * T * T;
    size_t nlse = (size_t)B * NH * T;
    float *qkv = rand_tensor(nqkv, 1), *out = rand_tensor(nout, 1), *att = rand_tensor(natt, 1);
    float *lse = rand_tensor(nlse, 1);
    int32_t *seg = NULL;
    if (use_seg) {
        seg = malloc(sizeof(int32_t) * B * T);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) seg[b * T + t] = (t * 3) / T + b; // 3 docs per row
    }
    double *ref = dalloc(nout), *refatt = dalloc(natt), *reflse = dalloc(nlse), *s = dalloc(T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                const float *q = qkv + ((size_t)b * T + i) * R + h * HD;
                double mx = -1e300;
                for (int j = 0; j <= i; j++) {
                    s[j] = -1e300;
                    if (seg && seg[b * T + j] != seg[b * T + i]) continue;
                    const float *k = qkv + ((size_t)b * T + j) * R + (NH + h / G) * HD;
                    double d = 0;
                    for (int e = 0; e < HD; e++) d += (double)q[e] * k[e];
                    s[j] = d / sqrt((double)HD);
                    if (s[j] > mx) mx = s[j];
                }
                double sum = 0;
                for (int j = 0; j <= i; j++) sum += s[j] > -1e299 ? exp(s[j] - mx) : 0.0;
                reflse[((size_t)b * NH + h) * T + i] = mx + log(sum);
                double *pa = refatt + (((size_t)b * NH + h) * T + i) * T;
                double *o = ref + ((size_t)b * T + i) * OD + h * HD;
                for (int j = 0; j <= i; j++) {
                    double p = s[j] > -1e299 ? exp(s[j] - mx) / sum : 0.0;
                    pa[j] = p;
                    const float *v = qkv + ((size_t)b * T + j) * R + (NH + NKV + h / G) * HD;
                    for (int e = 0; e < HD; e++) o[e] += p * v[e];
                }
            }
    kd_scratch ws = {NULL, ops->nn->attention_scratch(ops->ctx, B, T, NH, HD)};
    ws.p = malloc(ws.bytes ? ws.bytes : 1);
    ops->nn->attention_fwd(ops->ctx, out, lse, qkv, seg, B, T, NH, NKV, HD, ws);
    ops->nn->attention_probs(ops->ctx, att, qkv, lse, seg, B, T, NH, NKV, HD);
    char what[128];
    snprintf(what, sizeof what, "attention_fwd out vs naive (T=%d NH=%d NKV=%d seg=%d)", T, NH, NKV,
             use_seg);
    check_close(what, out, ref, nout, FWD_REL);
    snprintf(what, sizeof what, "attention_fwd lse vs naive (T=%d NH=%d NKV=%d seg=%d)", T, NH, NKV,
             use_seg);
    check_close(what, lse, reflse, nlse, FWD_REL);
    snprintf(what, sizeof what, "attention_probs vs naive (T=%d NH=%d NKV=%d seg=%d)", T, NH, NKV,
             use_seg);
    check_close(what, att, refatt, natt, FWD_REL);
    free(qkv), free(out), free(att), free(lse), free(seg), free(ref), free(refatt), free(reflse);
    free(s), free(ws.p);
}

// ============================================================================ norms, RoPE

static void test_rmsnorm(int N, int C) {
    float *x = rand_tensor((size_t)N * C, 3), *w = rand_tensor(C, 1),
          *y = rand_tensor((size_t)N * C, 1);
    float *rstd = rand_tensor(N, 1);
    double *ref = dalloc((size_t)N * C), *rref = dalloc(N);
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[n * C + c] * x[n * C + c];
        rref[n] = 1.0 / sqrt(ss / C + 1e-6);
        for (int c = 0; c < C; c++) ref[n * C + c] = x[n * C + c] * rref[n] * w[c];
    }
    ops->nn->rmsnorm_fwd(ops->ctx, y, rstd, x, w, N, C, 1e-6f);
    check_close("rmsnorm_fwd out vs naive", y, ref, (size_t)N * C, FWD_REL);
    check_close("rmsnorm_fwd rstd vs naive", rstd, rref, N, FWD_REL);
    free(x), free(w), free(y), free(rstd), free(ref), free(rref);
}

// Reference rotate_half in double: pair (i, i+HD/2) of each of the first nrot heads.
// Angles: float inverse frequencies times the position (the HF convention), then the
// trig in double. Positions up to 4000 so the angle's float rounding (~2e-4 rad) would
// show if the kernel used a different frequency formula.
static void test_rope(int N, int nheads, int nrot, int HD) {
    int stride = nheads * HD, half = HD / 2;
    float *x = rand_tensor((size_t)N * stride, 1), *y = dup_tensor(x, (size_t)N * stride);
    int32_t *pos = malloc(sizeof(int32_t) * N);
    for (int n = 0; n < N; n++) pos[n] = n == 0 ? 0 : (int32_t)(rng_u32() % 4000);
    float *inv_freq = malloc(sizeof(float) * (size_t)half); // the plain RoPE table
    for (int i = 0; i < half; i++) inv_freq[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)HD);
    double *ref = dalloc((size_t)N * stride);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < nheads; h++)
            for (int i = 0; i < half; i++) {
                size_t a = (size_t)n * stride + h * HD + i, b = a + half;
                if (h >= nrot) {
                    ref[a] = x[a], ref[b] = x[b];
                    continue;
                }
                float inv = 1.0f / powf(10000.0f, (float)(2 * i) / (float)HD);
                double ang = (double)((float)pos[n] * inv);
                ref[a] = x[a] * cos(ang) - x[b] * sin(ang);
                ref[b] = x[b] * cos(ang) + x[a] * sin(ang);
            }
    ops->nn->rope_fwd(ops->ctx, y, pos, N, nrot, stride, HD, inv_freq);
    check_close("rope_fwd vs rotate_half reference", y, ref, (size_t)N * stride, FWD_REL);
    // bwd is the inverse rotation: applying it to y must give back x
    ops->nn->rope_bwd(ops->ctx, y, pos, N, nrot, stride, HD, inv_freq);
    for (size_t i = 0; i < (size_t)N * stride; i++) ref[i] = x[i];
    check_close("rope_bwd(rope_fwd(x)) == x", y, ref, (size_t)N * stride, FWD_REL);
    free(x), free(y), free(pos), free(ref), free(inv_freq);
}

// ============================================================================ MLP, embedding, loss

static void test_swiglu_embedding(void) {
    int N = 6, F = 70, V = 9, C = 70;
    float *gu = rand_tensor((size_t)N * 2 * F, 3), *out = rand_tensor((size_t)N * F, 1);
    double *ref = dalloc((size_t)N * F);
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++) {
            double g = gu[n * 2 * F + f], u = gu[n * 2 * F + F + f];
            ref[n * F + f] = g / (1.0 + exp(-g)) * u;
        }
    ops->nn->swiglu_fwd(ops->ctx, out, gu, N, F);
    check_close("swiglu_fwd vs naive", out, ref, (size_t)N * F, FWD_REL);

    float *wte = rand_tensor((size_t)V * C, 1), *emb = rand_tensor((size_t)N * C, 1);
    int32_t ids[6] = {3, 0, 8, 3, 3, 1};
    double *eref = dalloc((size_t)N * C);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) eref[n * C + c] = wte[ids[n] * C + c];
    ops->nn->embedding_fwd(ops->ctx, emb, ids, wte, N, C);
    check_close("embedding_fwd rows", emb, eref, (size_t)N * C, 0.0);
    free(gu), free(out), free(ref), free(wte), free(emb), free(eref);
}

static void test_cross_entropy(void) {
    int N = 5, V = 300;
    float *logits = rand_tensor((size_t)N * V, 4), loss[5], w[5] = {1.0f, 0.5f, 2.0f, 1.0f, 0.0f};
    int32_t t[5] = {7, 299, -1, 0, 5};
    double ref[5];
    for (int i = 0; i < N; i++) {
        double mx = -1e300, s = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, logits[i * V + j]);
        for (int j = 0; j < V; j++) s += exp(logits[i * V + j] - mx);
        ref[i] = t[i] < 0 ? 0.0 : w[i] * (mx + log(s) - logits[i * V + t[i]]);
    }
    ops->nn->cross_entropy(ops->ctx, loss, NULL, logits, t, w, N, V, 1.0f);
    check_close("cross_entropy loss vs naive (weights, ignored target)", loss, ref, N, FWD_REL);
    free(logits);
}

// ============================================================================ AdamW, elementwise,
// memory

// Hand-computed: p=1, g=0.5 then -0.25, lr=0.1, b1=0.9, b2=0.999, eps=1e-8, wd=0.01.
// t=1: m=0.05, v=2.5e-4, mhat=0.5, vhat=0.25, p = 1 - 0.1*(0.5/0.50000001 + 0.01) = 0.899000002
// t=2: m=0.02, v=3.1225e-4, mhat=0.02/0.19, vhat=3.1225e-4/0.001999,
//      p = 0.899 - 0.1*(0.26633900 + 0.00899) = 0.871467299
// Tolerance 1e-6 on p, m: a few float roundings of O(1) values. v: 1e-8 absolute (4e-5
// relative), because 1 - 0.999f is 0.00099998713 in float (1.3e-5 relative off).
static void test_adamw(void) {
    float p[1] = {1.0f}, m[1] = {0}, v[1] = {0}, g1[1] = {0.5f}, g2[1] = {-0.25f};
    ops->optim->adamw(ops->ctx, p, g1, m, v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1, 1.0f);
    check(fabs(p[0] - 0.899000002) < 1e-6, "adamw step 1 p", p[0], 0.899000002, 1e-6);
    check(fabs(m[0] - 0.05) < 1e-7, "adamw step 1 m", m[0], 0.05, 1e-7);
    check(fabs(v[0] - 2.5e-4) < 1e-8, "adamw step 1 v", v[0], 2.5e-4, 1e-8);
    ops->optim->adamw(ops->ctx, p, g2, m, v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 2, 1.0f);
    check(fabs(p[0] - 0.871467299) < 1e-6, "adamw step 2 p", p[0], 0.871467299, 1e-6);
    check(fabs(m[0] - 0.02) < 1e-7, "adamw step 2 m", m[0], 0.02, 1e-7);
    check(fabs(v[0] - 3.1225e-4) < 1e-8, "adamw step 2 v", v[0], 3.1225e-4, 1e-8);
    // a long vector (parallel path) must agree with the scalar result element by element
    size_t n = 100000;
    float *P = malloc(sizeof(float) * n), *G = malloc(sizeof(float) * n);
    float *M = ops->mem->alloc(ops->ctx, sizeof(float) * n),
          *Vv = ops->mem->alloc(ops->ctx, sizeof(float) * n);
    for (size_t i = 0; i < n; i++) P[i] = 1.0f, G[i] = 0.5f;
    ops->optim->adamw(ops->ctx, P, G, M, Vv, n, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1, 1.0f);
    float maxd = 0;
    for (size_t i = 0; i < n; i++) maxd = fmaxf(maxd, fabsf(P[i] - 0.899000002f));
    check(maxd < 1e-6f, "adamw parallel path", maxd, 0, 1e-6);
    // gscale (clipping folded in) is the same as scaling the gradient first, bitwise, and
    // leaves the gradient unwritten
    float q1[3] = {1.0f, -2.0f, 0.5f}, q2[3] = {1.0f, -2.0f, 0.5f};
    float ga[3] = {0.3f, -0.7f, 1.9f}, gb[3], ma[3] = {0}, mb[3] = {0}, va[3] = {0}, vb[3] = {0};
    for (int i = 0; i < 3; i++) gb[i] = ga[i] * 0.37f;
    ops->optim->adamw(ops->ctx, q1, ga, ma, va, 3, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1, 0.37f);
    ops->optim->adamw(ops->ctx, q2, gb, mb, vb, 3, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1, 1.0f);
    int same = !memcmp(q1, q2, sizeof q1) && !memcmp(ma, mb, sizeof ma) && !memcmp(va, vb, sizeof va);
    check(same, "adamw gscale = the gradient scaled first (bitwise)", same, 1, 0);
    check(ga[1] == -0.7f, "adamw gscale leaves g unwritten", ga[1], -0.7f, 0);
    free(P), free(G), ops->mem->free(ops->ctx, M), ops->mem->free(ops->ctx, Vv);
}

static void test_elementwise(void) {
    size_t n = 50001; // odd, above the parallel threshold
    float *a = ops->mem->alloc(ops->ctx, sizeof(float) * n),
          *b = ops->mem->alloc(ops->ctx, sizeof(float) * n);
    float *c = ops->mem->alloc(ops->ctx, sizeof(float) * n);
    float zmax = 0;
    for (size_t i = 0; i < n; i++) zmax = fmaxf(zmax, fabsf(a[i]));
    check(zmax == 0.0f, "alloc is zero-filled", zmax, 0, 0);
    float *ha = rand_tensor(n, 1), *hb = rand_tensor(n, 1), *hc = malloc(sizeof(float) * n);
    ops->mem->upload(ops->ctx, a, ha, sizeof(float) * n);
    ops->mem->upload(ops->ctx, b, hb, sizeof(float) * n);
    ops->vec->add(ops->ctx, c, a, b, n);
    ops->vec->axpy(ops->ctx, c, -2.0f, a, n); // c = b - a
    ops->vec->scale(ops->ctx, c, 0.5f, n);    // c = (b - a)/2
    ops->mem->download(ops->ctx, hc, c, sizeof(float) * n);
    double *ref = dalloc(n), ss = 0;
    for (size_t i = 0; i < n; i++) {
        ref[i] = 0.5 * (((double)ha[i] + hb[i]) - 2.0 * ha[i]);
        ss += (double)ha[i] * ha[i];
    }
    check_close("add/axpy/scale", hc, ref, n, FWD_REL);
    double got = ops->vec->sumsq(ops->ctx, a, n);
    check(fabs(got - ss) <= 1e-9 * ss, "sumsq in double (tol 1e-9 rel: order of summation)", got,
          ss, 1e-9 * ss);
    ops->mem->copy(ops->ctx, c, a, sizeof(float) * n);
    ops->mem->zero(ops->ctx, a, sizeof(float) * n);
    ops->mem->download(ops->ctx, hc, c, sizeof(float) * n);
    check(memcmp(hc, ha, sizeof(float) * n) == 0, "copy is exact", 0, 0, 0);
    check(ops->vec->sumsq(ops->ctx, a, n) == 0.0, "zero clears", ops->vec->sumsq(ops->ctx, a, n), 0,
          0);
    free(ha), free(hb), free(hc), free(ref), ops->mem->free(ops->ctx, a),
        ops->mem->free(ops->ctx, b), ops->mem->free(ops->ctx, c);
}

int main(void) {
    ops = kd_ops_cpu();
    rng_seed(7);
    test_matmul(5, 7, 3);
    test_matmul(100, 128, 96);
    test_attention(2, 100, 4, 2, 16, 1); // GQA, two 64-row blocks, documents
    test_attention(2, 100, 4, 2, 16, 0);
    test_attention(1, 3, 1, 1, 4, 0);
    test_attention(1, 1100, 2, 1, 8, 1); // three key tiles of 512: the online rescaling
    test_attention(1, 1100, 2, 2, 8, 0);
    test_rmsnorm(10, 130);
    test_rope(9, 8, 6, 32);
    test_swiglu_embedding();
    test_cross_entropy();
    test_adamw();
    test_elementwise();
    char why[256] = "";
    const kd_ops *cuda = kd_ops_cuda(why, sizeof why);
    check(cuda != NULL || why[0] != '\0', "kd_ops_cuda gives a table or a reason", cuda != NULL, 0,
          0);
    if (!cuda) printf("kd_ops_cuda: NULL (%s)\n", why);
    // the CPU backend implements every op of the interface (no NULL slot)
    int missing = kd_ops_missing(kd_ops_cpu(), NULL, 0);
    check(missing == 0, "CPU backend implements every kd_ops slot", missing, 0, 0);
    // so does the CUDA table as built (asked without a device: nothing is called)
    const kd_ops *built = kd_ops_cuda_table();
#ifdef KD_HAVE_CUDA
    char lacks[512] = "";
    missing = built ? kd_ops_missing(built, lacks, sizeof lacks) : -1;
    if (missing) fprintf(stderr, "CUDA table lacks: %s\n", lacks);
    check(built != NULL && missing == 0, "CUDA backend implements every kd_ops slot", missing, 0,
          0);
#ifdef KD_HAVE_NCCL
    check(built != NULL && built->coll != NULL, "CUDA backend has NCCL collectives", 0, 0, 0);
    check(built != NULL && built->coll != NULL && built->coll->reduce_scatter_start != NULL &&
              built->coll->reduce_scatter_wait != NULL,
          "NCCL reduce-scatter can overlap the backward (start/wait)", 0, 0, 0);
#else
    printf("kd_ops_cuda_table: built without NCCL (collectives staged through the host)\n");
#endif
#else
    check(built == NULL, "no CUDA table in a build without CUDA", 0, 0, 0);
    printf("kd_ops_cuda_table: built without CUDA\n");
#endif
    return check_done("test_kernels_fwd");
}
