// mixer_mamba2.c: the Mamba-2 mixer layer on top of kd_ops (see mixer_mamba2.h); shapes
// of every buffer are in the header. Only ops-> calls touch tensor memory.
#include "runtime/mixer_mamba2.h"

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
        w[j] = (float)(dt + log(-expm1(-dt)));  // softplus^-1
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

static void forward_impl(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                         kd_mamba2_acts *a, kd_mamba2_cache *c, float *out, const float *inp,
                         const int32_t *seg, int B, int T) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    const int BT = B * T;
    // zxbcdt (B,T,d_in_proj) = inp (B,T,C) in_proj^T
    ops->matmul_fwd(a->zxbcdt, inp, p->in_proj_w, BT, cfg->d_model, s.d_in_proj);
    ops->mamba2_conv_fwd(a->xbc, c ? c->conv_state : NULL, a->zxbcdt + s.d_inner, s.d_in_proj,
                         p->conv_w, p->conv_b, seg, B, T, s.conv_dim, cfg->k.W);
    kd_mamba2_in in = ssd_inputs(cfg, p, a->zxbcdt, a->xbc, seg, B, T);
    ops->mamba2_ssd_fwd(a->y, a->states, c ? c->ssm_state : NULL, NULL, &in, &cfg->k);
    ops->mamba2_gnorm_fwd(a->yn, a->rstd, a->y, a->zxbcdt, s.d_in_proj, p->norm_w, BT, s.d_inner,
                          cfg->k.P, cfg->norm_eps);
    ops->matmul_fwd(out, a->yn, p->out_proj_w, BT, s.d_inner, cfg->d_model);
}

void kd_mamba2_forward(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                       kd_mamba2_acts *a, float *out, const float *inp, const int32_t *seg, int B,
                       int T) {
    forward_impl(ops, cfg, p, a, NULL, out, inp, seg, B, T);
}

void kd_mamba2_backward(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                        const kd_mamba2_params *grads, kd_mamba2_acts *a, float *dinp,
                        const float *dout, const float *inp, const int32_t *seg, int B, int T) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    const int BT = B * T;
    ops->zero(a->dyn, (size_t)BT * s.d_inner * sizeof(float));
    ops->matmul_bwd(a->dyn, grads->out_proj_w, dout, a->yn, p->out_proj_w, BT, s.d_inner,
                    cfg->d_model);
    // every column block of dzxbcdt is overwritten: z by gnorm, xBC by conv, dt by ssd
    ops->mamba2_gnorm_bwd(a->dy, a->dzxbcdt, s.d_in_proj, grads->norm_w, a->dyn, a->y, a->zxbcdt,
                          s.d_in_proj, p->norm_w, a->rstd, BT, s.d_inner, cfg->k.P);
    kd_mamba2_in in = ssd_inputs(cfg, p, a->zxbcdt, a->xbc, seg, B, T);
    kd_mamba2_grad g = ssd_grads(cfg, grads, a->dzxbcdt, a->dxbc);
    ops->mamba2_ssd_bwd(&g, a->dy, a->states, &in, &cfg->k);
    ops->mamba2_conv_bwd(a->dzxbcdt + s.d_inner, s.d_in_proj, grads->conv_w, grads->conv_b, a->dxbc,
                         a->zxbcdt + s.d_inner, s.d_in_proj, p->conv_w, p->conv_b, seg, B, T,
                         s.conv_dim, cfg->k.W);
    ops->matmul_bwd(dinp, grads->in_proj_w, a->dzxbcdt, inp, p->in_proj_w, BT, cfg->d_model,
                    s.d_in_proj);
}

// ---------------------------------------------------------------------------- generation

size_t kd_mamba2_cache_floats(const kd_mamba2_cfg *cfg, int B) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    return (size_t)B *
           ((size_t)s.conv_dim * (cfg->k.W - 1) + (size_t)cfg->k.H * cfg->k.P * cfg->k.N +
            s.d_in_proj + 2 * s.d_inner + cfg->k.H);
}

void kd_mamba2_cache_bind(kd_mamba2_cache *c, float *base, const kd_mamba2_cfg *cfg, int B) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    c->conv_state = base;
    c->ssm_state = base + (size_t)B * s.conv_dim * (cfg->k.W - 1);
    c->work = c->ssm_state + (size_t)B * cfg->k.H * cfg->k.P * cfg->k.N;
}

void kd_mamba2_prefill(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                       kd_mamba2_acts *a, kd_mamba2_cache *c, float *out, const float *inp, int B,
                       int T) {
    forward_impl(ops, cfg, p, a, c, out, inp, NULL, B, T);
}

void kd_mamba2_step(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                    kd_mamba2_cache *c, float *out, const float *inp, int B) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    float *zxbcdt = c->work;                     // (B,d_in_proj)
    float *y = zxbcdt + (size_t)B * s.d_in_proj; // (B,d_inner)
    float *yn = y + (size_t)B * s.d_inner;       // (B,d_inner)
    float *rstd = yn + (size_t)B * s.d_inner;    // (B,H)
    ops->matmul_fwd(zxbcdt, inp, p->in_proj_w, B, cfg->d_model, s.d_in_proj);
    ops->mamba2_step(y, c->conv_state, c->ssm_state, zxbcdt + s.d_inner, s.d_in_proj,
                     zxbcdt + 2 * s.d_inner + 2 * s.d_xb, s.d_in_proj, p->conv_w, p->conv_b,
                     p->dt_bias, p->A_log, p->D, &cfg->k, B);
    ops->mamba2_gnorm_fwd(yn, rstd, y, zxbcdt, s.d_in_proj, p->norm_w, B, s.d_inner, cfg->k.P,
                          cfg->norm_eps);
    ops->matmul_fwd(out, yn, p->out_proj_w, B, s.d_inner, cfg->d_model);
}

// ---------------------------------------------------------------------------- MOHAWK

void kd_mamba2_matrix(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                      const kd_mamba2_acts *a, float *M, const int32_t *seg, int B, int T) {
    kd_mamba2_in in = ssd_inputs(cfg, p, a->zxbcdt, a->xbc, seg, B, T);
    ops->mamba2_mat_fwd(M, &in, &cfg->k);
}

void kd_mamba2_matrix_backward(const kd_ops *ops, const kd_mamba2_cfg *cfg,
                               const kd_mamba2_params *p, const kd_mamba2_params *grads,
                               kd_mamba2_acts *a, float *dinp, const float *dM, const float *inp,
                               const int32_t *seg, int B, int T) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(cfg);
    const int BT = B * T;
    // M depends on B, C, dt only: x and z get no gradient
    ops->zero(a->dzxbcdt, (size_t)BT * s.d_in_proj * sizeof(float));
    ops->zero(a->dxbc, (size_t)BT * s.conv_dim * sizeof(float));
    kd_mamba2_in in = ssd_inputs(cfg, p, a->zxbcdt, a->xbc, seg, B, T);
    kd_mamba2_grad g = ssd_grads(cfg, grads, a->dzxbcdt, a->dxbc);
    ops->mamba2_mat_bwd(&g, dM, &in, &cfg->k);
    ops->mamba2_conv_bwd(a->dzxbcdt + s.d_inner, s.d_in_proj, grads->conv_w, grads->conv_b, a->dxbc,
                         a->zxbcdt + s.d_inner, s.d_in_proj, p->conv_w, p->conv_b, seg, B, T,
                         s.conv_dim, cfg->k.W);
    ops->matmul_bwd(dinp, grads->in_proj_w, a->dzxbcdt, inp, p->in_proj_w, BT, cfg->d_model,
                    s.d_in_proj);
}
