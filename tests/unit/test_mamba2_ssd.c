// test_mamba2_ssd.c: the chunked SSD forward equals the sequential recurrence (chunk sizes
// 1, 8, 64; lengths not divisible by the chunk; with and without an initial state and
// document boundaries); documents under seg are independent; a layer prefill leaves the
// same states as stepping token by token, and step outputs equal prefill outputs.
// Tolerance 1e-5 norm-wise relative: both sides are float32 with O(Q) or O(N) term sums,
// whose rounding is ~1e-7 relative; a wrong mask or decay gives errors of order 1.
#include "test_mamba2_util.h"

typedef struct {
    float *xbc, *dt;
    int ld, lddt;
    kd_mamba2_in in;
} ssd_case;

static ssd_case make_case(const kd_mamba2_dims *d, int B, int T, const int32_t *seg) {
    ssd_case c;
    const int dxb = d->n_kv * d->P;
    c.ld = 2 * dxb + d->H * d->N + 5; // padding columns check the strides
    c.lddt = d->H + 3;
    c.xbc = kd_malloc((size_t)B * T * c.ld * sizeof(float));
    c.dt = kd_malloc((size_t)B * T * c.lddt * sizeof(float));
    fill(c.xbc, (size_t)B * T * c.ld, -1.0f, 1.0f);
    fill(c.dt, (size_t)B * T * c.lddt, -3.0f, 1.0f);
    static float dt_bias[64], A_log[64], D[64];
    for (int h = 0; h < d->H; h++) {
        dt_bias[h] = -0.5f + urand();
        A_log[h] = logf(1.0f + 7.0f * urand());
        D[h] = 0.5f + urand();
    }
    kd_mamba2_in in = {c.xbc,  c.xbc + dxb, c.xbc + 2 * dxb, c.dt, c.ld, c.ld, c.ld,
                       c.lddt, dt_bias,     A_log,           D,    seg,  B,    T};
    c.in = in;
    return c;
}

static void test_chunked_vs_sequential(void) {
    kd_mamba2_dims d = {4, 2, 8, 8, 4, 0};
    const int Qs[] = {1, 8, 64}, Ts[] = {1, 37, 100, 128};
    const int B = 2;
    for (int qi = 0; qi < 3; qi++)
        for (int ti = 0; ti < 4; ti++)
            for (int variant = 0; variant < 3; variant++) { // plain, init state, seg
                d.Q = Qs[qi];
                const int T = Ts[ti];
                int32_t *seg = variant == 2 ? make_seg(B, T) : NULL;
                ssd_case c = make_case(&d, B, T, seg);
                const size_t ny = (size_t)B * T * d.H * d.P, ns = (size_t)B * d.H * d.P * d.N;
                const int nc = kd_mamba2_nchunks(T, d.Q);
                float *y1 = kd_malloc(ny * 4), *y2 = kd_malloc(ny * 4);
                float *f1 = kd_malloc(ns * 4), *f2 = kd_malloc(ns * 4), *init = NULL;
                float *states = kd_malloc(ns * nc * 4);
                kd_scratch ws = host_scratch(kd_cpu_mamba2_ssd_scratch(NULL, &d, B, T));
                if (variant == 1) {
                    init = kd_malloc(ns * 4);
                    fill(init, ns, -1.0f, 1.0f);
                }
                kd_cpu_mamba2_ssd_fwd(NULL, y1, states, f1, init, &c.in, &d, ws);
                kd_cpu_mamba2_scan_ref(NULL, y2, f2, init, &c.in, &d, ws);
                char what[128];
                snprintf(what, sizeof what, "y chunked(Q=%d) vs sequential, T=%d, variant %d", d.Q,
                         T, variant);
                check_close(what, y1, y2, ny, 1e-5);
                snprintf(what, sizeof what, "final state chunked(Q=%d) vs sequential, T=%d, v%d",
                         d.Q, T, variant);
                check_close(what, f1, f2, ns, 1e-5);
                free(y1), free(y2), free(f1), free(f2), free(init), free(states), free(seg);
                free(c.xbc), free(c.dt), free(ws.p);
            }
}

// Under seg each document must give what it gives alone (fresh state at its start).
static void test_documents_independent(void) {
    kd_mamba2_dims d = {4, 2, 8, 8, 4, 8};
    const int B = 2, T = 30;
    int32_t *seg = make_seg(B, T);
    ssd_case c = make_case(&d, B, T, seg);
    const int HP = d.H * d.P;
    float *y = kd_malloc((size_t)B * T * HP * 4), *yd = kd_malloc((size_t)T * HP * 4);
    kd_scratch ws = host_scratch(kd_cpu_mamba2_ssd_scratch(NULL, &d, B, T)); // covers the parts
    kd_cpu_mamba2_ssd_fwd(NULL, y, NULL, NULL, NULL, &c.in, &d, ws);
    for (int b = 0; b < B; b++) {
        int s = 0;
        for (int t = 1; t <= T; t++) {
            if (t < T && seg[b * T + t] == seg[b * T + t - 1]) continue;
            size_t r0 = (size_t)b * T + s; // document [s,t) of row b run alone
            kd_mamba2_in one = c.in;
            one.x += r0 * c.ld, one.Bm += r0 * c.ld, one.Cm += r0 * c.ld, one.dt += r0 * c.lddt;
            one.seg = NULL, one.B = 1, one.T = t - s;
            kd_cpu_mamba2_ssd_fwd(NULL, yd, NULL, NULL, NULL, &one, &d, ws);
            char what[96];
            snprintf(what, sizeof what, "row %d document [%d,%d) alone vs packed", b, s, t);
            check_close(what, y + r0 * HP, yd, (size_t)(t - s) * HP, 1e-5);
            s = t;
        }
    }
    free(y), free(yd), free(seg), free(c.xbc), free(c.dt), free(ws.p);
}

// Layer: prefill(T) == T steps from an empty cache, in outputs and final states; and a
// prefill of the first T1 tokens continued by steps matches the full prefill.
static void test_prefill_vs_step(void) {
    kd_ops ops = test_ops();
    kd_mamba2_cfg cfg = {16, {4, 2, 8, 8, 4, 8}, 1e-5f};
    test_layer L;
    layer_init(&L, cfg);
    const int B = 2, T = 19, T1 = 11, C = cfg.d_model;
    float *inp = kd_malloc((size_t)B * T * C * 4), *out = kd_malloc((size_t)B * T * C * 4);
    fill(inp, (size_t)B * T * C, -1.0f, 1.0f);
    float *abuf = kd_calloc(kd_mamba2_acts_floats(&cfg, B, T), 4);
    kd_mamba2_acts a;
    kd_mamba2_acts_bind(&a, abuf, &cfg, B, T);
    const size_t ncache = kd_mamba2_cache_floats(&cfg, B);
    float *cb1 = kd_calloc(ncache, 4), *cb2 = kd_calloc(ncache, 4);
    kd_mamba2_cache c1, c2;
    kd_mamba2_cache_bind(&c1, cb1, &cfg, B);
    kd_mamba2_cache_bind(&c2, cb2, &cfg, B);
    size_t nws = kd_mamba2_scratch_bytes(&ops, &cfg, B, T); // the prefills
    if (kd_mamba2_decode_scratch_bytes(&ops, &cfg, B, 1) > nws)
        nws = kd_mamba2_decode_scratch_bytes(&ops, &cfg, B, 1); // the steps
    kd_scratch ws = host_scratch(nws);
    float *work = kd_malloc(kd_mamba2_work_floats(&cfg, B, 1) * 4);
    kd_mamba2_prefill(&ops, &cfg, &L.p, &a, ws, &c1, 0, out, inp, B, T);

    float *tok = kd_malloc((size_t)B * C * 4), *o = kd_malloc((size_t)B * C * 4);
    float *outs = kd_malloc((size_t)B * T * C * 4);
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++) memcpy(tok + b * C, inp + ((size_t)b * T + t) * C, C * 4);
        kd_mamba2_step(&ops, &cfg, &L.p, work, ws, &c2, o, tok, B, 1, NULL);
        for (int b = 0; b < B; b++) memcpy(outs + ((size_t)b * T + t) * C, o + b * C, C * 4);
    }
    check_close("step outputs vs prefill outputs", outs, out, (size_t)B * T * C, 1e-5);
    const size_t nconv = (size_t)B * L.s.conv_dim * (cfg.k.W - 1);
    const size_t nssm = (size_t)B * cfg.k.H * cfg.k.P * cfg.k.N;
    check_close("conv_state after T steps vs prefill", c2.conv_state, c1.conv_state, nconv, 1e-6);
    check_close("ssm_state after T steps vs prefill", c2.ssm_state, c1.ssm_state, nssm, 1e-5);

    // prefill T1 tokens (rows copied to a (B,T1,C) buffer), then step the rest
    float *inp1 = kd_malloc((size_t)B * T1 * C * 4), *out1 = kd_malloc((size_t)B * T1 * C * 4);
    for (int b = 0; b < B; b++)
        memcpy(inp1 + (size_t)b * T1 * C, inp + (size_t)b * T * C, T1 * C * 4);
    memset(cb2, 0, ncache * 4);
    kd_mamba2_prefill(&ops, &cfg, &L.p, &a, ws, &c2, 0, out1, inp1, B, T1);
    for (int t = T1; t < T; t++) {
        for (int b = 0; b < B; b++) memcpy(tok + b * C, inp + ((size_t)b * T + t) * C, C * 4);
        kd_mamba2_step(&ops, &cfg, &L.p, work, ws, &c2, o, tok, B, 1, NULL);
        for (int b = 0; b < B; b++) {
            char what[64];
            snprintf(what, sizeof what, "prefill(%d)+step at t=%d, row %d", T1, t, b);
            check_close(what, o + b * C, out + ((size_t)b * T + t) * C, C, 1e-5);
        }
    }
    check_close("ssm_state prefill+steps vs full prefill", c2.ssm_state, c1.ssm_state, nssm, 1e-5);
    free(inp), free(out), free(abuf), free(cb1), free(cb2), free(tok), free(o), free(outs);
    free(inp1), free(out1), free(ws.p), free(work);
    layer_free(&L);
}

int main(void) {
    test_chunked_vs_sequential();
    test_documents_independent();
    test_prefill_vs_step();
    return check_done("test_mamba2_ssd");
}
