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

// Mamba-2 kernel dimensions: H heads of size P, n_kv kv heads for x and B (H % n_kv == 0),
// state size N (== P for the GQA layout), conv width W, chunk size Q of the SSD scan.
typedef struct kd_mamba2_dims {
    int H, n_kv, P, N, W, Q;
} kd_mamba2_dims;

// Inputs of the Mamba-2 scan kernels. Row r = b*T+t of x is x + r*ldx (n_kv*P floats), of
// B is Bm + r*ldb (n_kv*N), of C is Cm + r*ldc (H*N), of dt is dt + r*lddt (H, raw: the
// kernel applies softplus(dt + dt_bias)). A = -exp(A_log). Parameters are (H).
typedef struct kd_mamba2_in {
    const float *x, *Bm, *Cm, *dt;
    int ldx, ldb, ldc, lddt;
    const float *dt_bias, *A_log, *D;
    const int32_t *seg;  // (B,T) or NULL
    int B, T;
} kd_mamba2_in;

// Gradients of kd_mamba2_in (same strides convention; NULL pointers are not allowed except
// where an op says a field is unused).
typedef struct kd_mamba2_grad {
    float *dx, *dB, *dC, *ddt;
    int ldx, ldb, ldc, lddt;
    float *ddt_bias, *dA_log, *dD;
} kd_mamba2_grad;
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

    // Decoding: one new token per row against a KV cache kv (B,Tmax,2*NKV*HD), each slot
    // holding the token's NKV key heads then its NKV value heads. qkv (B,(NH+2*NKV)*HD) is
    // the new token after RoPE: its key and value heads are stored in slot n[b]-1 of row b,
    // then its query heads attend over slots [0,n[b]). n (B) with 1 <= n[b] <= Tmax.
    // out is (B,NH*HD). May be NULL in a backend that cannot decode (callers report it).
    void (*attention_decode)(float *out, float *kv, const float *qkv, const int32_t *n, int B,
                             int Tmax, int NH, int NKV, int HD);

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
    // Kernels of the Mamba-2 mixer (runtime/mixer_mamba2.c; maths in docs/mamba2.md).
    // x, B, C, dt are column slices of wider rows, so each comes with a row stride (see
    // kd_mamba2_in). Head h reads kv head h/(H/n_kv) of x and B; C has H heads.
    // seg (B,T) document ids or NULL: state and conv history restart where seg changes.
    // Activation gradients (dinp, dx, dB, dC, ddt, dy, dz) are OVERWRITTEN; parameter
    // gradients (dw, dbias, ddt_bias, dA_log, dD, dnorm_w) ACCUMULATE.

    // out (B,T,CD) = silu(bias + causal depthwise conv (width W) of columns [0,CD) of inp
    // (B,T,ld_in)); w is (CD,1,W), w[W-1] multiplies the current token. conv_state (B,CD,W-1)
    // or NULL receives the last W-1 inputs of each row (prefill for step).
    void (*mamba2_conv_fwd)(float *out, float *conv_state, const float *inp, int ld_in,
                            const float *w, const float *bias, const int32_t *seg, int B,
                            int T, int CD, int W);
    void (*mamba2_conv_bwd)(float *dinp, int ld_dinp, float *dw, float *dbias,
                            const float *dout, const float *inp, int ld_in, const float *w,
                            const float *bias, const int32_t *seg, int B, int T, int CD, int W);
    // Chunked SSD scan: y (B,T,H,P) = scan + D*x. states (B,H,nchunks,P,N) or NULL keeps the
    // state entering each chunk (needed by bwd); final_state (B,H,P,N) or NULL; init_state
    // (B,H,P,N) or NULL (zeros).
    void (*mamba2_ssd_fwd)(float *y, float *states, float *final_state, const float *init_state,
                           const struct kd_mamba2_in *in, const struct kd_mamba2_dims *d);
    // dy (B,T,H,P); states from ssd_fwd (with the same init_state).
    void (*mamba2_ssd_bwd)(const struct kd_mamba2_grad *g, const float *dy, const float *states,
                           const struct kd_mamba2_in *in, const struct kd_mamba2_dims *d);
    // Plain sequential recurrence, the reference for tests (same contract as ssd_fwd).
    void (*mamba2_scan_ref)(float *y, float *final_state, const float *init_state,
                            const struct kd_mamba2_in *in, const struct kd_mamba2_dims *d);
    // Gated group RMSNorm: g = y*silu(z); out (N,D) = g*rstd(g over groups of G)*w.
    // rstd (N,D/G) kept for bwd. z rows have stride ldz.
    void (*mamba2_gnorm_fwd)(float *out, float *rstd, const float *y, const float *z, int ldz,
                             const float *w, int N, int D, int G, float eps);
    void (*mamba2_gnorm_bwd)(float *dy, float *dz, int lddz, float *dw, const float *dout,
                             const float *y, const float *z, int ldz, const float *w,
                             const float *rstd, int N, int D, int G);
    // One token: xbc (B,ld_xbc) raw (pre-conv) [x|B|C], dt (B,lddt) raw. Updates conv_state
    // (B,CD,W-1) and ssm_state (B,H,P,N); y (B,H*P) = ssm output + D*x (before the gate).
    void (*mamba2_step)(float *y, float *conv_state, float *ssm_state, const float *xbc,
                        int ld_xbc, const float *dt, int lddt, const float *conv_w,
                        const float *conv_b, const float *dt_bias, const float *A_log,
                        const float *D, const struct kd_mamba2_dims *d, int B);
    // MOHAWK mixing matrix M (B,H,T,T): M[t,s] = (C_t.B_s)*exp(sum_{k=s+1..t} dt_k*A)*dt_s
    // for s<=t in the same document, + D on the diagonal, 0 above; y = M x (in->x unused).
    void (*mamba2_mat_fwd)(float *M, const struct kd_mamba2_in *in,
                           const struct kd_mamba2_dims *d);
    // dM (B,H,T,T) -> dB, dC, ddt (overwritten), ddt_bias, dA_log, dD (accumulated); g->dx unused.
    void (*mamba2_mat_bwd)(const struct kd_mamba2_grad *g, const float *dM,
                           const struct kd_mamba2_in *in, const struct kd_mamba2_dims *d);
} kd_ops;

// The CPU backend (always built).
const kd_ops *kd_ops_cpu(void);
// The CUDA backend, or NULL when not built or no usable device (message in why).
const kd_ops *kd_ops_cuda(char *why, size_t why_len);
// Number of ops a backend leaves unimplemented (NULL slots); 0 for a complete backend.
int kd_ops_missing(const kd_ops *ops);
