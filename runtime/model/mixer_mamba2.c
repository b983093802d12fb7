// mixer_mamba2.c: the Mamba-2 mixer layer on top of kd_ops (see mixer_mamba2.h) and its
// kd_mixer_vt (kd_mamba2_mixer); shapes of every buffer are in the header. Only ops calls
// touch tensor memory.
#include "runtime/model/mixer_mamba2.h"

#include "runtime/model/mixer.h"

#include <math.h>

#include <stdio.h>
#include <string.h>

kd_mamba2_sizes kd_mamba2_sizes_of(const kd_mamba2_cfg *cfg) {
    kd_mamba2_sizes s;
    s.d_inner = cfg->k.H * cfg->k.P;
    s.d_xb = cfg->k.n_kv * cfg->k.P;
    s.conv_dim = 2 * s.d_xb + s.d_inner;
    s.d_in_proj = 2 * s.d_inner + 2 * s.d_xb + cfg->k.H;
    return s;
}

int kd_mamba2_check(const kd_mamba2_cfg *cfg, kd_error *err) {
    const kd_mamba2_dims *k = &cfg->k;
    if (cfg->d_model <= 0 || k->H <= 0 || k->n_kv <= 0 || k->P <= 0 || k->N <= 0)
        return kd_fail(err, KD_EINPUT,
                       "mamba2: expected positive d_model, n_heads, n_kv_heads, head_dim, "
                       "d_state, found %d, %d, %d, %d, %d",
                       cfg->d_model, k->H, k->n_kv, k->P, k->N);
    if (k->H % k->n_kv)
        return kd_fail(err, KD_EINPUT,
                       "mamba2: n_heads must be a multiple of n_kv_heads, found %d and %d", k->H,
                       k->n_kv);
    if (k->N != k->P)
        return kd_fail(err, KD_EINPUT,
                       "mamba2: d_state must equal head_dim (B has n_kv_heads*head_dim rows and "
                       "is repeated like x), found d_state %d, head_dim %d",
                       k->N, k->P);
    if (k->W < 1 || k->W > 16)
        return kd_fail(err, KD_EINPUT, "mamba2: conv width must be in [1,16], found %d", k->W);
    if (k->Q < 1) return kd_fail(err, KD_EINPUT, "mamba2: chunk size must be >= 1, found %d", k->Q);
    if (!(cfg->norm_eps > 0.0f))
        return kd_fail(err, KD_EINPUT, "mamba2: norm eps must be > 0, found %g",
                       (double)cfg->norm_eps);
    return KD_OK;
}

// ---------------------------------------------------------------------------- parameters

static const char *const k_names[KD_MAMBA2_NPARAMS] = {
    "in_proj.weight", "conv1d.weight",  "conv1d.bias", "dt_bias", "A_log", "D",
    "norm.weight",    "out_proj.weight"};

void kd_mamba2_param_infos(const kd_mamba2_cfg *cfg, int layer,
                           kd_param_info out[KD_MAMBA2_NPARAMS]) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    const int H = cfg->k.H;
    const int shapes[KD_MAMBA2_NPARAMS][4] = {{s.d_in_proj, cfg->d_model},
                                              {s.conv_dim, 1, cfg->k.W},
                                              {s.conv_dim},
                                              {H},
                                              {H},
                                              {H},
                                              {s.d_inner},
                                              {cfg->d_model, s.d_inner}};
    const int ndim[KD_MAMBA2_NPARAMS] = {2, 3, 1, 1, 1, 1, 1, 2};
    for (int i = 0; i < KD_MAMBA2_NPARAMS; i++) {
        kd_param_info *p = &out[i];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "layers.%d.mixer.%s", layer, k_names[i]);
        p->ndim = ndim[i];
        p->numel = 1;
        for (int d = 0; d < ndim[i]; d++) {
            p->shape[d] = shapes[i][d];
            p->numel *= (size_t)shapes[i][d];
        }
        p->decay = (i == 0 || i == 1 || i == 7); // matrices and the conv kernel
    }
}

void kd_mamba2_init_dt_bias(float *w, size_t n, kd_rng *rng) {
    for (size_t j = 0; j < n; j++) {
        double dt = exp(log(1e-3) + kd_rng_uniform(rng) * (log(1e-1) - log(1e-3)));
        if (dt < 1e-4) dt = 1e-4;
        w[j] = (float)(dt + log(-expm1(-dt))); // softplus^-1
    }
}

void kd_mamba2_init_A_log(float *w, size_t n, kd_rng *rng) {
    for (size_t j = 0; j < n; j++) w[j] = (float)log(1.0 + 15.0 * kd_rng_uniform(rng));
}

int kd_mamba2_params_bind(kd_mamba2_params *p, float *base, const kd_param_table *pt,
                          const kd_mamba2_cfg *cfg, int layer, kd_error *err) {
    kd_param_info want[KD_MAMBA2_NPARAMS];
    kd_mamba2_param_infos(cfg, layer, want);
    float **slot[KD_MAMBA2_NPARAMS] = {&p->in_proj_w, &p->conv_w, &p->conv_b, &p->dt_bias,
                                       &p->A_log,     &p->D,      &p->norm_w, &p->out_proj_w};
    for (int i = 0; i < KD_MAMBA2_NPARAMS; i++) {
        int ix = -1; // own lookup: keeps this module free of the table's implementation
        for (int j = 0; j < pt->n && ix < 0; j++)
            if (strcmp(pt->t[j].name, want[i].name) == 0) ix = j;
        if (ix < 0)
            return kd_fail(err, KD_EINPUT, "%s: expected in the parameter table, not found",
                           want[i].name);
        if (pt->t[ix].numel != want[i].numel)
            return kd_fail(err, KD_EINPUT, "%s: expected %zu elements, found %zu", want[i].name,
                           want[i].numel, pt->t[ix].numel);
        *slot[i] = base + pt->t[ix].offset;
    }
    return KD_OK;
}

// ---------------------------------------------------------------------------- activations

size_t kd_mamba2_acts_floats(const kd_mamba2_cfg *cfg, int B, int T) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    const size_t BT = (size_t)B * T, nc = (size_t)(T + cfg->k.Q - 1) / cfg->k.Q;
    return 2 * BT * s.d_in_proj + 2 * BT * s.conv_dim + 4 * BT * s.d_inner + BT * cfg->k.H +
           (size_t)B * cfg->k.H * nc * cfg->k.P * cfg->k.N;
}

void kd_mamba2_acts_bind(kd_mamba2_acts *a, float *base, const kd_mamba2_cfg *cfg, int B, int T) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    const size_t BT = (size_t)B * T, nc = (size_t)(T + cfg->k.Q - 1) / cfg->k.Q;
    float *p = base;
    a->zxbcdt = p, p += BT * s.d_in_proj;
    a->xbc = p, p += BT * s.conv_dim;
    a->y = p, p += BT * s.d_inner;
    a->yn = p, p += BT * s.d_inner;
    a->rstd = p, p += BT * cfg->k.H;
    a->states = p, p += (size_t)B * cfg->k.H * nc * cfg->k.P * cfg->k.N;
    a->dzxbcdt = p, p += BT * s.d_in_proj;
    a->dxbc = p, p += BT * s.conv_dim;
    a->dy = p, p += BT * s.d_inner;
    a->dyn = p;
}

// The SSD inputs as slices of the activations.
static kd_mamba2_in ssd_inputs(const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                               const float *zxbcdt, const float *xbc, const int32_t *seg, int B,
                               int T) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    kd_mamba2_in in;
    in.x = xbc;
    in.Bm = xbc + s.d_xb;
    in.Cm = xbc + 2 * s.d_xb;
    in.dt = zxbcdt + 2 * s.d_inner + 2 * s.d_xb;
    in.ldx = in.ldb = in.ldc = s.conv_dim;
    in.lddt = s.d_in_proj;
    in.dt_bias = p->dt_bias;
    in.A_log = p->A_log;
    in.D = p->D;
    in.seg = seg;
    in.B = B;
    in.T = T;
    return in;
}

static kd_mamba2_grad ssd_grads(const kd_mamba2_cfg *cfg, const kd_mamba2_params *g, float *dzxbcdt,
                                float *dxbc) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    kd_mamba2_grad gr;
    gr.dx = dxbc;
    gr.dB = dxbc + s.d_xb;
    gr.dC = dxbc + 2 * s.d_xb;
    gr.ddt = dzxbcdt + 2 * s.d_inner + 2 * s.d_xb;
    gr.ldx = gr.ldb = gr.ldc = s.conv_dim;
    gr.lddt = s.d_in_proj;
    gr.ddt_bias = g->dt_bias;
    gr.dA_log = g->A_log;
    gr.dD = g->D;
    return gr;
}

// ---------------------------------------------------------------------------- forward

size_t kd_mamba2_scratch_bytes(const kd_ops *ops, const kd_mamba2_cfg *cfg, int B, int T) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    size_t conv = ops->mamba2->conv_scratch(ops->ctx, B, T, s.conv_dim, cfg->k.W);
    size_t ssd = ops->mamba2->ssd_scratch(ops->ctx, &cfg->k, B, T);
    return conv > ssd ? conv : ssd;
}

size_t kd_mamba2_matrix_scratch_bytes(const kd_ops *ops, const kd_mamba2_cfg *cfg, int B, int T) {
    size_t layer = kd_mamba2_scratch_bytes(ops, cfg, B, T);
    size_t mat = ops->mamba2->mat_scratch(ops->ctx, &cfg->k, B, T);
    return layer > mat ? layer : mat;
}

// conv_state (B,CD,W-1) and ssm_state (B,H,P,N), or NULL, receive the final states.
static void forward_impl(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                         kd_mamba2_acts *a, kd_scratch ws, float *conv_state, float *ssm_state,
                         float *out, const float *inp, const int32_t *seg, int B, int T) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    const int BT = B * T;
    // zxbcdt (B,T,d_in_proj) = inp (B,T,C) in_proj^T
    ops->nn->matmul_fwd(ops->ctx, a->zxbcdt, inp, p->in_proj_w, BT, cfg->d_model, s.d_in_proj);
    ops->mamba2->conv_fwd(ops->ctx, a->xbc, conv_state, a->zxbcdt + s.d_inner, s.d_in_proj,
                          p->conv_w, p->conv_b, seg, B, T, s.conv_dim, cfg->k.W, ws);
    kd_mamba2_in in = ssd_inputs(cfg, p, a->zxbcdt, a->xbc, seg, B, T);
    ops->mamba2->ssd_fwd(ops->ctx, a->y, a->states, ssm_state, NULL, &in, &cfg->k, ws);
    ops->mamba2->gnorm_fwd(ops->ctx, a->yn, a->rstd, a->y, a->zxbcdt, s.d_in_proj, p->norm_w, BT,
                           s.d_inner, cfg->k.P, cfg->norm_eps);
    ops->nn->matmul_fwd(ops->ctx, out, a->yn, p->out_proj_w, BT, s.d_inner, cfg->d_model);
}

void kd_mamba2_forward(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                       kd_mamba2_acts *a, kd_scratch ws, float *out, const float *inp,
                       const int32_t *seg, int B, int T) {
    forward_impl(ops, cfg, p, a, ws, NULL, NULL, out, inp, seg, B, T);
}

void kd_mamba2_backward(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                        const kd_mamba2_params *grads, kd_mamba2_acts *a, kd_scratch ws,
                        float *dinp, const float *dout, const float *inp, const int32_t *seg, int B,
                        int T) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    const int BT = B * T;
    ops->nn->matmul_bwd(ops->ctx, a->dyn, grads->out_proj_w, dout, a->yn, p->out_proj_w, BT,
                        s.d_inner, cfg->d_model);
    // every column block of dzxbcdt is overwritten: z by gnorm, xBC by conv, dt by ssd
    ops->mamba2->gnorm_bwd(ops->ctx, a->dy, a->dzxbcdt, s.d_in_proj, grads->norm_w, a->dyn, a->y,
                           a->zxbcdt, s.d_in_proj, p->norm_w, a->rstd, BT, s.d_inner, cfg->k.P);
    kd_mamba2_in in = ssd_inputs(cfg, p, a->zxbcdt, a->xbc, seg, B, T);
    kd_mamba2_grad g = ssd_grads(cfg, grads, a->dzxbcdt, a->dxbc);
    ops->mamba2->ssd_bwd(ops->ctx, &g, a->dy, a->states, &in, &cfg->k, ws);
    ops->mamba2->conv_bwd(ops->ctx, a->dzxbcdt + s.d_inner, s.d_in_proj, grads->conv_w,
                          grads->conv_b, a->dxbc, a->zxbcdt + s.d_inner, s.d_in_proj, p->conv_w,
                          p->conv_b, seg, B, T, s.conv_dim, cfg->k.W, ws);
    ops->nn->matmul_bwd(ops->ctx, dinp, grads->in_proj_w, a->dzxbcdt, inp, p->in_proj_w, BT,
                        cfg->d_model, s.d_in_proj);
}

// ---------------------------------------------------------------------------- decoding

// Floats of one slot's conv history (CD,W-1) and SSM state (H,P,N).
static size_t conv_floats(const kd_mamba2_cfg *cfg) {
    return (size_t)kd_mamba2_sizes_of(cfg).conv_dim * (cfg->k.W - 1);
}
static size_t ssm_floats(const kd_mamba2_cfg *cfg) {
    return (size_t)cfg->k.H * cfg->k.P * cfg->k.N;
}

size_t kd_mamba2_cache_floats(const kd_mamba2_cfg *cfg, int slots) {
    return (size_t)slots * (conv_floats(cfg) + ssm_floats(cfg));
}

void kd_mamba2_cache_bind(kd_mamba2_cache *c, float *base, const kd_mamba2_cfg *cfg, int slots) {
    c->conv_state = base;
    c->ssm_state = base + (size_t)slots * conv_floats(cfg);
    c->slots = slots;
}

// A step's rows: zxbcdt (B,d_in_proj), y and yn (B,d_inner), rstd (B,H).
static size_t step_floats(const kd_mamba2_cfg *cfg, int B) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    return (size_t)B * (s.d_in_proj + 2 * (size_t)s.d_inner + cfg->k.H);
}

size_t kd_mamba2_work_floats(const kd_mamba2_cfg *cfg, int slots, int len) {
    size_t prefill = kd_mamba2_acts_floats(cfg, 1, len), step = step_floats(cfg, slots);
    return prefill > step ? prefill : step;
}

size_t kd_mamba2_decode_scratch_bytes(const kd_ops *ops, const kd_mamba2_cfg *cfg, int slots,
                                      int len) {
    size_t prefill = kd_mamba2_scratch_bytes(ops, cfg, 1, len);
    size_t step = ops->decode->mamba2_step_scratch(ops->ctx, &cfg->k, slots);
    return prefill > step ? prefill : step;
}

void kd_mamba2_prefill(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                       kd_mamba2_acts *a, kd_scratch ws, kd_mamba2_cache *c, int slot, float *out,
                       const float *inp, int B, int T) {
    // the kernels leave the final states of row b at row b of their output: slot + b
    forward_impl(ops, cfg, p, a, ws, c->conv_state + (size_t)slot * conv_floats(cfg),
                 c->ssm_state + (size_t)slot * ssm_floats(cfg), out, inp, NULL, B, T);
}

size_t kd_mamba2_state_floats(const kd_mamba2_cfg *cfg) {
    return conv_floats(cfg) + ssm_floats(cfg);
}

// Copies slot `slot`'s conv and SSM state to (restore 0) or from (restore 1) hist
// (kd_mamba2_state_floats: conv then ssm).
void kd_mamba2_history(const kd_ops *ops, const kd_mamba2_cfg *cfg, kd_mamba2_cache *c, int slot,
                       float *hist, int restore) {
    size_t cf = conv_floats(cfg), sf = ssm_floats(cfg);
    float *conv = c->conv_state + (size_t)slot * cf, *ssm = c->ssm_state + (size_t)slot * sf;
    if (restore) {
        ops->mem->copy(ops->ctx, conv, hist, cf * sizeof(float));
        ops->mem->copy(ops->ctx, ssm, hist + cf, sf * sizeof(float));
    } else {
        ops->mem->copy(ops->ctx, hist, conv, cf * sizeof(float));
        ops->mem->copy(ops->ctx, hist + cf, ssm, sf * sizeof(float));
    }
}

void kd_mamba2_step(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                    float *work, kd_scratch ws, kd_mamba2_cache *c, float *out, const float *inp,
                    int B, int T, const kd_mamba2_hist *h) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    const int N = B * T;
    const size_t L = s.d_in_proj;
    float *zxbcdt = work;                        // (N,d_in_proj)
    float *y = zxbcdt + (size_t)N * s.d_in_proj; // (N,d_inner)
    float *yn = y + (size_t)N * s.d_inner;       // (N,d_inner)
    float *rstd = yn + (size_t)N * s.d_inner;    // (N,H)
    ops->nn->matmul_fwd(ops->ctx, zxbcdt, inp, p->in_proj_w, N, cfg->d_model, s.d_in_proj);
    // the recurrence: token t of every slot, then its state into the history
    for (int t = 0; t < T; t++) {
        const float *row = zxbcdt + (size_t)t * B * L;
        ops->decode->mamba2_step(ops->ctx, y + (size_t)t * B * s.d_inner, c->conv_state,
                                 c->ssm_state, row + s.d_inner, s.d_in_proj,
                                 row + 2 * s.d_inner + 2 * s.d_xb, s.d_in_proj, p->conv_w,
                                 p->conv_b, p->dt_bias, p->A_log, p->D, &cfg->k, B, ws);
        for (int b = 0; h && b < B; b++) {
            int e = h->row[t * B + b];
            size_t sf = kd_mamba2_state_floats(cfg);
            if (e >= 0)
                kd_mamba2_history(ops, cfg, c, b, h->buf + ((size_t)b * h->len + e) * sf, 0);
        }
    }
    ops->mamba2->gnorm_fwd(ops->ctx, yn, rstd, y, zxbcdt, s.d_in_proj, p->norm_w, N, s.d_inner,
                           cfg->k.P, cfg->norm_eps);
    ops->nn->matmul_fwd(ops->ctx, out, yn, p->out_proj_w, N, s.d_inner, cfg->d_model);
}

// ---------------------------------------------------------------------------- MOHAWK

void kd_mamba2_matrix(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                      const kd_mamba2_acts *a, kd_scratch ws, float *M, const int32_t *seg, int B,
                      int T) {
    kd_mamba2_in in = ssd_inputs(cfg, p, a->zxbcdt, a->xbc, seg, B, T);
    ops->mamba2->mat_fwd(ops->ctx, M, &in, &cfg->k, ws);
}

void kd_mamba2_matrix_backward(const kd_ops *ops, const kd_mamba2_cfg *cfg,
                               const kd_mamba2_params *p, const kd_mamba2_params *grads,
                               kd_mamba2_acts *a, kd_scratch ws, float *dinp, const float *dM,
                               const float *inp, const int32_t *seg, int B, int T) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    const int BT = B * T;
    // M depends on B, C, dt only: x and z get no gradient
    ops->mem->zero(ops->ctx, a->dzxbcdt, (size_t)BT * s.d_in_proj * sizeof(float));
    ops->mem->zero(ops->ctx, a->dxbc, (size_t)BT * s.conv_dim * sizeof(float));
    kd_mamba2_in in = ssd_inputs(cfg, p, a->zxbcdt, a->xbc, seg, B, T);
    kd_mamba2_grad g = ssd_grads(cfg, grads, a->dzxbcdt, a->dxbc);
    ops->mamba2->mat_bwd(ops->ctx, &g, dM, &in, &cfg->k, ws);
    ops->mamba2->conv_bwd(ops->ctx, a->dzxbcdt + s.d_inner, s.d_in_proj, grads->conv_w,
                          grads->conv_b, a->dxbc, a->zxbcdt + s.d_inner, s.d_in_proj, p->conv_w,
                          p->conv_b, seg, B, T, s.conv_dim, cfg->k.W, ws);
    ops->nn->matmul_bwd(ops->ctx, dinp, grads->in_proj_w, a->dzxbcdt, inp, p->in_proj_w, BT,
                        cfg->d_model, s.d_in_proj);
}

// ---------------------------------------------------------------------------- kd_mixer_vt

static size_t vt_act_floats(const void *cfg, int B, int T) {
    return kd_mamba2_acts_floats(cfg, B, T);
}

static size_t vt_bwd_floats(const void *cfg, int B, int T) {
    (void)cfg, (void)B, (void)T;
    return 0; // the backward's buffers are part of the layer's activations
}

static size_t vt_scratch_bytes(const kd_ops *ops, const void *cfg, int B, int T) {
    return kd_mamba2_scratch_bytes(ops, cfg, B, T);
}

static size_t vt_cache_floats(const void *cfg, int slots, int len) {
    (void)len; // the state does not grow with the sequence
    return kd_mamba2_cache_floats(cfg, slots);
}

static size_t vt_work_floats(const void *cfg, int slots, int len) {
    return kd_mamba2_work_floats(cfg, slots, len);
}

static size_t vt_decode_scratch_bytes(const kd_ops *ops, const void *cfg, int slots, int len) {
    return kd_mamba2_decode_scratch_bytes(ops, cfg, slots, len);
}

static void vt_forward(const kd_mixer *x, const kd_mixer_mem *mem, float *out, const float *inp,
                       const int32_t *pos, const int32_t *seg, int B, int T) {
    (void)pos; // no positions: order is the recurrence itself
    kd_mamba2_acts a;
    kd_mamba2_acts_bind(&a, mem->acts, x->cfg, B, T);
    kd_mamba2_forward(x->ops, x->cfg, x->p, &a, mem->ws, out, inp, seg, B, T);
}

static void vt_backward(const kd_mixer *x, const kd_mixer_mem *mem, float *dinp, const float *dout,
                        const float *inp, const int32_t *pos, const int32_t *seg, int B, int T) {
    (void)pos;
    kd_mamba2_acts a;
    kd_mamba2_acts_bind(&a, mem->acts, x->cfg, B, T);
    kd_mamba2_backward(x->ops, x->cfg, x->p, x->g, &a, mem->ws, dinp, dout, inp, seg, B, T);
}

static void vt_prefill(const kd_mixer *x, const kd_mixer_dec *dec, int slot, float *out,
                       const float *inp, const int32_t *pos, int T) {
    (void)pos;
    kd_mamba2_acts a;
    kd_mamba2_acts_bind(&a, dec->work, x->cfg, 1, T);
    kd_mamba2_cache c;
    kd_mamba2_cache_bind(&c, dec->cache, x->cfg, dec->slots);
    kd_mamba2_prefill(x->ops, x->cfg, x->p, &a, dec->ws, &c, slot, out, inp, 1, T);
}

static void vt_step(const kd_mixer *x, const kd_mixer_dec *dec, float *out, const float *inp,
                    const int32_t *pos, const int32_t *n, int B, int T) {
    (void)pos, (void)n;
    kd_mamba2_cache c;
    kd_mamba2_cache_bind(&c, dec->cache, x->cfg, dec->slots);
    kd_mamba2_hist h = {dec->hist, dec->hist_len, dec->hist_row};
    kd_mamba2_step(x->ops, x->cfg, x->p, dec->work, dec->ws, &c, out, inp, B, T,
                   dec->hist ? &h : NULL);
}

static size_t vt_state_floats(const void *cfg) {
    return kd_mamba2_state_floats(cfg);
}

static void vt_history(const kd_mixer *x, const kd_mixer_dec *dec, int slot, int h, int restore) {
    kd_mamba2_cache c;
    kd_mamba2_cache_bind(&c, dec->cache, x->cfg, dec->slots);
    size_t sf = kd_mamba2_state_floats(x->cfg);
    kd_mamba2_history(x->ops, x->cfg, &c, slot, dec->hist + ((size_t)slot * dec->hist_len + h) * sf,
                      restore);
}

const kd_mixer_vt kd_mamba2_mixer = {
    .kind = KD_MIXER_MAMBA2,
    .name = "mamba2",
    .cap = KD_CAP_MAMBA2,
    .act_floats = vt_act_floats,
    .bwd_floats = vt_bwd_floats,
    .scratch_bytes = vt_scratch_bytes,
    .cache_floats = vt_cache_floats,
    .work_floats = vt_work_floats,
    .decode_scratch_bytes = vt_decode_scratch_bytes,
    .forward = vt_forward,
    .backward = vt_backward,
    .prefill = vt_prefill,
    .step = vt_step,
    .state_floats = vt_state_floats,
    .history = vt_history,
};
