// Stage init's conversion (runtime/model/model_convert.c), grouped-query attention included
// (4 query heads, 2 kv heads):
//  1. copies: every tensor the source has is copied bit for bit; in_proj rows x/B/C are
//     v_proj/k_proj/q_proj and out_proj is o_proj bit for bit; new tensors lie in their
//     documented ranges; the identity conv is exact.
//  2. the mapping is exact: with D = 0, A -> 0 (A_log = -40), a constant dt (dt rows 0,
//     dt_bias = softplus^-1(0.5)) and the conv + SiLU bypassed (the SSD matrix op fed with
//     the in_proj output), the layer's mixing matrix equals dt * Q_t.K_s (s <= t) from the
//     teacher's own un-rotated projections of the same input; through the real layer
//     (identity conv, SiLU on) it equals dt * silu(Q_t).silu(K_s).
//  3. determinism and seeding by name; progressive chains; errors for bad layouts.
// Tolerance for 2.: relative 1e-5 of the largest |entry|: both sides are float32 dot
// products of head_dim = 6 terms of O(1) values (rounding ~1e-7), exp(dt*A) = 1 exactly.
#include "runtime/model/model_convert.h"
#include "runtime/model/model_internal.h"
#include "tests/unit/test_model_util.h"
#include "check.h"

static float *tensor(kd_model *m, const char *name) {
    int i = kd_params_find(kd_model_table(m), name);
    if (i < 0) {
        fprintf(stderr, "FAIL: tensor %s missing\n", name);
        exit(1);
    }
    return kd_model_params(m) + kd_model_table(m)->t[i].offset;
}

static size_t numel(kd_model *m, const char *name) {
    return kd_model_table(m)->t[kd_params_find(kd_model_table(m), name)].numel;
}

static kd_model *convert(const kd_model *src, const int *ssm, int n, uint64_t seed,
                         kd_conv_init conv, int d_state) {
    kd_convert_opts o = {
        .seed = seed, .conv = conv, .d_state = d_state, .chunk_size = 4, .conv_width = 4};
    kd_model *out = NULL;
    kd_error err = {0};
    if (kd_model_convert(&out, src, ssm, n, &o, 1, &err)) {
        fprintf(stderr, "FAIL convert: %s\n", err.msg);
        exit(1);
    }
    return out;
}

// ----------------------------------------------------------------------------- 1. copies

static void check_copies(kd_model *t, kd_model *s, int l) {
    const kd_param_table *ts = kd_model_table(t);
    for (int i = 0; i < ts->n; i++) {
        int j = kd_params_find(kd_model_table(s), ts->t[i].name);
        if (j < 0) continue; // the converted layer's attention tensors are gone
        CHECK(memcmp(kd_model_params(t) + ts->t[i].offset,
                     kd_model_params(s) + kd_model_table(s)->t[j].offset,
                     ts->t[i].numel * sizeof(float)) == 0,
              "%s not copied bit for bit", ts->t[i].name);
    }
    const kd_model_config *c = kd_model_cfg(s);
    size_t C = c->d_model, di = (size_t)c->n_heads * c->head_dim,
           dxb = (size_t)c->n_kv_heads * c->head_dim;
    char nm[96];
#define T_(fmt) (snprintf(nm, sizeof nm, fmt, l), tensor(t, nm))
#define S_(fmt) (snprintf(nm, sizeof nm, fmt, l), tensor(s, nm))
    float *in = S_("layers.%d.mixer.in_proj.weight");
    CHECK(memcmp(in + di * C, T_("layers.%d.mixer.v_proj.weight"), dxb * C * 4) == 0,
          "layer %d: x rows != v_proj", l);
    CHECK(memcmp(in + (di + dxb) * C, T_("layers.%d.mixer.k_proj.weight"), dxb * C * 4) == 0,
          "layer %d: B rows != k_proj", l);
    CHECK(memcmp(in + (di + 2 * dxb) * C, T_("layers.%d.mixer.q_proj.weight"), di * C * 4) == 0,
          "layer %d: C rows != q_proj", l);
    CHECK(memcmp(S_("layers.%d.mixer.out_proj.weight"), T_("layers.%d.mixer.o_proj.weight"),
                 C * di * 4) == 0,
          "layer %d: out_proj != o_proj", l);
    // z and dt rows: U(+-1/sqrt(C)), not all zero
    double bound = 1.0 / sqrt((double)C), zmax = 0;
    for (size_t j = 0; j < di * C; j++) zmax = fmax(zmax, fabs(in[j]));
    for (size_t j = (2 * di + 2 * dxb) * C; j < (2 * di + 2 * dxb + c->n_heads) * C; j++)
        zmax = fmax(zmax, fabs(in[j]));
    CHECK(zmax > 0.5 * bound && zmax <= bound,
          "layer %d: z/dt rows max |w| %g, expected in (%g, %g]", l, zmax, 0.5 * bound, bound);
    float *dtb = S_("layers.%d.mixer.dt_bias"), *al = S_("layers.%d.mixer.A_log"),
          *D = S_("layers.%d.mixer.D");
    for (int h = 0; h < c->n_heads; h++) {
        double dt = log1p(exp(dtb[h]));
        CHECK(dt >= 1e-3 * 0.999 && dt <= 1e-1 * 1.001,
              "layer %d head %d: softplus(dt_bias) %g not in [1e-3, 1e-1]", l, h, dt);
        CHECK(al[h] >= 0.0f && al[h] <= logf(16.0f) + 1e-6f,
              "layer %d head %d: A_log %g not in [0, log 16]", l, h, al[h]);
        CHECK(D[h] == 1.0f, "layer %d head %d: D %g, expected 1", l, h, D[h]);
    }
    float *cw = S_("layers.%d.mixer.conv1d.weight"), *cb = S_("layers.%d.mixer.conv1d.bias");
    int W = c->conv_width, CD = (int)(di + 2 * dxb);
    for (int ch = 0; ch < CD; ch++) {
        CHECK(cb[ch] == 0.0f, "identity conv bias[%d] = %g", ch, cb[ch]);
        for (int k = 0; k < W; k++)
            CHECK(cw[ch * W + k] == (k == W - 1 ? 1.0f : 0.0f), "identity conv w[%d][%d] = %g", ch,
                  k, cw[ch * W + k]);
    }
    float *nw = S_("layers.%d.mixer.norm.weight");
    for (size_t j = 0; j < di; j++) CHECK(nw[j] == 1.0f, "norm.weight[%zu] = %g", j, nw[j]);
#undef T_
#undef S_
}

// ----------------------------------------------------------------------------- 2. exact mapping

// Host (N, OC) = x (N,C) . w(OC,C)^T in double.
static void host_proj(double *out, const float *x, const float *w, int N, int C, int OC) {
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int k = 0; k < C; k++) s += (double)x[i * C + k] * w[o * C + k];
            out[i * OC + o] = s;
        }
}

static double silu(double v) {
    return v / (1.0 + exp(-v));
}

// max |M - ref| / max |ref| over the causal part; M above the diagonal must be 0.
static double compare_matrix(const char *what, const float *M, const double *Q, const double *K,
                             double dt, int B, int T, int H, int NKV, int HD, int use_silu) {
    double worst = 0, scale = 0;
    int wb = 0, wh = 0, wt = 0, ws = 0;
    double wref = 0;
    float wgot = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                for (int s = 0; s < T; s++) {
                    double ref = 0;
                    if (s <= t) {
                        int kv =
                            h /
                            (H / NKV); // Llama's repeat_kv: query head h reads kv head h/(H/NKV)
                        for (int d = 0; d < HD; d++) {
                            double q = Q[((size_t)b * T + t) * H * HD + h * HD + d];
                            double k = K[((size_t)b * T + s) * NKV * HD + kv * HD + d];
                            ref += use_silu ? silu(q) * silu(k) : q * k;
                        }
                        ref *= dt;
                    }
                    float got = M[(((size_t)b * H + h) * T + t) * T + s];
                    scale = fmax(scale, fabs(ref));
                    if (fabs(got - ref) > worst)
                        worst = fabs(got - ref), wb = b, wh = h, wt = t, ws = s, wref = ref,
                        wgot = got;
                }
    double rel = worst / scale;
    printf("%-60s max |M - ref| / max|ref| = %.2e (tol 1e-5)\n", what, rel);
    CHECK(rel <= 1e-5, "%s: at b=%d h=%d t=%d s=%d M=%.8g expected %.8g", what, wb, wh, wt, ws,
          wgot, wref);
    return rel;
}

static void check_mapping(kd_model *t, kd_model *s, int l) {
    const kd_model_config *c = kd_model_cfg(s);
    const kd_ops *o = kd_model_ops(s);
    enum { B = 2, T = 11 };
    int C = c->d_model, H = c->n_heads, NKV = c->n_kv_heads, HD = c->head_dim;
    int32_t ids[B * T];
    random_tokens(ids, B * T, c->vocab_size, 5);
    kd_error err = {0};
    CHECK(kd_model_forward(t, ids, NULL, NULL, B, T, &err) == KD_OK, "teacher forward: %s",
          err.msg);
    const float *inp = kd_model_mixer_input(t, l); // (B,T,C): the teacher layer's normed input
    char nm[96];
    double *Q = malloc(sizeof(double) * B * T * H * HD),
           *K = malloc(sizeof(double) * B * T * NKV * HD);
    snprintf(nm, sizeof nm, "layers.%d.mixer.q_proj.weight", l);
    host_proj(Q, inp, tensor(t, nm), B * T, C, H * HD);
    snprintf(nm, sizeof nm, "layers.%d.mixer.k_proj.weight", l);
    host_proj(K, inp, tensor(t, nm), B * T, C, NKV * HD);

    // test switches on the student layer: D = 0, A -> 0, dt = softplus(dt_bias) = 0.5
    const double dt = 0.5;
    kd_mamba2_params *p = &s->mp[l];
    kd_mamba2_sizes sz = kd_mamba2_sizes_of(&s->mcfg);
    for (int h = 0; h < H; h++)
        p->D[h] = 0.0f, p->A_log[h] = -40.0f, p->dt_bias[h] = (float)log(expm1(dt));
    memset(p->in_proj_w + (size_t)(2 * sz.d_inner + 2 * sz.d_xb) * C, 0, sizeof(float) * H * C);

    // (a) conv + SiLU bypassed: the SSD matrix op reads B and C straight from in_proj
    float *zx = malloc(sizeof(float) * B * T * sz.d_in_proj),
          *M = malloc(sizeof(float) * B * H * T * T);
    o->nn->matmul_fwd(o->ctx, zx, inp, p->in_proj_w, B * T, C, sz.d_in_proj);
    kd_mamba2_in in = {.x = zx + sz.d_inner,
                       .Bm = zx + sz.d_inner + sz.d_xb,
                       .Cm = zx + sz.d_inner + 2 * sz.d_xb,
                       .dt = zx + 2 * sz.d_inner + 2 * sz.d_xb,
                       .ldx = sz.d_in_proj,
                       .ldb = sz.d_in_proj,
                       .ldc = sz.d_in_proj,
                       .lddt = sz.d_in_proj,
                       .dt_bias = p->dt_bias,
                       .A_log = p->A_log,
                       .D = p->D,
                       .seg = NULL,
                       .B = B,
                       .T = T};
    kd_scratch ws = {NULL, kd_mamba2_matrix_scratch_bytes(o, &s->mcfg, B, T)};
    ws.p = malloc(ws.bytes);
    o->mamba2->mat_fwd(o->ctx, M, &in, &s->mcfg.k, ws);
    snprintf(nm, sizeof nm, "layer %d, conv+SiLU bypassed: M == dt*Q.K", l);
    compare_matrix(nm, M, Q, K, dt, B, T, H, NKV, HD, 0);

    // (b) the real layer: identity conv, SiLU on
    float *acts_mem = calloc(kd_mamba2_acts_floats(&s->mcfg, B, T), sizeof(float));
    float *out = malloc(sizeof(float) * B * T * C);
    kd_mamba2_acts a;
    kd_mamba2_acts_bind(&a, acts_mem, &s->mcfg, B, T);
    kd_mamba2_forward(o, &s->mcfg, p, &a, ws, out, inp, NULL, B, T);
    kd_mamba2_matrix(o, &s->mcfg, p, &a, ws, M, NULL, B, T);
    snprintf(nm, sizeof nm, "layer %d, real layer (identity conv): M == dt*silu(Q).silu(K)", l);
    compare_matrix(nm, M, Q, K, dt, B, T, H, NKV, HD, 1);
    free(Q), free(K), free(zx), free(M), free(acts_mem), free(out), free(ws.p);
}

// ----------------------------------------------------------------------------- 3. the rest

static void expect_error(const kd_model *src, const int *ssm, int n, int d_state, int conv_width,
                         const char *needle) {
    kd_convert_opts o = {.seed = 1, .d_state = d_state, .chunk_size = 4, .conv_width = conv_width};
    kd_model *out = NULL;
    kd_error err = {0};
    int rc = kd_model_convert(&out, src, ssm, n, &o, 1, &err);
    CHECK(rc == KD_EINPUT && out == NULL && strstr(err.msg, needle),
          "expected KD_EINPUT with '%s', got %d: %s", needle, rc, err.msg);
    printf("error as expected: %s\n", err.msg);
}

int main(void) {
    kd_model_config c = tiny_config(3, 0);
    kd_model *t = NULL;
    kd_error err = {0};
    if (kd_model_create(&t, &c, kd_ops_cpu(), 0, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    kd_model_init_random(t, 7, 0.3f); // larger than training std: O(1) projections

    const int ssm[2] = {0, 2};
    kd_model *s = convert(t, ssm, 2, 11, KD_CONV_INIT_IDENTITY, 0);
    CHECK(kd_model_cfg(s)->mixer[1] == KD_MIXER_ATTN && kd_model_n_ssm(kd_model_cfg(s)) == 2,
          "layout");
    check_copies(t, s, 0);
    check_copies(t, s, 2);

    // determinism: same seed -> same bits; another seed changes only the fresh tensors
    kd_model *s2 = convert(t, ssm, 2, 11, KD_CONV_INIT_IDENTITY, 0);
    CHECK(memcmp(kd_model_params(s), kd_model_params(s2), kd_model_table(s)->total * 4) == 0,
          "same seed differs");
    kd_model *s3 = convert(t, ssm, 2, 12, KD_CONV_INIT_IDENTITY, 0);
    CHECK(memcmp(tensor(s, "layers.0.mixer.in_proj.weight"),
                 tensor(s3, "layers.0.mixer.in_proj.weight"), 4 * 24) != 0,
          "another seed gives the same z rows");
    CHECK(memcmp(tensor(s, "layers.0.mixer.out_proj.weight"),
                 tensor(s3, "layers.0.mixer.out_proj.weight"),
                 numel(s, "layers.0.mixer.out_proj.weight") * 4) == 0,
          "copied tensors depend on the seed");
    // default conv: U(+-1/sqrt(W)), not identity
    kd_model *s4 = convert(t, ssm, 2, 11, KD_CONV_INIT_DEFAULT, 0);
    float *cw = tensor(s4, "layers.2.mixer.conv1d.weight");
    double mx = 0;
    for (size_t j = 0; j < numel(s4, "layers.2.mixer.conv1d.weight"); j++)
        mx = fmax(mx, fabs(cw[j]));
    CHECK(mx > 0.25 && mx <= 0.5 && cw[0] != 0.0f,
          "default conv max |w| %g, expected in (0.25, 0.5]", mx);

    // progressive: {0} then {0,1}: layer 0 kept as it is, layer 1 converted from attention
    const int first[1] = {0}, more[2] = {0, 1}, only1[1] = {1};
    kd_model *p1 = convert(t, first, 1, 11, KD_CONV_INIT_IDENTITY, 0);
    float *in0 = tensor(p1, "layers.0.mixer.in_proj.weight");
    for (int k = 0; k < 5; k++) in0[k] += 0.25f; // pretend training moved it
    kd_model *p2 = convert(p1, more, 2, 99, KD_CONV_INIT_IDENTITY, 0);
    CHECK(memcmp(tensor(p2, "layers.0.mixer.in_proj.weight"), in0,
                 numel(p1, "layers.0.mixer.in_proj.weight") * 4) == 0,
          "progressive: layer 0 (already Mamba-2) changed");
    CHECK(memcmp(tensor(p2, "layers.0.mixer.A_log"), tensor(p1, "layers.0.mixer.A_log"), 4 * 4) ==
              0,
          "progressive: layer 0 A_log changed");
    check_copies(p1, p2, 1);

    expect_error(p1, only1, 1, 0, 4, "already Mamba-2");
    expect_error(t, ssm, 2, 8, 4, "d_state");
    expect_error(p1, more, 2, 0, 3, "must match");
    const int bad[1] = {3};
    expect_error(t, bad, 1, 0, 4, "[0, 3)");

    // exactness of the mapping on both converted layers (modifies s: last)
    check_mapping(t, s, 0);
    check_mapping(t, s, 2);

    kd_model_free(t), kd_model_free(s), kd_model_free(s2), kd_model_free(s3), kd_model_free(s4);
    kd_model_free(p1), kd_model_free(p2);
    return check_done("init conversion");
}
