// parity_cases.c: the cases of gpu_parity (one function per op group, then the table
// g_cases: op, shape, tolerances, whether in the --quick subset). Each case builds its
// inputs from the run's seed, runs the op(s) on the run's backend and records outputs.
#include "gpu/parity.h"

// ============================================================================ mem, vec

// d = {n}: alloc zero-fills, upload/download round trip, copy, zero of a middle range.
static void c_mem(run *r, const pcase *c) {
    size_t n = (size_t)c->d[0];
    float *a = rnd(r, n, -1, 1);
    out(r, "upload/download", a, n);
    float *b = r->o->mem->alloc(r->o->ctx, n * sizeof(float));
    r->alloc[r->nalloc++] = b;
    out(r, "alloc zero-filled", b, n);
    r->o->mem->copy(r->o->ctx, b, a, n * sizeof(float));
    out(r, "copy", b, n);
    r->o->mem->zero(r->o->ctx, b + n / 4, (n / 2) * sizeof(float));
    out(r, "zero (middle half)", b, n);
}
// d = {n}: add, axpy, scale, sumsq.
static void c_vec(run *r, const pcase *c) {
    size_t n = (size_t)c->d[0];
    const kd_vec_ops *v = r->o->vec;
    float *a = rnd(r, n, -1, 1), *b = rnd(r, n, -1, 1), *o = rnd(r, n, -1, 1);
    v->add(r->o->ctx, o, a, b, n);
    out(r, "add", o, n);
    v->axpy(r->o->ctx, o, -0.75f, a, n);
    out(r, "axpy", o, n);
    v->scale(r->o->ctx, o, 1.5f, n);
    out(r, "scale", o, n);
    float s = (float)v->sumsq(r->o->ctx, o, n);
    out_host(r, "sumsq", &s, 1);
}

// ============================================================================ nn

// d = {N, C, V}: embedding fwd; bwd accumulates into a pre-filled dwte (ids repeat).
static void c_embedding(run *r, const pcase *c) {
    int N = c->d[0], C = c->d[1], V = c->d[2];
    const kd_nn_ops *nn = r->o->nn;
    NEED(r, nn->embedding_fwd);
    NEED(r, nn->embedding_bwd);
    int32_t *ids = irnd(r, N, 0, V);
    float *wte = rnd(r, (size_t)V * C, -1, 1), *o = rnd(r, (size_t)N * C, -1, 1);
    float *dwte = rnd(r, (size_t)V * C, -1, 1), *dout = rnd(r, (size_t)N * C, -1, 1);
    nn->embedding_fwd(r->o->ctx, o, ids, wte, N, C);
    out(r, "out", o, (size_t)N * C);
    nn->embedding_bwd(r->o->ctx, dwte, dout, ids, N, C);
    out(r, "dwte (+=)", dwte, (size_t)V * C);
}
// d = {N, C, OC}: matmul fwd; bwd overwrites a pre-filled dinp and accumulates into dw, then
// dw alone.
static void c_matmul(run *r, const pcase *c) {
    int N = c->d[0], C = c->d[1], OC = c->d[2];
    const kd_nn_ops *nn = r->o->nn;
    NEED(r, nn->matmul_fwd);
    NEED(r, nn->matmul_bwd);
    float *inp = rnd(r, (size_t)N * C, -1, 1), *w = rnd(r, (size_t)OC * C, -1, 1);
    float *o = rnd(r, (size_t)N * OC, -1, 1), *dout = rnd(r, (size_t)N * OC, -1, 1);
    float *dinp = rnd(r, (size_t)N * C, -1, 1), *dw = rnd(r, (size_t)OC * C, -1, 1);
    nn->matmul_fwd(r->o->ctx, o, inp, w, N, C, OC);
    out(r, "out", o, (size_t)N * OC);
    nn->matmul_bwd(r->o->ctx, dinp, dw, dout, inp, w, N, C, OC);
    out(r, "dinp (=)", dinp, (size_t)N * C);
    out(r, "dw (+=)", dw, (size_t)OC * C);
    nn->matmul_bwd(r->o->ctx, NULL, dw, dout, inp, w, N, C, OC);
    out(r, "dw (+=, dinp NULL)", dw, (size_t)OC * C);
}
// d = {N, C}: RMSNorm fwd (out, rstd) and bwd (dinp, dw accumulate).
static void c_rmsnorm(run *r, const pcase *c) {
    int N = c->d[0], C = c->d[1];
    const kd_nn_ops *nn = r->o->nn;
    NEED(r, nn->rmsnorm_fwd);
    NEED(r, nn->rmsnorm_bwd);
    float *inp = rnd(r, (size_t)N * C, -2, 2), *w = rnd(r, C, 0.5f, 1.5f);
    float *o = rnd(r, (size_t)N * C, -1, 1), *rstd = rnd(r, N, -1, 1);
    float *dout = rnd(r, (size_t)N * C, -1, 1), *dinp = rnd(r, (size_t)N * C, -1, 1);
    float *dw = rnd(r, C, -1, 1);
    nn->rmsnorm_fwd(r->o->ctx, o, rstd, inp, w, N, C, 1e-5f);
    out(r, "out", o, (size_t)N * C);
    out(r, "rstd", rstd, N);
    nn->rmsnorm_bwd(r->o->ctx, dinp, dw, dout, inp, w, rstd, N, C);
    out(r, "dinp (+=)", dinp, (size_t)N * C);
    out(r, "dw (+=)", dw, C);
}
// d = {N, nrot, heads, HD}: RoPE on the first nrot of `heads` heads per row; fwd then bwd on
// another buffer; columns past nrot*HD must stay untouched.
static void c_rope(run *r, const pcase *c) {
    int N = c->d[0], nrot = c->d[1], heads = c->d[2], HD = c->d[3], rs = heads * HD;
    const kd_nn_ops *nn = r->o->nn;
    NEED(r, nn->rope_fwd);
    NEED(r, nn->rope_bwd);
    float *fr = malloc(sizeof(float) * HD / 2 + 4);
    for (int i = 0; i < HD / 2; i++) fr[i] = kd_rope_inv_freq(i, HD, 10000.0f);
    float *inv = up(r, fr, sizeof(float) * HD / 2);
    free(fr);
    int32_t *pos = irnd(r, N, 0, 4096);
    float *x = rnd(r, (size_t)N * rs, -1, 1), *dx = rnd(r, (size_t)N * rs, -1, 1);
    nn->rope_fwd(r->o->ctx, x, pos, N, nrot, rs, HD, inv);
    out(r, "x (fwd)", x, (size_t)N * rs);
    nn->rope_bwd(r->o->ctx, dx, pos, N, nrot, rs, HD, inv);
    out(r, "dx (bwd)", dx, (size_t)N * rs);
}
// d = {N, F}: SwiGLU fwd; bwd overwrites a pre-filled dgu.
static void c_swiglu(run *r, const pcase *c) {
    int N = c->d[0], F = c->d[1];
    const kd_nn_ops *nn = r->o->nn;
    NEED(r, nn->swiglu_fwd);
    NEED(r, nn->swiglu_bwd);
    float *gu = rnd(r, (size_t)N * 2 * F, -4, 4), *o = rnd(r, (size_t)N * F, -1, 1);
    float *dout = rnd(r, (size_t)N * F, -1, 1), *dgu = rnd(r, (size_t)N * 2 * F, -1, 1);
    nn->swiglu_fwd(r->o->ctx, o, gu, N, F);
    out(r, "out", o, (size_t)N * F);
    nn->swiglu_bwd(r->o->ctx, dgu, dout, gu, N, F);
    out(r, "dgu (=)", dgu, (size_t)N * 2 * F);
}
// d = {N, V}: cross entropy with weights and ignored rows (target -1), with dlogits, then
// without weights in place (dlogits aliases logits).
static void c_cross_entropy(run *r, const pcase *c) {
    int N = c->d[0], V = c->d[1];
    const kd_nn_ops *nn = r->o->nn;
    NEED(r, nn->cross_entropy);
    float *logits = rnd(r, (size_t)N * V, -6, 6), *wt = rnd(r, N, 0, 2);
    int32_t *tg = irnd(r, N, -1, V); // -1: ignored
    float *loss = rnd(r, N, -1, 1), *dl = rnd(r, (size_t)N * V, -1, 1);
    nn->cross_entropy(r->o->ctx, loss, dl, logits, tg, wt, N, V, 0.5f);
    out(r, "loss", loss, N);
    out(r, "dlogits", dl, (size_t)N * V);
    nn->cross_entropy(r->o->ctx, loss, logits, logits, tg, NULL, N, V, 1.0f);
    out(r, "loss (w NULL)", loss, N);
    out(r, "dlogits (in place)", logits, (size_t)N * V);
}
// d = {B, T, NH, NKV, HD, seg}: memory-lean attention forward (out, lse), backward (dqkv
// from a pre-filled buffer: overwritten) and the probabilities on demand.
static void c_attention(run *r, const pcase *c) {
    int B = c->d[0], T = c->d[1], NH = c->d[2], NKV = c->d[3], HD = c->d[4];
    const kd_nn_ops *nn = r->o->nn;
    NEED(r, nn->attention_scratch);
    NEED(r, nn->attention_fwd);
    NEED(r, nn->attention_bwd);
    NEED(r, nn->attention_probs);
    size_t nqkv = (size_t)B * T * (NH + 2 * NKV) * HD, nout = (size_t)B * T * NH * HD;
    size_t nlse = (size_t)B * NH * T;
    float *qkv = rnd(r, nqkv, -1, 1), *dout = rnd(r, nout, -1, 1);
    int32_t *seg = c->d[5] ? segs(r, B, T) : NULL;
    float *o = rnd(r, nout, -1, 1), *lse = rnd(r, nlse, -1, 1), *dqkv = rnd(r, nqkv, -1, 1);
    kd_scratch ws = scratch(r, nn->attention_scratch(r->o->ctx, B, T, NH, HD));
    nn->attention_fwd(r->o->ctx, o, lse, qkv, seg, B, T, NH, NKV, HD, ws);
    out(r, "out", o, nout);
    out(r, "lse", lse, nlse);
    nn->attention_bwd(r->o->ctx, dqkv, dout, o, lse, qkv, seg, B, T, NH, NKV, HD, ws);
    out(r, "dqkv", dqkv, nqkv);
    if ((size_t)nlse * T <= (size_t)1 << 24) { // the (B,NH,T,T) probabilities when small
        float *P = rnd(r, nlse * T, -1, 1);
        nn->attention_probs(r->o->ctx, P, qkv, lse, seg, B, T, NH, NKV, HD);
        out(r, "probs", P, nlse * T);
    }
}

// ============================================================================ losses

// d = {N, V, div}: full-vocabulary distillation (div 0/1/2), a zero-weight row, dlogits.
static void c_distill_full(run *r, const pcase *c) {
    int N = c->d[0], V = c->d[1];
    kd_divergence div = (kd_divergence)c->d[2];
    const kd_losses_ops *l = r->o->losses;
    NEED(r, l->distill_full);
    NEED(r, l->distill_full_scratch);
    float *s = rnd(r, (size_t)N * V, -5, 5), *t = rnd(r, (size_t)N * V, -5, 5);
    float *wh = malloc(sizeof(float) * N + 4);
    for (int i = 0; i < N; i++) wh[i] = i == 1 ? 0.0f : 0.5f + frand(r);
    float *w = up(r, wh, sizeof(float) * N);
    free(wh);
    float *loss = rnd(r, N, -1, 1), *dl = rnd(r, (size_t)N * V, -1, 1);
    kd_scratch ws = scratch(r, l->distill_full_scratch(r->o->ctx, N, V));
    l->distill_full(r->o->ctx, loss, dl, s, t, w, N, V, div, 0.3f, 2.0f, 0.25f, ws);
    out(r, "loss", loss, N);
    out(r, "dlogits (=)", dl, (size_t)N * V);
}
// d = {N, V, K, mode}: distillation to a cached top-K teacher.
static void c_distill_topk(run *r, const pcase *c) {
    int N = c->d[0], V = c->d[1], K = c->d[2];
    kd_topk_mode mode = (kd_topk_mode)c->d[3];
    const kd_losses_ops *l = r->o->losses;
    NEED(r, l->distill_topk);
    NEED(r, l->distill_topk_scratch);
    int32_t *ids = malloc(sizeof(int32_t) * N * K + 4);
    float *lp = malloc(sizeof(float) * N * K + 4);
    int *perm = malloc(sizeof(int) * V);
    for (int i = 0; i < N; i++) {
        for (int v = 0; v < V; v++) perm[v] = v;
        for (int k = 0; k < K; k++) { // K distinct ids: a partial Fisher-Yates shuffle
            int j = k + irand(r, V - k), tmp = perm[k];
            perm[k] = perm[j], perm[j] = tmp;
            ids[(size_t)i * K + k] = perm[k];
        }
        // a teacher log-softmax restricted to K ids holding 90% of the mass
        double z = 0;
        float *row = lp + (size_t)i * K;
        for (int k = 0; k < K; k++) row[k] = 4.0f * frand(r), z += exp(row[k]);
        for (int k = 0; k < K; k++) row[k] = (float)(row[k] - log(z) + log(0.9));
    }
    int32_t *dids = up(r, ids, sizeof(int32_t) * N * K);
    float *dlp = up(r, lp, sizeof(float) * N * K);
    free(ids), free(lp), free(perm);
    float *s = rnd(r, (size_t)N * V, -5, 5), *w = rnd(r, N, 0.5f, 1.5f);
    float *loss = rnd(r, N, -1, 1), *dl = rnd(r, (size_t)N * V, -1, 1);
    kd_scratch ws = scratch(r, l->distill_topk_scratch(r->o->ctx, N, V, K));
    l->distill_topk(r->o->ctx, loss, dl, s, dids, dlp, w, N, V, K, mode, 1.5f, 0.5f, ws);
    out(r, "loss", loss, N);
    out(r, "dlogits (=)", dl, (size_t)N * V);
}
// d = {N, V}: token log-probabilities fwd and bwd (overwrites dlogits).
static void c_token_logp(run *r, const pcase *c) {
    int N = c->d[0], V = c->d[1];
    const kd_losses_ops *l = r->o->losses;
    NEED(r, l->token_logp_fwd);
    NEED(r, l->token_logp_bwd);
    float *logits = rnd(r, (size_t)N * V, -6, 6), *logp = rnd(r, N, -1, 1);
    int32_t *tg = irnd(r, N, -1, V);
    float *dlogp = rnd(r, N, -1, 1), *dl = rnd(r, (size_t)N * V, -1, 1);
    l->token_logp_fwd(r->o->ctx, logp, logits, tg, N, V);
    out(r, "logp", logp, N);
    l->token_logp_bwd(r->o->ctx, dl, dlogp, logits, tg, N, V);
    out(r, "dlogits (=)", dl, (size_t)N * V);
}

// ============================================================================ optim

// d = {n, t}: AdamW at step t from pre-filled moments.
static void c_adamw(run *r, const pcase *c) {
    size_t n = (size_t)c->d[0];
    NEED(r, r->o->optim->adamw);
    float *p = rnd(r, n, -1, 1), *g = rnd(r, n, -1, 1), *m = rnd(r, n, -0.1f, 0.1f);
    float *v = rnd(r, n, 0, 0.01f);
    r->o->optim->adamw(r->o->ctx, p, g, m, v, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, c->d[1], 0.6f);
    out(r, "p", p, n);
    out(r, "m", m, n);
    out(r, "v", v, n);
}

// ============================================================================ Mamba-2

// Random Mamba-2 inputs: one packed (B*T, ld) buffer [x | B | C | dt | pad] as the mixer
// lays them out, and the per-head parameters.
typedef struct m2set {
    kd_mamba2_dims d;
    kd_mamba2_in in;
    int ld;
} m2set;
static m2set m2_inputs(run *r, const pcase *c) {
    m2set m;
    memset(&m, 0, sizeof m);
    int B = c->d[0], T = c->d[1], H = c->d[2], nkv = c->d[3], P = c->d[4], Q = c->d[5];
    m.d.H = H, m.d.n_kv = nkv, m.d.P = P, m.d.N = P, m.d.W = 4, m.d.Q = Q;
    int xw = nkv * P, bw = nkv * P, cw = H * P;
    m.ld = xw + bw + cw + H + 3;
    size_t rows = (size_t)B * T;
    float *h = malloc(sizeof(float) * rows * m.ld + 4);
    for (size_t i = 0; i < rows; i++) {
        float *row = h + i * m.ld;
        for (int j = 0; j < m.ld; j++) row[j] = 2 * frand(r) - 1;
        for (int j = 0; j < H; j++) row[xw + bw + cw + j] = -3 + 3 * frand(r); // raw dt
    }
    float *buf = up(r, h, sizeof(float) * rows * m.ld);
    free(h);
    m.in.x = buf, m.in.Bm = buf + xw, m.in.Cm = buf + xw + bw, m.in.dt = buf + xw + bw + cw;
    m.in.ldx = m.in.ldb = m.in.ldc = m.in.lddt = m.ld;
    m.in.dt_bias = rnd(r, H, -1, 0.5f), m.in.A_log = rnd(r, H, 0, 1.5f);
    m.in.D = rnd(r, H, -1, 1);
    m.in.seg = c->d[6] ? segs(r, B, T) : NULL;
    m.in.B = B, m.in.T = T;
    return m;
}
// A gradient set for m: one packed (B*T, ld) buffer pre-filled (activation gradients are
// overwritten, padding untouched) and pre-filled parameter gradients (accumulate).
static kd_mamba2_grad m2_grads(run *r, const m2set *m, float **packed) {
    kd_mamba2_grad g;
    int H = m->d.H, xw = m->d.n_kv * m->d.P, cw = H * m->d.N;
    float *buf = rnd(r, (size_t)m->in.B * m->in.T * m->ld, -1, 1);
    *packed = buf;
    g.dx = buf, g.dB = buf + xw, g.dC = buf + 2 * xw, g.ddt = buf + 2 * xw + cw;
    g.ldx = g.ldb = g.ldc = g.lddt = m->ld;
    g.ddt_bias = rnd(r, H, -1, 1), g.dA_log = rnd(r, H, -1, 1), g.dD = rnd(r, H, -1, 1);
    return g;
}
static void m2_out_grads(run *r, const m2set *m, const kd_mamba2_grad *g, const float *packed) {
    int H = m->d.H;
    out(r, "dx|dB|dC|ddt (=)", packed, (size_t)m->in.B * m->in.T * m->ld);
    out(r, "ddt_bias (+=)", g->ddt_bias, H);
    out(r, "dA_log (+=)", g->dA_log, H);
    out(r, "dD (+=)", g->dD, H);
}

// d = {B, T, CD, W, seg}: causal conv fwd (out, conv_state) and bwd.
static void c_m2_conv(run *r, const pcase *c) {
    int B = c->d[0], T = c->d[1], CD = c->d[2], W = c->d[3], ld = CD + 5;
    const kd_mamba2_ops *m = r->o->mamba2;
    NEED(r, m->conv_fwd);
    NEED(r, m->conv_bwd);
    NEED(r, m->conv_scratch);
    float *inp = rnd(r, (size_t)B * T * ld, -1, 1), *w = rnd(r, (size_t)CD * W, -0.5f, 0.5f);
    float *bias = rnd(r, CD, -0.2f, 0.2f), *o = rnd(r, (size_t)B * T * CD, -1, 1);
    float *cs = rnd(r, (size_t)B * CD * (W - 1), -1, 1);
    int32_t *seg = c->d[4] ? segs(r, B, T) : NULL;
    float *dout = rnd(r, (size_t)B * T * CD, -1, 1), *dinp = rnd(r, (size_t)B * T * ld, -1, 1);
    float *dw = rnd(r, (size_t)CD * W, -1, 1), *db = rnd(r, CD, -1, 1);
    kd_scratch ws = scratch(r, m->conv_scratch(r->o->ctx, B, T, CD, W));
    m->conv_fwd(r->o->ctx, o, cs, inp, ld, w, bias, seg, B, T, CD, W, ws);
    out(r, "out", o, (size_t)B * T * CD);
    out(r, "conv_state", cs, (size_t)B * CD * (W - 1));
    m->conv_bwd(r->o->ctx, dinp, ld, dw, db, dout, inp, ld, w, bias, seg, B, T, CD, W, ws);
    out(r, "dinp (=)", dinp, (size_t)B * T * ld);
    out(r, "dw (+=)", dw, (size_t)CD * W);
    out(r, "dbias (+=)", db, CD);
}
// d = {B, T, H, n_kv, P, Q, seg}: chunked SSD fwd (y, states, final state from an initial
// state) and bwd.
static void c_m2_ssd(run *r, const pcase *c) {
    const kd_mamba2_ops *mo = r->o->mamba2;
    NEED(r, mo->ssd_fwd);
    NEED(r, mo->ssd_bwd);
    NEED(r, mo->ssd_scratch);
    m2set m = m2_inputs(r, c);
    int B = m.in.B, T = m.in.T, H = m.d.H, P = m.d.P, N = m.d.N, nc = (T + m.d.Q - 1) / m.d.Q;
    size_t ny = (size_t)B * T * H * P, nst = (size_t)B * H * nc * P * N, nf = (size_t)B * H * P * N;
    float *y = rnd(r, ny, -1, 1), *st = rnd(r, nst, -1, 1), *fin = rnd(r, nf, -1, 1);
    float *init = rnd(r, nf, -0.5f, 0.5f), *dy = rnd(r, ny, -1, 1), *packed;
    kd_mamba2_grad g = m2_grads(r, &m, &packed);
    kd_scratch ws = scratch(r, mo->ssd_scratch(r->o->ctx, &m.d, B, T));
    mo->ssd_fwd(r->o->ctx, y, st, fin, init, &m.in, &m.d, ws);
    out(r, "y", y, ny);
    out(r, "states", st, nst);
    out(r, "final_state", fin, nf);
    mo->ssd_bwd(r->o->ctx, &g, dy, st, &m.in, &m.d, ws);
    m2_out_grads(r, &m, &g, packed);
}
// Same shape as c_m2_ssd: the sequential reference scan.
static void c_m2_scan_ref(run *r, const pcase *c) {
    const kd_mamba2_ops *mo = r->o->mamba2;
    NEED(r, mo->scan_ref);
    NEED(r, mo->ssd_scratch);
    m2set m = m2_inputs(r, c);
    int B = m.in.B, T = m.in.T, H = m.d.H, P = m.d.P, N = m.d.N;
    size_t ny = (size_t)B * T * H * P, nf = (size_t)B * H * P * N;
    float *y = rnd(r, ny, -1, 1), *fin = rnd(r, nf, -1, 1), *init = rnd(r, nf, -0.5f, 0.5f);
    kd_scratch ws = scratch(r, mo->ssd_scratch(r->o->ctx, &m.d, B, T));
    mo->scan_ref(r->o->ctx, y, fin, init, &m.in, &m.d, ws);
    out(r, "y", y, ny);
    out(r, "final_state", fin, nf);
}
// d = {N, D, G}: gated group RMSNorm fwd and bwd (z strided).
static void c_m2_gnorm(run *r, const pcase *c) {
    int N = c->d[0], D = c->d[1], G = c->d[2], ldz = D + 3;
    const kd_mamba2_ops *m = r->o->mamba2;
    NEED(r, m->gnorm_fwd);
    NEED(r, m->gnorm_bwd);
    float *y = rnd(r, (size_t)N * D, -2, 2), *z = rnd(r, (size_t)N * ldz, -2, 2);
    float *w = rnd(r, D, 0.5f, 1.5f), *o = rnd(r, (size_t)N * D, -1, 1);
    float *rstd = rnd(r, (size_t)N * (D / G), -1, 1), *dout = rnd(r, (size_t)N * D, -1, 1);
    float *dy = rnd(r, (size_t)N * D, -1, 1), *dz = rnd(r, (size_t)N * ldz, -1, 1);
    float *dw = rnd(r, D, -1, 1);
    m->gnorm_fwd(r->o->ctx, o, rstd, y, z, ldz, w, N, D, G, 1e-5f);
    out(r, "out", o, (size_t)N * D);
    out(r, "rstd", rstd, (size_t)N * (D / G));
    m->gnorm_bwd(r->o->ctx, dy, dz, ldz, dw, dout, y, z, ldz, w, rstd, N, D, G);
    out(r, "dy (=)", dy, (size_t)N * D);
    out(r, "dz (=)", dz, (size_t)N * ldz);
    out(r, "dw (+=)", dw, D);
}
// Same shape as c_m2_ssd: the MOHAWK matrix fwd and bwd.
static void c_m2_mat(run *r, const pcase *c) {
    const kd_mamba2_ops *mo = r->o->mamba2;
    NEED(r, mo->mat_fwd);
    NEED(r, mo->mat_bwd);
    NEED(r, mo->mat_scratch);
    m2set m = m2_inputs(r, c);
    int B = m.in.B, T = m.in.T, H = m.d.H;
    size_t nm = (size_t)B * H * T * T;
    float *M = rnd(r, nm, -1, 1), *dM = rnd(r, nm, -1, 1), *packed;
    kd_mamba2_grad g = m2_grads(r, &m, &packed);
    kd_scratch ws = scratch(r, mo->mat_scratch(r->o->ctx, &m.d, B, T));
    mo->mat_fwd(r->o->ctx, M, &m.in, &m.d, ws);
    out(r, "M", M, nm);
    mo->mat_bwd(r->o->ctx, &g, dM, &m.in, &m.d, ws);
    m2_out_grads(r, &m, &g, packed);
}

// ============================================================================ decode

// d = {B, Tmax, NH, NKV, HD}: one decode step per row with n[b] spread over [1, Tmax].
static void c_dec_attention(run *r, const pcase *c) {
    int B = c->d[0], Tmax = c->d[1], NH = c->d[2], NKV = c->d[3], HD = c->d[4];
    const kd_decode_ops *dec = r->o->decode;
    NEED(r, dec->attention);
    NEED(r, dec->attention_scratch);
    size_t S = 2 * (size_t)NKV * HD, R = (size_t)(NH + 2 * NKV) * HD;
    float *kv = rnd(r, (size_t)B * Tmax * S, -1, 1), *qkv = rnd(r, (size_t)B * R, -2, 2);
    float *o = rnd(r, (size_t)B * NH * HD, -1, 1);
    int32_t *nh = malloc(sizeof(int32_t) * B + 4);
    for (int b = 0; b < B; b++) nh[b] = b == 0 ? Tmax : 1 + irand(r, Tmax);
    int32_t *n = up(r, nh, sizeof(int32_t) * B);
    free(nh);
    kd_scratch ws = scratch(r, dec->attention_scratch(r->o->ctx, B, Tmax, NH));
    dec->attention(r->o->ctx, o, kv, qkv, n, B, Tmax, NH, NKV, HD, ws);
    out(r, "out", o, (size_t)B * NH * HD);
    out(r, "kv cache", kv, (size_t)B * Tmax * S);
}
// d = {B, H, n_kv, P, W}: two Mamba-2 recurrent steps from random states.
static void c_dec_step(run *r, const pcase *c) {
    int B = c->d[0];
    kd_mamba2_dims d = {c->d[1], c->d[2], c->d[3], c->d[3], c->d[4], 16};
    const kd_decode_ops *dec = r->o->decode;
    NEED(r, dec->mamba2_step);
    NEED(r, dec->mamba2_step_scratch);
    int CD = 2 * d.n_kv * d.P + d.H * d.N, ld = CD + 2, lddt = d.H + 1;
    size_t ncs = (size_t)B * CD * (d.W - 1), nss = (size_t)B * d.H * d.P * d.N;
    size_t ny = (size_t)B * d.H * d.P;
    float *cw = rnd(r, (size_t)CD * d.W, -0.5f, 0.5f), *cb = rnd(r, CD, -0.2f, 0.2f);
    float *dtb = rnd(r, d.H, -1, 0.5f), *alog = rnd(r, d.H, 0, 1.5f), *D = rnd(r, d.H, -1, 1);
    float *cs = rnd(r, ncs, -1, 1), *ss = rnd(r, nss, -1, 1), *y = rnd(r, ny, -1, 1);
    kd_scratch ws = scratch(r, dec->mamba2_step_scratch(r->o->ctx, &d, B));
    for (int s = 0; s < 2; s++) {
        float *xbc = rnd(r, (size_t)B * ld, -1, 1), *dt = rnd(r, (size_t)B * lddt, -3, 0);
        dec->mamba2_step(r->o->ctx, y, cs, ss, xbc, ld, dt, lddt, cw, cb, dtb, alog, D, &d, B, ws);
    }
    out(r, "y", y, ny);
    out(r, "conv_state", cs, ncs);
    out(r, "ssm_state", ss, nss);
}

// ============================================================================ the cases

#define MEM KD_CAP_MEM
#define VEC KD_CAP_VEC
#define NN KD_CAP_NN
#define LOS KD_CAP_LOSSES
#define OPT KD_CAP_OPTIM
#define M2 KD_CAP_MAMBA2
#define DEC KD_CAP_DECODE

const pcase g_cases[] = {
    {MEM, "alloc/upload/download/copy/zero", c_mem, {1000}, 0, 0, 1},
    {MEM, "alloc/upload/download/copy/zero", c_mem, {1 << 20}, 0, 0, 0},
    {VEC, "add/axpy/scale/sumsq", c_vec, {777}, 1e-6, 1e-6, 1},
    {VEC, "add/axpy/scale/sumsq", c_vec, {3 << 20}, 1e-6, 1e-5, 0},
    {NN, "embedding_fwd/bwd", c_embedding, {37, 24, 11}, 1e-6, 1e-6, 1},
    {NN, "embedding_fwd/bwd", c_embedding, {4096, 256, 1000}, 1e-5, 1e-5, 0},
    {NN, "matmul_fwd/bwd", c_matmul, {7, 13, 5}, 1e-5, 1e-5, 1},
    {NN, "matmul_fwd/bwd", c_matmul, {256, 384, 1152}, 1e-5, 1e-4, 0},
    {NN, "matmul_fwd/bwd", c_matmul, {1000, 768, 3072}, 1e-5, 1e-4, 0},
    {NN, "rmsnorm_fwd/bwd", c_rmsnorm, {9, 40}, 1e-5, 1e-5, 1},
    {NN, "rmsnorm_fwd/bwd", c_rmsnorm, {512, 2048}, 1e-5, 1e-4, 0},
    {NN, "rope_fwd/bwd", c_rope, {5, 3, 4, 8}, 1e-5, 1e-5, 1},
    {NN, "rope_fwd/bwd", c_rope, {1024, 12, 16, 64}, 1e-5, 1e-5, 0},
    {NN, "swiglu_fwd/bwd", c_swiglu, {7, 19}, 1e-6, 1e-5, 1},
    {NN, "swiglu_fwd/bwd", c_swiglu, {512, 2816}, 1e-6, 1e-5, 0},
    {NN, "attention_fwd/bwd/probs", c_attention, {2, 9, 4, 2, 8, 1}, 1e-5, 1e-4, 1},
    {NN, "attention_fwd/bwd/probs", c_attention, {2, 200, 6, 2, 32, 1}, 1e-5, 1e-4, 0},
    {NN, "attention_fwd/bwd", c_attention, {1, 2048, 8, 2, 64, 0}, 1e-5, 1e-4, 0},
    {NN, "cross_entropy", c_cross_entropy, {6, 50}, 1e-5, 1e-5, 1},
    {NN, "cross_entropy", c_cross_entropy, {256, 32000}, 1e-5, 1e-4, 0},
    {LOS, "distill_full forward KL", c_distill_full, {5, 40, 0}, 1e-5, 1e-4, 1},
    {LOS, "distill_full reverse KL", c_distill_full, {5, 40, 1}, 1e-5, 1e-4, 1},
    {LOS, "distill_full JSD", c_distill_full, {5, 40, 2}, 1e-5, 1e-4, 1},
    {LOS, "distill_full forward KL", c_distill_full, {128, 32000, 0}, 1e-5, 1e-4, 0},
    {LOS, "distill_full JSD", c_distill_full, {128, 32000, 2}, 1e-5, 1e-4, 0},
    {LOS, "distill_topk tail", c_distill_topk, {5, 60, 8, 0}, 1e-5, 1e-4, 1},
    {LOS, "distill_topk renorm", c_distill_topk, {5, 60, 8, 1}, 1e-5, 1e-4, 1},
    {LOS, "distill_topk tail", c_distill_topk, {128, 32000, 64, 0}, 1e-5, 1e-4, 0},
    {LOS, "token_logp_fwd/bwd", c_token_logp, {6, 50}, 1e-5, 1e-5, 1},
    {LOS, "token_logp_fwd/bwd", c_token_logp, {256, 32000}, 1e-5, 1e-4, 0},
    {OPT, "adamw t=1", c_adamw, {1001, 1}, 1e-6, 1e-5, 1},
    {OPT, "adamw t=7", c_adamw, {1 << 20, 7}, 1e-6, 1e-5, 0},
    {M2, "conv_fwd/bwd", c_m2_conv, {2, 9, 12, 4, 1}, 1e-5, 1e-4, 1},
    {M2, "conv_fwd/bwd", c_m2_conv, {2, 512, 768, 4, 1}, 1e-5, 1e-4, 0},
    {M2, "ssd_fwd/bwd", c_m2_ssd, {2, 11, 2, 1, 4, 4, 1}, 1e-4, 1e-3, 1},
    {M2, "ssd_fwd/bwd", c_m2_ssd, {2, 256, 8, 2, 32, 64, 1}, 1e-4, 1e-3, 0},
    {M2, "ssd_fwd/bwd", c_m2_ssd, {1, 200, 4, 4, 16, 64, 0}, 1e-4, 1e-3, 0},
    {M2, "scan_ref", c_m2_scan_ref, {2, 11, 2, 1, 4, 4, 1}, 1e-4, 1e-3, 1},
    {M2, "scan_ref", c_m2_scan_ref, {2, 128, 8, 2, 32, 64, 1}, 1e-4, 1e-3, 0},
    {M2, "gnorm_fwd/bwd", c_m2_gnorm, {7, 24, 8}, 1e-5, 1e-4, 1},
    {M2, "gnorm_fwd/bwd", c_m2_gnorm, {512, 2048, 256}, 1e-5, 1e-4, 0},
    {M2, "mat_fwd/bwd", c_m2_mat, {2, 9, 2, 1, 4, 4, 1}, 1e-4, 1e-3, 1},
    {M2, "mat_fwd/bwd", c_m2_mat, {1, 128, 4, 2, 16, 64, 1}, 1e-4, 1e-3, 0},
    {DEC, "attention", c_dec_attention, {1, 1, 1, 1, 4}, 1e-5, 1e-5, 1},
    {DEC, "attention", c_dec_attention, {3, 9, 4, 2, 8}, 1e-5, 1e-5, 1},
    {DEC, "attention", c_dec_attention, {8, 1024, 32, 8, 64}, 1e-5, 1e-4, 0},
    {DEC, "mamba2_step", c_dec_step, {2, 4, 2, 8, 4}, 1e-5, 1e-4, 1},
    {DEC, "mamba2_step", c_dec_step, {8, 24, 8, 64, 4}, 1e-5, 1e-4, 0},
};
const int g_ncases = (int)(sizeof g_cases / sizeof g_cases[0]);
