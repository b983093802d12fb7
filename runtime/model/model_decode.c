// model_decode.c: incremental decoding (model_decode.h). Prefill and step run the model's
// own block loop (kd_model_blocks, model.c) over one set of buffers reused in place, with
// the layers' mixers in their decoding form (kd_mixer_vt prefill and step: attention reads
// and writes its KV cache, Mamba-2 advances its recurrent state), so decoded logits agree
// with a full forward up to the attention kernel's summation order.
#include "runtime/model/model_decode.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/model/model_internal.h"

struct kd_decoder {
    kd_model *m;
    const kd_ops *ops;
    int max_batch, max_len, max_step;  // max_step: tokens a slot takes in one step
    int rows;                          // max(max_len, max_batch*max_step): buffer height
    int *len;                          // host (max_batch): tokens held by each slot
    float *cache[KD_MODEL_MAX_LAYERS]; // each layer's state of max_batch slots (vt->cache_floats)
    float *work;                       // the mixers' work area, shared (vt->work_floats)
    kd_scratch ws;                     // the mixers' kernel scratch, shared
    // the block buffers, backend memory: x (rows,C) the residual stream, ln (rows,C), rstd
    // (rows), mix (rows,C) mixer or MLP output, gu (rows,2F), swi (rows,F)
    float *x, *ln, *rstd, *mix, *gu, *swi;
    float *logits;           // (max_batch,V)
    float *all;              // (max_len,V) prompt logits, allocated on first use
    int32_t *ids, *pos, *nk; // backend (rows)
    int32_t *h;              // host (rows) staging
    // rollback history (hist_len > 0): per layer (max_batch, hist_len, state_floats)
    // states; position p of slot b is saved in entry p % hist_len, and saved[b*hist_len+e]
    // says which position entry e holds (-1: none); hrow (rows) host: a step's entries
    int hist_len;
    float *hist[KD_MODEL_MAX_LAYERS];
    int *saved;
    int32_t *hrow;
};

// ----------------------------------------------------------------------------- lifecycle

// The layers' caches, and the work area and kernel scratch large enough for every layer.
static void alloc_mixer_memory(kd_decoder *d) {
    const kd_model *m = d->m;
    const kd_ops *o = d->ops;
    size_t work = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const kd_mixer *x = &m->mx[l];
        int step_rows = d->max_batch * d->max_step;
        size_t w = x->vt->work_floats(x->cfg, step_rows, d->max_len);
        size_t s = x->vt->decode_scratch_bytes(o, x->cfg, step_rows, d->max_len);
        work = w > work ? w : work;
        d->ws.bytes = s > d->ws.bytes ? s : d->ws.bytes;
        d->cache[l] = o->mem->alloc(o->ctx, x->vt->cache_floats(x->cfg, d->max_batch, d->max_len) *
                                                sizeof(float));
        size_t hf = x->vt->state_floats(x->cfg) * d->max_batch * d->hist_len;
        if (hf) d->hist[l] = o->mem->alloc(o->ctx, hf * sizeof(float));
    }
    d->work = o->mem->alloc(o->ctx, work * sizeof(float));
    d->ws.p = o->mem->alloc(o->ctx, d->ws.bytes);
}

int kd_decoder_create(kd_decoder **out, kd_model *m, int max_batch, int max_len, kd_error *err) {
    return kd_decoder_create_ex(out, m, max_batch, max_len, 1, 0, err);
}

int kd_decoder_create_ex(kd_decoder **out, kd_model *m, int max_batch, int max_len, int max_step,
                         int history, kd_error *err) {
    *out = NULL;
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = m->ops;
    if (max_batch < 1 || max_len < 1 || max_step < 1 || history < 0)
        return kd_fail(err, KD_EINPUT,
                       "decoder: need max_batch, max_len, max_step >= 1 and history >= 0, found "
                       "%d, %d, %d and %d",
                       max_batch, max_len, max_step, history);
    if (c->rope.type == KD_ROPE_DYNAMIC && max_len > c->max_pos)
        return kd_fail(err, KD_EINPUT,
                       "decoder: sequences of up to %d tokens, but dynamic RoPE scaling equals "
                       "plain RoPE only up to max_position_embeddings = %d (docs/formats.md#rope)",
                       max_len, c->max_pos);
    if (!kd_ops_supports(o, KD_CAP_DECODE))
        return kd_fail(err, KD_ERUNTIME,
                       "decoder: the %s backend has no decoding kernels (generation needs them; "
                       "use backend: cpu)",
                       o->name);
    kd_decoder *d = kd_calloc(1, sizeof *d);
    d->m = m, d->ops = o;
    d->max_batch = max_batch, d->max_len = max_len, d->max_step = max_step;
    d->rows = max_len > max_batch * max_step ? max_len : max_batch * max_step;
    d->len = kd_calloc((size_t)max_batch, sizeof(int));
    d->hist_len = history;
    d->saved = kd_malloc(sizeof(int) * ((size_t)max_batch * history + 1));
    for (int i = 0; i < max_batch * history; i++) d->saved[i] = -1;
    d->hrow = kd_malloc(sizeof(int32_t) * (size_t)d->rows);
    alloc_mixer_memory(d);
    size_t R = (size_t)d->rows, C = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    d->x = o->mem->alloc(o->ctx, R * C * sizeof(float));
    d->ln = o->mem->alloc(o->ctx, R * C * sizeof(float));
    d->rstd = o->mem->alloc(o->ctx, R * sizeof(float));
    d->mix = o->mem->alloc(o->ctx, R * C * sizeof(float));
    d->gu = o->mem->alloc(o->ctx, R * 2 * F * sizeof(float));
    d->swi = o->mem->alloc(o->ctx, R * F * sizeof(float));
    d->logits = o->mem->alloc(o->ctx, (size_t)max_batch * max_step * V * sizeof(float));
    d->ids = o->mem->alloc(o->ctx, R * sizeof(int32_t));
    d->pos = o->mem->alloc(o->ctx, R * sizeof(int32_t));
    d->nk = o->mem->alloc(o->ctx, R * sizeof(int32_t));
    d->h = kd_malloc(R * sizeof(int32_t));
    *out = d;
    return KD_OK;
}

void kd_decoder_free(kd_decoder *d) {
    if (!d) return;
    const kd_ops *o = d->ops;
    for (int l = 0; l < d->m->cfg.n_layers; l++) {
        o->mem->free(o->ctx, d->cache[l]);
        o->mem->free(o->ctx, d->hist[l]);
    }
    free(d->saved);
    free(d->hrow);
    void *bufs[] = {d->work, d->ws.p, d->x,      d->ln,  d->rstd, d->mix, d->gu,
                    d->swi,  d->all,  d->logits, d->ids, d->pos,  d->nk};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) o->mem->free(o->ctx, bufs[i]);
    free(d->h);
    free(d->len);
    free(d);
}

const float *kd_decoder_logits(const kd_decoder *d) {
    return d->logits;
}

// ----------------------------------------------------------------------------- passes

// A decoding pass of the block loop: one set of buffers, reused in place by every layer
// (mid and out are the residual stream x, the MLP output goes to mix).
typedef struct {
    kd_block_pass base;
    kd_decoder *d;
    int slot; // prefill: the slot filled
    int n;    // prefill: prompt tokens; step: slots
    int T;    // step: tokens per slot
} decode_pass;

static kd_block_bufs decode_bufs(const kd_block_pass *pass, int l) {
    (void)l;
    const kd_decoder *d = ((const decode_pass *)pass)->d;
    kd_block_bufs b = {d->x,    d->ln, d->rstd, d->mix, d->x, d->ln,
                       d->rstd, d->gu, d->swi,  d->mix, d->x};
    return b;
}

static kd_mixer_dec mixer_memory(const kd_decoder *d, int l) {
    kd_mixer_dec mem = {d->cache[l], d->max_batch, d->max_len,  d->work,
                        d->ws,       d->hist[l],   d->hist_len, d->hrow};
    return mem;
}

static void prefill_mixer(const kd_block_pass *pass, int l, float *out, const float *inp) {
    const decode_pass *p = (const decode_pass *)pass;
    const kd_mixer *x = &p->d->m->mx[l];
    kd_mixer_dec mem = mixer_memory(p->d, l);
    x->vt->prefill(x, &mem, p->slot, out, inp, p->d->pos, p->n);
}

static void step_mixer(const kd_block_pass *pass, int l, float *out, const float *inp) {
    const decode_pass *p = (const decode_pass *)pass;
    const kd_mixer *x = &p->d->m->mx[l];
    kd_mixer_dec mem = mixer_memory(p->d, l);
    x->vt->step(x, &mem, out, inp, p->d->pos, p->d->nk, p->n, p->T);
}

// Final norm of rows [first, first+N) of x and the LM head into out (N,V).
static void head(kd_decoder *d, int first, int N, float *out) {
    const kd_model_config *c = &d->m->cfg;
    const kd_ops *o = d->ops;
    const float *P = d->m->params;
    int C = c->d_model;
    o->nn->rmsnorm_fwd(o->ctx, d->ln, d->rstd, d->x + (size_t)first * C, P + d->m->off_norm, N, C,
                       c->norm_eps);
    o->nn->matmul_fwd(o->ctx, out, d->ln, P + d->m->off_head, N, C, c->vocab_size);
}

static void upload_ints(kd_decoder *d, int32_t *dst, int n) {
    d->ops->mem->upload(d->ops->ctx, dst, d->h, (size_t)n * sizeof(int32_t));
}

// ----------------------------------------------------------------------------- history

// The entry of slot b that holds the state after position p.
static int hist_entry(const kd_decoder *d, int p) {
    return p % d->hist_len;
}

// Saves every layer's state of `slot` as the state after position p.
static void save_history(kd_decoder *d, int slot, int p) {
    int e = hist_entry(d, p);
    for (int l = 0; l < d->m->cfg.n_layers; l++) {
        const kd_mixer *x = &d->m->mx[l];
        kd_mixer_dec mem = mixer_memory(d, l);
        if (d->hist[l]) x->vt->history(x, &mem, slot, e, 0);
    }
    d->saved[slot * d->hist_len + e] = p;
}

// A step of T tokens per slot saves slot b's state after token t (position len[b]+t) when
// the row is live (live NULL: all).
static void plan_history(kd_decoder *d, const uint8_t *live, int B, int T) {
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            int on = d->hist_len > 0 && (!live || live[b]);
            int p = d->len[b] + t;
            d->hrow[t * B + b] = on ? hist_entry(d, p) : -1;
            if (on) d->saved[b * d->hist_len + hist_entry(d, p)] = p;
        }
}

int kd_decoder_rewind(kd_decoder *d, int slot, int len, kd_error *err) {
    if (slot < 0 || slot >= d->max_batch || len < 1 || len > d->len[slot])
        return kd_fail(err, KD_EINTERNAL, "decoder: rewind of slot %d to %d tokens (it holds %d)",
                       slot, len, slot >= 0 && slot < d->max_batch ? d->len[slot] : -1);
    if (len == d->len[slot]) return KD_OK;
    int e = d->hist_len > 0 ? hist_entry(d, len - 1) : 0;
    if (d->hist_len == 0 || d->saved[slot * d->hist_len + e] != len - 1)
        return kd_fail(err, KD_EINTERNAL,
                       "decoder: slot %d cannot rewind to %d tokens (history of %d entries "
                       "does not hold that state)",
                       slot, len, d->hist_len);
    for (int l = 0; l < d->m->cfg.n_layers; l++) {
        const kd_mixer *x = &d->m->mx[l];
        kd_mixer_dec mem = mixer_memory(d, l);
        if (d->hist[l]) x->vt->history(x, &mem, slot, e, 1);
    }
    d->len[slot] = len;
    return KD_OK;
}

int kd_decoder_len(const kd_decoder *d, int slot) {
    return d->len[slot];
}

void kd_decoder_bench_set_len(kd_decoder *d, int slot, int len) {
    d->len[slot] = len;
}

// ----------------------------------------------------------------------------- prefill

static int check_prompt(const kd_decoder *d, int slot, const int32_t *ids, int n, kd_error *err) {
    if (slot < 0 || slot >= d->max_batch)
        return kd_fail(err, KD_EINTERNAL, "decoder: slot %d outside [0,%d)", slot, d->max_batch);
    if (n < 1 || n > d->max_len)
        return kd_fail(err, KD_EINPUT, "decoder: prompt of %d tokens, expected 1..%d", n,
                       d->max_len);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= d->m->cfg.vocab_size)
            return kd_fail(err, KD_EINPUT, "decoder: prompt token %d = %d, expected 0..%d", i,
                           (int)ids[i], d->m->cfg.vocab_size - 1);
    return KD_OK;
}

int kd_decoder_prefill(kd_decoder *d, int slot, const int32_t *ids, int n, float *all_logits,
                       kd_error *err) {
    kd_model *m = d->m;
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = d->ops;
    int rc = check_prompt(d, slot, ids, n, err);
    if (rc) return rc;
    o->mem->upload(o->ctx, d->ids, ids, (size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) d->h[i] = i;
    upload_ints(d, d->pos, n);
    o->nn->embedding_fwd(o->ctx, d->x, d->ids, m->params + m->off_wte, n, c->d_model);
    decode_pass pass = {{decode_bufs, prefill_mixer}, d, slot, n, 1};
    kd_model_blocks(m, &pass.base, n);
    // the slot's next-token logits always come from a one-row head, so they do not depend
    // on whether all prompt logits were asked for
    if (all_logits) {
        if (!d->all)
            d->all = o->mem->alloc(o->ctx, (size_t)d->max_len * c->vocab_size * sizeof(float));
        head(d, 0, n, d->all);
        o->mem->download(o->ctx, all_logits, d->all, (size_t)n * c->vocab_size * sizeof(float));
    }
    head(d, n - 1, 1, d->logits + (size_t)slot * c->vocab_size);
    d->len[slot] = n;
    if (d->hist_len > 0) { // the slot's history restarts with the state after the prompt
        for (int e = 0; e < d->hist_len; e++) d->saved[slot * d->hist_len + e] = -1;
        save_history(d, slot, n - 1);
    }
    return KD_OK;
}

// ----------------------------------------------------------------------------- step

static int check_step(const kd_decoder *d, const int32_t *ids, const uint8_t *live, int B,
                      kd_error *err) {
    if (B < 1 || B > d->max_batch)
        return kd_fail(err, KD_EINTERNAL, "decoder: step of %d rows, expected 1..%d", B,
                       d->max_batch);
    for (int b = 0; b < B; b++) {
        int on = !live || live[b];
        if (d->len[b] < 1)
            return kd_fail(err, KD_EINTERNAL, "decoder: slot %d stepped before any prefill", b);
        if (on && d->len[b] >= d->max_len)
            return kd_fail(err, KD_EINPUT, "decoder: slot %d is full (%d tokens)", b, d->max_len);
        if (ids[b] < 0 || ids[b] >= d->m->cfg.vocab_size)
            return kd_fail(err, KD_EINPUT, "decoder: token %d for slot %d, expected 0..%d",
                           (int)ids[b], b, d->m->cfg.vocab_size - 1);
    }
    return KD_OK;
}

// Runs the model on the T*B token-major rows staged in d->ids, d->pos and d->nk.
static void run_step(kd_decoder *d, int B, int T) {
    kd_model *m = d->m;
    int N = B * T;
    m->ops->nn->embedding_fwd(m->ops->ctx, d->x, d->ids, m->params + m->off_wte, N, m->cfg.d_model);
    decode_pass pass = {{decode_bufs, step_mixer}, d, 0, B, T};
    kd_model_blocks(m, &pass.base, N);
    head(d, 0, N, d->logits);
}

int kd_decoder_step(kd_decoder *d, const int32_t *ids, const uint8_t *live, int B, kd_error *err) {
    const kd_ops *o = d->ops;
    int rc = check_step(d, ids, live, B, err);
    if (rc) return rc;
    o->mem->upload(o->ctx, d->ids, ids, (size_t)B * sizeof(int32_t));
    // a live row goes to slot len (RoPE angle = its absolute position); a dead row redoes
    // its last slot so that nothing is written past the cache
    for (int b = 0; b < B; b++) d->h[b] = (!live || live[b]) ? d->len[b] : d->len[b] - 1;
    upload_ints(d, d->pos, B);
    for (int b = 0; b < B; b++) d->h[b] += 1;
    upload_ints(d, d->nk, B);
    plan_history(d, live, B, 1);
    run_step(d, B, 1);
    for (int b = 0; b < B; b++)
        if (!live || live[b]) d->len[b]++;
    return KD_OK;
}

int kd_decoder_extend(kd_decoder *d, const int32_t *ids, int B, int T, kd_error *err) {
    if (T < 1 || T > d->max_step)
        return kd_fail(err, KD_EINTERNAL, "decoder: extend by %d tokens, expected 1..%d", T,
                       d->max_step);
    if (B < 1 || B > d->max_batch)
        return kd_fail(err, KD_EINTERNAL, "decoder: extend of %d slots, expected 1..%d", B,
                       d->max_batch);
    for (int b = 0; b < B; b++) {
        if (d->len[b] < 1 || d->len[b] + T > d->max_len)
            return kd_fail(err, KD_EINPUT, "decoder: slot %d cannot take %d more tokens", b, T);
        for (int t = 0; t < T; t++)
            if (ids[b * T + t] < 0 || ids[b * T + t] >= d->m->cfg.vocab_size)
                return kd_fail(err, KD_EINPUT, "decoder: token %d for slot %d, expected 0..%d",
                               (int)ids[b * T + t], b, d->m->cfg.vocab_size - 1);
    }
    const int N = B * T;
    for (int r = 0; r < N; r++) d->h[r] = ids[(r % B) * T + r / B];
    upload_ints(d, d->ids, N);
    for (int r = 0; r < N; r++) d->h[r] = d->len[r % B] + r / B;
    upload_ints(d, d->pos, N);
    for (int r = 0; r < N; r++) d->h[r] += 1;
    upload_ints(d, d->nk, N);
    plan_history(d, NULL, B, T);
    run_step(d, B, T);
    for (int b = 0; b < B; b++) d->len[b] += T;
    return KD_OK;
}
