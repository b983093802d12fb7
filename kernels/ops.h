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
