// model_forward.c: the model's computation (model.h): activation memory (one arena per
// (B,T), sized by one formula), the block loop that decoding shares (kd_model_blocks),
// forward, the cross-entropy head, backward, and the per-layer views of the last forward.
// Each layer's mixer is called through its kd_mixer_vt (mixer.h).
#include <stdlib.h>
#include <string.h>

#include "runtime/model/mixer.h"
#include "runtime/model/model.h"
#include "runtime/model/model_internal.h"

// ----------------------------------------------------------------------------- activations

void kd_model_free_acts(kd_model *m) {
    const kd_ops *o = m->ops;
    void *bufs[] = {m->act_mem, m->ws.p, m->ids, m->pos, m->seg, m->targets};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) o->mem->free(o->ctx, bufs[i]);
    m->act_mem = NULL;
    m->ws.p = NULL, m->ws.bytes = 0;
    m->ids = m->pos = m->seg = m->targets = NULL;
    m->B = m->T = 0;
}

// Floats of the activation arena of a (B,T) batch, in the order prepare() lays it out: per
// layer the block's buffers (in, ln1, rstd1, the mixer's activations, mix, mid, ln2, rstd2,
// gu, swi; mlp and out are the next layer's in), then resid_final, lnf, rstdf, logits,
// weights and losses, and for training dres, dtmp, dgu, dswi and the mixers' shared
// backward scratch (*bwd_out floats, or NULL).
static size_t arena_floats(const kd_model_config *c, int B, int T, int training, size_t *bwd_out) {
    kd_mixer_cfgs mc = kd_mixer_cfgs_of(c);
    size_t N = (size_t)B * T, C = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    size_t total = 0, bwd = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const kd_mixer_vt *vt = kd_mixer_vt_of(c->mixer[l]);
        const void *cfg = kd_mixer_cfg_of(&mc, c->mixer[l]);
        total += 5 * N * C + 2 * N + 3 * N * F + vt->act_floats(cfg, B, T);
        size_t b = vt->bwd_floats(cfg, B, T);
        bwd = b > bwd ? b : bwd;
    }
    total += 2 * N * C + N + N * V + 2 * N;
    if (training) total += 2 * N * C + 3 * N * F + bwd;
    if (bwd_out) *bwd_out = bwd;
    return total;
}

double kd_model_activation_bytes(const kd_model_config *c, int B, int T, int training) {
    return (double)arena_floats(c, B, T, training, NULL) * sizeof(float);
}

// Layer l's block buffers and mixer activations from p; returns the end. out is left to
// the caller (the next layer's in).
static float *carve_layer(kd_model *m, int l, float *p, size_t N) {
    const kd_model_config *c = &m->cfg;
    size_t C = c->d_model, F = c->ffn_dim;
    kd_layer_acts *a = &m->la[l];
    a->b.in = p, p += N * C;
    a->b.ln1 = p, p += N * C;
    a->b.rstd1 = p, p += N;
    a->mixer = p, p += m->mx[l].vt->act_floats(m->mx[l].cfg, m->B, m->T);
    a->b.mix = p, p += N * C;
    a->b.mid = p, p += N * C;
    a->b.ln2 = p, p += N * C;
    a->b.rstd2 = p, p += N;
    a->b.gu = p, p += 2 * N * F;
    a->b.swi = p, p += N * F;
    return p;
}

// Lays out the arena (arena_floats) and the per-token buffers for a (B,T) batch.
static void prepare(kd_model *m, int B, int T) {
    if (m->B == B && m->T == T && m->act_mem) return;
    kd_model_free_acts(m);
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = m->ops;
    size_t N = (size_t)B * T, C = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    int training = m->grads != NULL;
    size_t bwd, total = arena_floats(c, B, T, training, &bwd);
    m->B = B, m->T = T;
    float *p = o->mem->alloc(o->ctx, total * sizeof(float));
    m->act_mem = p;
    m->act_floats = total;
    for (int l = 0; l < c->n_layers; l++) p = carve_layer(m, l, p, N);
    m->resid_final = p, p += N * C;
    for (int l = 0; l < c->n_layers; l++) // MLP output and residual sum: the next block's input
        m->la[l].b.mlp = m->la[l].b.out = l + 1 < c->n_layers ? m->la[l + 1].b.in : m->resid_final;
    m->lnf = p, p += N * C;
    m->rstdf = p, p += N;
    m->logits = p, p += N * V;
    m->weights = p, p += N;
    m->losses = p, p += N;
    if (training) {
        m->dres = p, p += N * C;
        m->dtmp = p, p += N * C;
        m->dgu = p, p += 2 * N * F;
        m->dswi = p, p += N * F;
        m->mix_bwd = p, p += bwd;
    }
    KD_ASSERT((size_t)(p - m->act_mem) == total);
    m->ids = o->mem->alloc(o->ctx, N * sizeof(int32_t));
    m->pos = o->mem->alloc(o->ctx, N * sizeof(int32_t));
    m->seg = o->mem->alloc(o->ctx, N * sizeof(int32_t));
    m->targets = o->mem->alloc(o->ctx, N * sizeof(int32_t));
    for (int l = 0; l < c->n_layers; l++) {
        size_t b = m->mx[l].vt->scratch_bytes(o, m->mx[l].cfg, B, T);
        m->ws.bytes = b > m->ws.bytes ? b : m->ws.bytes;
    }
    m->ws.p = o->mem->alloc(o->ctx, m->ws.bytes);
}

// ----------------------------------------------------------------------------- block loop

// One block on N rows: rmsnorm -> mixer (pass) -> residual -> rmsnorm -> SwiGLU MLP ->
// residual. The sums are taken as in + mix and mlp + mid in both forward and decoding.
static void block_forward(const kd_model *m, int l, const kd_block_bufs *b, int N,
                          const kd_block_pass *pass) {
    const kd_ops *o = m->ops;
    const kd_nn_ops *nn = o->nn;
    const float *P = m->params;
    const kd_layer_offsets *lo = &m->lo[l];
    const int C = m->cfg.d_model, F = m->cfg.ffn_dim;
    const float eps = m->cfg.norm_eps;
    nn->rmsnorm_fwd(o->ctx, b->ln1, b->rstd1, b->in, P + lo->ln1, N, C, eps);
    pass->mixer(pass, l, b->mix, b->ln1);
    o->vec->add(o->ctx, b->mid, b->in, b->mix, (size_t)N * C);
    nn->rmsnorm_fwd(o->ctx, b->ln2, b->rstd2, b->mid, P + lo->ln2, N, C, eps);
    nn->matmul_fwd(o->ctx, b->gu, b->ln2, P + lo->wgu, N, C, 2 * F);
    nn->swiglu_fwd(o->ctx, b->swi, b->gu, N, F);
    nn->matmul_fwd(o->ctx, b->mlp, b->swi, P + lo->wdown, N, F, C);
    o->vec->add(o->ctx, b->out, b->mlp, b->mid, (size_t)N * C);
}

void kd_model_blocks(const kd_model *m, const kd_block_pass *pass, int N) {
    for (int l = 0; l < m->cfg.n_layers; l++) {
        kd_block_bufs b = pass->bufs(pass, l);
        block_forward(m, l, &b, N, pass);
    }
}

// ----------------------------------------------------------------------------- forward

// The forward's pass: every layer keeps its own buffers for the backward.
typedef struct {
    kd_block_pass base;
    kd_model *m;
    const int32_t *seg; // backend (B,T) or NULL
} forward_pass;

static kd_block_bufs forward_bufs(const kd_block_pass *pass, int l) {
    return ((const forward_pass *)pass)->m->la[l].b;
}

static void forward_mixer(const kd_block_pass *pass, int l, float *out, const float *inp) {
    const forward_pass *f = (const forward_pass *)pass;
    kd_model *m = f->m;
    kd_mixer_mem mem = {m->la[l].mixer, m->mix_bwd, m->ws};
    m->mx[l].vt->forward(&m->mx[l], &mem, out, inp, m->pos, f->seg, m->B, m->T);
}

// Uploads ids, positions (default: 0.. restarting at each document) and document ids.
static void upload_inputs(kd_model *m, const int32_t *ids, const int32_t *pos, const int32_t *seg,
                          int N, int T) {
    const kd_ops *o = m->ops;
    o->mem->upload(o->ctx, m->ids, ids, (size_t)N * sizeof(int32_t));
    if (pos) {
        o->mem->upload(o->ctx, m->pos, pos, (size_t)N * sizeof(int32_t));
    } else {
        int32_t *hp = kd_malloc((size_t)N * sizeof(int32_t));
        for (int i = 0; i < N; i++) {
            int t = i % T;
            hp[i] = (t == 0 || (seg && seg[i] != seg[i - 1])) ? 0 : hp[i - 1] + 1;
        }
        o->mem->upload(o->ctx, m->pos, hp, (size_t)N * sizeof(int32_t));
        free(hp);
    }
    m->has_seg = seg != NULL;
    if (seg) o->mem->upload(o->ctx, m->seg, seg, (size_t)N * sizeof(int32_t));
}

int kd_model_forward(kd_model *m, const int32_t *ids, const int32_t *pos, const int32_t *seg, int B,
                     int T, kd_error *err) {
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = m->ops;
    if (c->rope.type == KD_ROPE_DYNAMIC && T > c->max_pos)
        return kd_fail(err, KD_EINPUT,
                       "model: sequences of %d tokens, but dynamic RoPE scaling equals plain RoPE "
                       "only up to max_position_embeddings = %d (docs/formats.md#rope)",
                       T, c->max_pos);
    prepare(m, B, T);
    int N = B * T, C = c->d_model;
    upload_inputs(m, ids, pos, seg, N, T);
    const float *P = m->params;
    o->nn->embedding_fwd(o->ctx, m->la[0].b.in, m->ids, P + m->off_wte, N, C);
    forward_pass pass = {{forward_bufs, forward_mixer}, m, seg ? m->seg : NULL};
    kd_model_blocks(m, &pass.base, N);
    o->nn->rmsnorm_fwd(o->ctx, m->lnf, m->rstdf, m->resid_final, P + m->off_norm, N, C,
                       c->norm_eps);
    o->nn->matmul_fwd(o->ctx, m->logits, m->lnf, P + m->off_head, N, C, c->vocab_size);
    return KD_OK;
}

double kd_model_ce_loss(kd_model *m, const int32_t *targets, const float *weights, float dscale,
                        int want_grad) {
    const kd_ops *o = m->ops;
    int N = m->B * m->T;
    o->mem->upload(o->ctx, m->targets, targets, (size_t)N * sizeof(int32_t));
    if (weights) o->mem->upload(o->ctx, m->weights, weights, (size_t)N * sizeof(float));
    o->nn->cross_entropy(o->ctx, m->losses, want_grad ? m->logits : NULL, m->logits, m->targets,
                         weights ? m->weights : NULL, N, m->cfg.vocab_size, dscale);
    float *h = kd_malloc((size_t)N * sizeof(float));
    o->mem->download(o->ctx, h, m->losses, (size_t)N * sizeof(float));
    double s = 0;
    for (int i = 0; i < N; i++) s += h[i];
    free(h);
    return s;
}

// ----------------------------------------------------------------------------- backward

// Backward of layer l's block: dres holds d loss / d out on entry and d loss / d in on exit.
static void block_backward(kd_model *m, int l) {
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = m->ops;
    const kd_nn_ops *nn = o->nn;
    const int N = m->B * m->T, C = c->d_model, F = c->ffn_dim;
    const float *P = m->params;
    float *G = m->grads;
    const kd_block_bufs *b = &m->la[l].b;
    const kd_layer_offsets *lo = &m->lo[l];
    // MLP: out = mid + down(swiglu(gu(ln2(mid))))
    nn->matmul_bwd(o->ctx, m->dswi, G + lo->wdown, m->dres, b->swi, P + lo->wdown, N, F, C);
    nn->swiglu_bwd(o->ctx, m->dgu, m->dswi, b->gu, N, F);
    nn->matmul_bwd(o->ctx, m->dtmp, G + lo->wgu, m->dgu, b->ln2, P + lo->wgu, N, C, 2 * F);
    nn->rmsnorm_bwd(o->ctx, m->dres, G + lo->ln2, m->dtmp, b->mid, P + lo->ln2, b->rstd2, N, C);
    // mixer: mid = in + mixer(ln1(in)); the mixer overwrites dtmp
    kd_mixer_mem mem = {m->la[l].mixer, m->mix_bwd, m->ws};
    m->mx[l].vt->backward(&m->mx[l], &mem, m->dtmp, m->dres, b->ln1, m->pos,
                          m->has_seg ? m->seg : NULL, m->B, m->T);
    nn->rmsnorm_bwd(o->ctx, m->dres, G + lo->ln1, m->dtmp, b->in, P + lo->ln1, b->rstd1, N, C);
}

void kd_model_backward(kd_model *m) {
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = m->ops;
    KD_ASSERT(m->grads != NULL);
    int N = m->B * m->T, C = c->d_model;
    size_t NC = (size_t)N * C * sizeof(float);
    const float *P = m->params;
    float *G = m->grads;
    o->mem->zero(o->ctx, m->dres, NC); // rmsnorm_bwd accumulates into dres; matmul_bwd overwrites
    o->nn->matmul_bwd(o->ctx, m->dtmp, G + m->off_head, m->logits, m->lnf, P + m->off_head, N, C,
                      c->vocab_size);
    o->nn->rmsnorm_bwd(o->ctx, m->dres, G + m->off_norm, m->dtmp, m->resid_final, P + m->off_norm,
                       m->rstdf, N, C);
    // the final norm and an untied head follow the last layer; a tied head is wte (done last)
    if (m->on_final) m->on_final(m->on_final_ctx, m->off_norm);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        block_backward(m, l);
        if (m->on_final) m->on_final(m->on_final_ctx, m->lo[l].ln1); // the layer's first
    }
    o->nn->embedding_bwd(o->ctx, G + m->off_wte, m->dres, m->ids, N, C);
    if (m->on_final) m->on_final(m->on_final_ctx, 0);
}

void kd_model_on_grads_final(kd_model *m, kd_grads_final_fn fn, void *ctx) {
    m->on_final = fn, m->on_final_ctx = ctx;
}

int kd_model_grad_bounds(const kd_model *m, size_t *out) {
    int n = 0;
    out[n++] = m->off_norm;
    for (int l = m->cfg.n_layers - 1; l >= 0; l--) out[n++] = m->lo[l].ln1;
    out[n++] = 0;
    return n;
}

// ----------------------------------------------------------------------------- views

const float *kd_model_mixer_input(const kd_model *m, int layer) {
    return m->la[layer].b.ln1;
}
const float *kd_model_mixer_output(const kd_model *m, int layer) {
    return m->la[layer].b.mix;
}
int kd_model_attn_probs(const kd_model *m, int layer, float *P) {
    if (m->cfg.mixer[layer] != KD_MIXER_ATTN) return 0;
    kd_attn_acts a;
    kd_attn_acts_bind(&a, m->la[layer].mixer, &m->ad, m->B, m->T);
    kd_attn_probs(m->ops, &m->ad, &a, P, m->has_seg ? m->seg : NULL, m->B, m->T);
    return 1;
}
