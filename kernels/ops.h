// ops.h: the backend interface. Every tensor the model touches is backend memory
// (host memory for the CPU backend, device memory for CUDA); model and trainer code only
// move data with upload/download and call the ops below, never loop over tensor memory.
// A backend fills one kd_ops table (kernels/cpu/ops_cpu.c, kernels/cuda/ops_cuda.cu).
// Conventions: row-major; Linear weights are (out_features, in_features) as in PyTorch;
// "_bwd" ops ACCUMULATE (+=) into parameter gradients and into dinp unless said otherwise.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum { KD_BACKEND_CPU = 0, KD_BACKEND_CUDA = 1 } kd_backend_kind;

// Divergence of the full-vocabulary distillation loss (distill_full; docs/losses.md).
typedef enum {
    KD_DIV_FORWARD_KL = 0, // KL(p_t || p_s): MambaInLlama's loss
    KD_DIV_REVERSE_KL = 1, // KL(p_s || p_t)
    KD_DIV_JSD = 2,        // generalized JSD_beta of TRL's GKD
} kd_divergence;

// Support of the cached top-K teacher (distill_topk; docs/losses.md).
typedef enum {
    KD_TOPK_TAIL = 0,   // the K ids plus one bucket holding the rest of the mass (default)
    KD_TOPK_RENORM = 1, // both sides restricted to the K ids and renormalised
} kd_topk_mode;

typedef struct kd_ops {
    const char *name;
    kd_backend_kind kind;

    // ------------------------------------------------------------------ memory
    void *(*alloc)(size_t bytes);                                  // zero-filled
    void (*free)(void *p);
    void (*upload)(void *dst, const void *src, size_t bytes);      // host -> backend
    void (*download)(void *dst, const void *src, size_t bytes);    // backend -> host
    void (*copy)(void *dst, const void *src, size_t bytes);        // backend -> backend
    void (*zero)(void *dst, size_t bytes);

    // ------------------------------------------------------------------ elementwise
    void (*add)(float *out, const float *a, const float *b, size_t n);  // out = a + b
    void (*axpy)(float *y, float a, const float *x, size_t n);          // y += a*x
    void (*scale)(float *x, float s, size_t n);                         // x *= s
    double (*sumsq)(const float *x, size_t n);                          // sum x^2 in double

    // ------------------------------------------------------------------ embedding
    // out (N,C) = wte[ids] with wte (V,C); bwd: dwte[ids] += dout.
    void (*embedding_fwd)(float *out, const int32_t *ids, const float *wte, int N, int C);
    void (*embedding_bwd)(float *dwte, const float *dout, const int32_t *ids, int N, int C);

    // ------------------------------------------------------------------ linear
    // out (N,OC) = inp (N,C) . w(OC,C)^T.  bwd: dinp (N,C) += dout.w ; dw (OC,C) += dout^T.inp
    // (dinp or dw may be NULL to skip).
    void (*matmul_fwd)(float *out, const float *inp, const float *w, int N, int C, int OC);
    void (*matmul_bwd)(float *dinp, float *dw, const float *dout, const float *inp,
                       const float *w, int N, int C, int OC);

    // ------------------------------------------------------------------ RMSNorm
    // out (N,C) = inp / rms(inp) * w, rstd (N) saved for bwd.
    void (*rmsnorm_fwd)(float *out, float *rstd, const float *inp, const float *w, int N,
                        int C, float eps);
    void (*rmsnorm_bwd)(float *dinp, float *dw, const float *dout, const float *inp,
                        const float *w, const float *rstd, int N, int C);

    // ------------------------------------------------------------------ RoPE
    // In place on the first `nrot` heads (of size HD) of each row of x (N, row_stride);
    // pos (N) are absolute positions. Pairs (i, i+HD/2) rotate by pos*theta^(-2i/HD)
    // (the Llama / Hugging Face "rotate_half" convention). bwd applies the inverse rotation.
    void (*rope_fwd)(float *x, const int32_t *pos, int N, int nrot, int row_stride, int HD,
                     float theta);
    void (*rope_bwd)(float *dx, const int32_t *pos, int N, int nrot, int row_stride, int HD,
                     float theta);

    // ------------------------------------------------------------------ attention
    // Causal grouped-query softmax attention. qkv is (B,T,(NH+2*NKV)*HD): per token the NH
    // query heads, then NKV key heads, then NKV value heads; query head h reads kv head
    // h/(NH/NKV). att (B,NH,T,T) keeps the probabilities for bwd. out is (B,T,NH*HD).
    // seg (B,T) or NULL: document ids; a query attends only to keys of its own document.
    void (*attention_fwd)(float *out, float *att, const float *qkv, const int32_t *seg, int B,
                          int T, int NH, int NKV, int HD);
    // dqkv is OVERWRITTEN; datt is scratch of att's size.
    void (*attention_bwd)(float *dqkv, float *datt, const float *dout, const float *att,
                          const float *qkv, int B, int T, int NH, int NKV, int HD);

    // ------------------------------------------------------------------ SwiGLU
    // gu (N,2F) holds gate in columns [0,F) and up in [F,2F): out (N,F) = silu(gate)*up.
    // bwd OVERWRITES dgu (N,2F).
    void (*swiglu_fwd)(float *out, const float *gu, int N, int F);
    void (*swiglu_bwd)(float *dgu, const float *dout, const float *gu, int N, int F);

    // ------------------------------------------------------------------ losses
    // Per row i of logits (N,V): loss[i] = w[i] * -log softmax(logits_i)[t_i] (0 where
    // t_i < 0). If dlogits != NULL it gets dscale*w[i]*(softmax - onehot(t_i)); it may alias
    // logits. weights NULL means 1.
    void (*cross_entropy)(float *loss, float *dlogits, const float *logits,
                          const int32_t *targets, const float *weights, int N, int V,
                          float dscale);

    // ------------------------------------------------------------------ distillation losses
    // (kernels/cpu/kd_loss.c, kernels/cpu/pref_loss.c; formulas in docs/losses.md)
    // Full-vocabulary KD. s, t (N,V) student and teacher logits, p = softmax(logits / tau).
    // loss (N) = w[i] * tau^2 * D_i, D chosen by div; beta is read by KD_DIV_JSD only and
    // beta == 0 / beta == 1 give exactly forward / reverse KL (TRL's convention). dlogits
    // (N,V) or NULL is OVERWRITTEN with dscale * d loss[i] / d s_i and may alias s. Rows with
    // w[i] == 0 get loss 0 and gradient 0. w NULL means 1. The teacher gets no gradient.
    void (*distill_full)(float *loss, float *dlogits, const float *s, const float *t,
                         const float *w, int N, int V, kd_divergence div, float beta, float tau,
                         float dscale);
    // Forward KL to a cached top-K teacher: ids (N,K) distinct ids in [0,V), lp (N,K) the
    // teacher's log-softmax at temperature 1. mode picks the support; tau tempers both
    // sides. loss, dlogits (full V), w and dscale as for distill_full.
    void (*distill_topk)(float *loss, float *dlogits, const float *s, const int32_t *ids,
                         const float *lp, const float *w, int N, int V, int K, kd_topk_mode mode,
                         float tau, float dscale);
    // Per-token log-probabilities of the targets: logp (N) = log softmax(logits_i)[t_i], 0
    // where t_i < 0. bwd: dlogits (N,V) is OVERWRITTEN with dlogp[i] * (onehot(t_i) -
    // softmax(logits_i)), 0 on rows with t_i < 0; it may alias logits.
    void (*token_logp_fwd)(float *logp, const float *logits, const int32_t *targets, int N,
                           int V);
    void (*token_logp_bwd)(float *dlogits, const float *dlogp, const float *logits,
                           const int32_t *targets, int N, int V);

    // ------------------------------------------------------------------ optimizer
    // AdamW with decoupled weight decay and bias correction at step t (1-based).
    void (*adamw)(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                  float b2, float eps, float wd, int t);

    // ------------------------------------------------------------------ Mamba-2
    // (see kernels/cpu/mamba2.c; added with the hybrid student)
} kd_ops;

// The CPU backend (always built).
const kd_ops *kd_ops_cpu(void);
// The CUDA backend, or NULL when not built or no usable device (message in why).
const kd_ops *kd_ops_cuda(char *why, size_t why_len);
