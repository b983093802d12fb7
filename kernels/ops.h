// ops.h: the backend interface. Every tensor the model touches is backend memory (host
// memory for the CPU backend, device memory for CUDA); model and trainer code move data
// only through the memory ops and call the kernels below, and never ask which backend they
// run on. A backend is one kd_ops: a name, a context `ctx` (the state its ops share, such as
// CUDA's cuBLAS handle; NULL for the CPU) and one sub-table per capability. Implementations:
// kernels/cpu/ops_cpu.c, kernels/cuda/ops_cuda.cu.
// Rules shared by every op:
// - Every op takes the backend's ctx as its first argument: ops->nn->matmul_fwd(ops->ctx, ...).
// - Row-major; Linear weights are (out_features, in_features) as in PyTorch. "_bwd" ops
//   ACCUMULATE (+=) into parameter gradients and into dinp unless said otherwise.
// - Ops never allocate. An op that needs working memory takes a kd_scratch of at least the
//   bytes its *_scratch query returns for the same shapes (0 means it needs none). The
//   caller allocates it once with mem->alloc, reuses it for every call of that size or
//   smaller, and frees it; its contents are not kept between calls.
// - mem, vec, nn, losses and optim are required. mamba2 and decode are capabilities: a
//   backend that lacks one leaves that whole sub-table NULL (kd_ops_supports asks,
//   kd_ops_missing names what is absent).
// - coll (collectives on backend memory) and set_precision are optional and not counted as
//   missing: without them the caller stages collectives through the host, and computes
//   in fp32.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/kinds.h"

// Working memory handed to an op: p (backend memory) holds at least `bytes` bytes.
typedef struct kd_scratch {
    void *p;
    size_t bytes;
} kd_scratch;

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
    const int32_t *seg; // (B,T) or NULL
    int B, T;
} kd_mamba2_in;

// Gradients of kd_mamba2_in (same strides convention; NULL pointers are not allowed except
// where an op says a field is unused).
typedef struct kd_mamba2_grad {
    float *dx, *dB, *dC, *ddt;
    int ldx, ldb, ldc, lddt;
    float *ddt_bias, *dA_log, *dD;
} kd_mamba2_grad;

// ============================================================================ memory
// Where tensors live and how bytes move between the host and the backend.
typedef struct kd_mem_ops {
    // 1 when backend memory is host memory: the host may read and write a backend buffer
    // directly instead of staging it through upload/download (checkpoint I/O does).
    int host_visible;
    void *(*alloc)(void *ctx, size_t bytes); // zero-filled; NULL when out of memory
    void (*free)(void *ctx, void *p);        // p may be NULL
    void (*upload)(void *ctx, void *dst, const void *src, size_t bytes);   // host -> backend
    void (*download)(void *ctx, void *dst, const void *src, size_t bytes); // backend -> host
    void (*copy)(void *ctx, void *dst, const void *src, size_t bytes);     // backend -> backend
    void (*zero)(void *ctx, void *dst, size_t bytes);
} kd_mem_ops;

// ============================================================================ vector arithmetic
// Elementwise arithmetic on backend float arrays. A table of its own rather than part of
// memory: memory says where bytes live and how they move, these compute, and every layer
// above uses them (the model's residual adds, the alignment losses, the optimizer's
// gradient norm and clipping, the kd stage's loss mix).
typedef struct kd_vec_ops {
    void (*add)(void *ctx, float *out, const float *a, const float *b, size_t n); // a + b
    void (*axpy)(void *ctx, float *y, float a, const float *x, size_t n);         // y += a*x
    void (*scale)(void *ctx, float *x, float s, size_t n);                        // x *= s
    double (*sumsq)(void *ctx, const float *x, size_t n); // sum x^2 in double
} kd_vec_ops;

// ============================================================================ nn
// The layers of a Llama decoder (forward and backward).
typedef struct kd_nn_ops {
    // out (N,C) = wte[ids] with wte (V,C); bwd: dwte[ids] += dout.
    void (*embedding_fwd)(void *ctx, float *out, const int32_t *ids, const float *wte, int N,
                          int C);
    void (*embedding_bwd)(void *ctx, float *dwte, const float *dout, const int32_t *ids, int N,
                          int C);

    // Linear: out (N,OC) = inp (N,C) . w(OC,C)^T. bwd: dinp (N,C) = dout.w (overwritten:
    // every caller starts a fresh input gradient here) ; dw (OC,C) += dout^T.inp
    // (accumulates over micro-batches); dinp or dw may be NULL to skip.
    void (*matmul_fwd)(void *ctx, float *out, const float *inp, const float *w, int N, int C,
                       int OC);
    void (*matmul_bwd)(void *ctx, float *dinp, float *dw, const float *dout, const float *inp,
                       const float *w, int N, int C, int OC);

    // RMSNorm: out (N,C) = inp / rms(inp) * w, rstd (N) saved for bwd.
    void (*rmsnorm_fwd)(void *ctx, float *out, float *rstd, const float *inp, const float *w, int N,
                        int C, float eps);
    void (*rmsnorm_bwd)(void *ctx, float *dinp, float *dw, const float *dout, const float *inp,
                        const float *w, const float *rstd, int N, int C);

    // RoPE, in place on the first `nrot` heads (of size HD) of each row of x (N, row_stride);
    // pos (N) are absolute positions. Pairs (i, i+HD/2) rotate by pos*inv_freq[i] (the
    // Llama / Hugging Face "rotate_half" convention); inv_freq (HD/2) is backend memory, for
    // plain RoPE theta^(-2i/HD) (kd_rope_inv_freq), else a scaled table (llama3, linear).
    // bwd applies the inverse rotation.
    void (*rope_fwd)(void *ctx, float *x, const int32_t *pos, int N, int nrot, int row_stride,
                     int HD, const float *inv_freq);
    void (*rope_bwd)(void *ctx, float *dx, const int32_t *pos, int N, int nrot, int row_stride,
                     int HD, const float *inv_freq);

    // Causal grouped-query softmax attention, memory-lean (online softmax, as in
    // FlashAttention): nothing of size T*T is kept. qkv is (B,T,(NH+2*NKV)*HD): per token
    // the NH query heads, then NKV key heads, then NKV value heads; query head h reads kv
    // head h/(NH/NKV). out is (B,T,NH*HD). lse (B,NH,T) receives each query row's
    // log-sum-exp of its scaled scores (scores are q.k/sqrt(HD)), all bwd needs besides
    // qkv and out. seg (B,T) or NULL: document ids; a query attends only to keys of its own
    // document. attention_scratch sizes the scratch of attention_fwd and attention_bwd.
    size_t (*attention_scratch)(void *ctx, int B, int T, int NH, int HD);
    void (*attention_fwd)(void *ctx, float *out, float *lse, const float *qkv, const int32_t *seg,
                          int B, int T, int NH, int NKV, int HD, kd_scratch ws);
    // Recomputes the probabilities tile by tile from qkv and lse; dqkv is OVERWRITTEN.
    void (*attention_bwd)(void *ctx, float *dqkv, const float *dout, const float *out,
                          const float *lse, const float *qkv, const int32_t *seg, int B, int T,
                          int NH, int NKV, int HD, kd_scratch ws);
    // The probabilities themselves, P (B,NH,T,T) = exp(scores - lse) below the diagonal and
    // in the same document, 0 elsewhere, from a forward's qkv and lse (MOHAWK's matrix
    // alignment compares them with the Mamba-2 mixing matrix; training never needs them).
    void (*attention_probs)(void *ctx, float *P, const float *qkv, const float *lse,
                            const int32_t *seg, int B, int T, int NH, int NKV, int HD);

    // SwiGLU: gu (N,2F) holds gate in columns [0,F) and up in [F,2F): out (N,F) =
    // silu(gate)*up. bwd OVERWRITES dgu (N,2F).
    void (*swiglu_fwd)(void *ctx, float *out, const float *gu, int N, int F);
    void (*swiglu_bwd)(void *ctx, float *dgu, const float *dout, const float *gu, int N, int F);

    // Per row i of logits (N,V): loss[i] = w[i] * -log softmax(logits_i)[t_i] (0 where
    // t_i < 0). If dlogits != NULL it gets dscale*w[i]*(softmax - onehot(t_i)); it may alias
    // logits. weights NULL means 1.
    void (*cross_entropy)(void *ctx, float *loss, float *dlogits, const float *logits,
                          const int32_t *targets, const float *weights, int N, int V, float dscale);
} kd_nn_ops;

// ============================================================================ losses
// Distillation and preference losses (kernels/cpu/kd_loss.c, pref_loss.c,
// kernels/cuda/losses.cu; formulas in docs/losses.md).
typedef struct kd_losses_ops {
    // Full-vocabulary KD. s, t (N,V) student and teacher logits, p = softmax(logits / tau).
    // loss (N) = w[i] * tau^2 * D_i, D chosen by div; beta is read by KD_DIV_JSD only and
    // beta == 0 / beta == 1 give exactly forward / reverse KL (TRL's convention). dlogits
    // (N,V) or NULL is OVERWRITTEN with dscale * d loss[i] / d s_i and may alias s. Rows with
    // w[i] == 0 get loss 0 and gradient 0. w NULL means 1. The teacher gets no gradient.
    size_t (*distill_full_scratch)(void *ctx, int N, int V);
    void (*distill_full)(void *ctx, float *loss, float *dlogits, const float *s, const float *t,
                         const float *w, int N, int V, kd_divergence div, float beta, float tau,
                         float dscale, kd_scratch ws);
    // Forward KL to a cached top-K teacher: ids (N,K) distinct ids in [0,V), lp (N,K) the
    // teacher's log-softmax at temperature 1. mode picks the support; tau tempers both
    // sides. loss, dlogits (full V), w and dscale as for distill_full.
    size_t (*distill_topk_scratch)(void *ctx, int N, int V, int K);
    void (*distill_topk)(void *ctx, float *loss, float *dlogits, const float *s, const int32_t *ids,
                         const float *lp, const float *w, int N, int V, int K, kd_topk_mode mode,
                         float tau, float dscale, kd_scratch ws);
    // Per-token log-probabilities of the targets: logp (N) = log softmax(logits_i)[t_i], 0
    // where t_i < 0. bwd: dlogits (N,V) is OVERWRITTEN with dlogp[i] * (onehot(t_i) -
    // softmax(logits_i)), 0 on rows with t_i < 0; it may alias logits.
    void (*token_logp_fwd)(void *ctx, float *logp, const float *logits, const int32_t *targets,
                           int N, int V);
    void (*token_logp_bwd)(void *ctx, float *dlogits, const float *dlogp, const float *logits,
                           const int32_t *targets, int N, int V);
} kd_losses_ops;

// ============================================================================ optimizer
typedef struct kd_optim_ops {
    // AdamW with decoupled weight decay and bias correction at step t (1-based), on the
    // gradient gscale * g (gradient clipping folded in: g itself is not written).
    void (*adamw)(void *ctx, float *p, const float *g, float *m, float *v, size_t n, float lr,
                  float b1, float b2, float eps, float wd, int t, float gscale);
} kd_optim_ops;

// ============================================================================ Mamba-2
// Kernels of the Mamba-2 mixer (runtime/model/mixer_mamba2.c; maths in docs/mamba2.md).
// x, B, C, dt are column slices of wider rows, so each comes with a row stride (see
// kd_mamba2_in). Head h reads kv head h/(H/n_kv) of x and B; C has H heads.
// seg (B,T) document ids or NULL: state and conv history restart where seg changes.
// Activation gradients (dinp, dx, dB, dC, ddt, dy, dz) are OVERWRITTEN; parameter
// gradients (dw, dbias, ddt_bias, dA_log, dD, dnorm_w) ACCUMULATE.
typedef struct kd_mamba2_ops {
    // out (B,T,CD) = silu(bias + causal depthwise conv (width W) of columns [0,CD) of inp
    // (B,T,ld_in)); w is (CD,1,W), w[W-1] multiplies the current token. conv_state (B,CD,W-1)
    // or NULL receives the last W-1 inputs of each row (prefill for the decode step).
    // conv_scratch sizes the scratch of conv_fwd and conv_bwd.
    size_t (*conv_scratch)(void *ctx, int B, int T, int CD, int W);
    void (*conv_fwd)(void *ctx, float *out, float *conv_state, const float *inp, int ld_in,
                     const float *w, const float *bias, const int32_t *seg, int B, int T, int CD,
                     int W, kd_scratch ws);
    void (*conv_bwd)(void *ctx, float *dinp, int ld_dinp, float *dw, float *dbias,
                     const float *dout, const float *inp, int ld_in, const float *w,
                     const float *bias, const int32_t *seg, int B, int T, int CD, int W,
                     kd_scratch ws);
    // ssd_scratch sizes the scratch of ssd_fwd, ssd_bwd and scan_ref for in->B = B, in->T = T.
    size_t (*ssd_scratch)(void *ctx, const kd_mamba2_dims *d, int B, int T);
    // Chunked SSD scan: y (B,T,H,P) = scan + D*x. states (B,H,nchunks,P,N) or NULL keeps the
    // state entering each chunk (needed by bwd); final_state (B,H,P,N) or NULL; init_state
    // (B,H,P,N) or NULL (zeros).
    void (*ssd_fwd)(void *ctx, float *y, float *states, float *final_state, const float *init_state,
                    const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws);
    // dy (B,T,H,P); states from ssd_fwd (with the same init_state).
    void (*ssd_bwd)(void *ctx, const kd_mamba2_grad *g, const float *dy, const float *states,
                    const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws);
    // Plain sequential recurrence, the reference for tests (same contract as ssd_fwd).
    void (*scan_ref)(void *ctx, float *y, float *final_state, const float *init_state,
                     const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws);
    // Gated group RMSNorm: g = y*silu(z); out (N,D) = g*rstd(g over groups of G)*w.
    // rstd (N,D/G) kept for bwd. z rows have stride ldz.
    void (*gnorm_fwd)(void *ctx, float *out, float *rstd, const float *y, const float *z, int ldz,
                      const float *w, int N, int D, int G, float eps);
    void (*gnorm_bwd)(void *ctx, float *dy, float *dz, int lddz, float *dw, const float *dout,
                      const float *y, const float *z, int ldz, const float *w, const float *rstd,
                      int N, int D, int G);
    // MOHAWK mixing matrix M (B,H,T,T): M[t,s] = (C_t.B_s)*exp(sum_{k=s+1..t} dt_k*A)*dt_s
    // for s<=t in the same document, + D on the diagonal, 0 above; y = M x (in->x unused).
    // mat_scratch sizes the scratch of mat_fwd and mat_bwd.
    size_t (*mat_scratch)(void *ctx, const kd_mamba2_dims *d, int B, int T);
    void (*mat_fwd)(void *ctx, float *M, const kd_mamba2_in *in, const kd_mamba2_dims *d,
                    kd_scratch ws);
    // dM (B,H,T,T) -> dB, dC, ddt (overwritten), ddt_bias, dA_log, dD (accumulated);
    // g->dx unused.
    void (*mat_bwd)(void *ctx, const kd_mamba2_grad *g, const float *dM, const kd_mamba2_in *in,
                    const kd_mamba2_dims *d, kd_scratch ws);
} kd_mamba2_ops;

// ============================================================================ decode
// One new token per row, for generation.
typedef struct kd_decode_ops {
    // Attention against a KV cache kv (B,Tmax,2*NKV*HD), each slot holding the token's NKV
    // key heads then its NKV value heads. qkv (B,(NH+2*NKV)*HD) is the new token after RoPE:
    // its key and value heads are stored in slot n[b]-1 of row b, then its query heads
    // attend over slots [0,n[b]). n (B) with 1 <= n[b] <= Tmax. out is (B,NH*HD).
    size_t (*attention_scratch)(void *ctx, int B, int Tmax, int NH);
    void (*attention)(void *ctx, float *out, float *kv, const float *qkv, const int32_t *n, int B,
                      int Tmax, int NH, int NKV, int HD, kd_scratch ws);
    // Mamba-2 recurrent step: xbc (B,ld_xbc) raw (pre-conv) [x|B|C], dt (B,lddt) raw.
    // Updates conv_state (B,CD,W-1) and ssm_state (B,H,P,N); y (B,H*P) = ssm output + D*x
    // (before the gate).
    size_t (*mamba2_step_scratch)(void *ctx, const kd_mamba2_dims *d, int B);
    void (*mamba2_step)(void *ctx, float *y, float *conv_state, float *ssm_state, const float *xbc,
                        int ld_xbc, const float *dt, int lddt, const float *conv_w,
                        const float *conv_b, const float *dt_bias, const float *A_log,
                        const float *D, const kd_mamba2_dims *d, int B, kd_scratch ws);
} kd_decode_ops;

// ============================================================================ collectives
// Optional: sums and gathers of backend memory between the ranks of a data-parallel world,
// for a backend whose memory MPI cannot read (CUDA: NCCL). NULL means the caller moves
// backend memory through the host and MPI (the CPU backend's memory is host memory). Not a
// capability: kd_ops_missing does not count it. Bootstrap: rank 0 calls make_id, the id
// (id_bytes) reaches every rank (MPI_Bcast), every rank calls init with it. Shards are
// given as counts/displs per rank (floats), uneven sizes allowed. Both collectives are
// complete on return (the next op may read their output).
typedef struct kd_coll_ops {
    size_t id_bytes;
    int (*make_id)(void *ctx, void *id, char *why, size_t why_len); // 0 on success
    // A communicator of `world` ranks, or NULL with the reason in why.
    void *(*init)(void *ctx, const void *id, int rank, int world, char *why, size_t why_len);
    void (*fini)(void *ctx, void *comm);
    // shard (counts[rank]) = sum over ranks of their full[displs[rank], +counts[rank]).
    void (*reduce_scatter)(void *ctx, void *comm, const float *full, float *shard,
                           const size_t *counts, const size_t *displs);
    // Every rank's range [displs[r], +counts[r]) of buf, from rank r, into every rank's buf.
    void (*allgather)(void *ctx, void *comm, float *buf, const size_t *counts,
                      const size_t *displs);
    // Optional, for overlapping the gradient reduce-scatter with the backward (NULL: the
    // caller reduces after the backward). reduce_scatter_start: as reduce_scatter, but
    // ordered after every op queued so far and returning at once (it runs beside the ops
    // queued after it); counts/displs are read during the call. reduce_scatter_wait: every
    // started one is complete for the ops queued after it.
    void (*reduce_scatter_start)(void *ctx, void *comm, const float *full, float *shard,
                                 const size_t *counts, const size_t *displs);
    void (*reduce_scatter_wait)(void *ctx, void *comm);
} kd_coll_ops;

// ============================================================================ the backend
typedef struct kd_ops {
    const char *name; // "cpu", "cuda"
    void *ctx;        // first argument of every op
    const kd_mem_ops *mem;
    const kd_vec_ops *vec;
    const kd_nn_ops *nn;
    const kd_losses_ops *losses;
    const kd_optim_ops *optim;
    const kd_mamba2_ops *mamba2; // NULL: no Mamba-2 kernels
    const kd_decode_ops *decode; // NULL: no decoding kernels
    const kd_coll_ops *coll;     // NULL: collectives go through the host (MPI)
    // Arithmetic of nn.matmul_fwd/bwd from now on (the backend's state); 0 on success,
    // non-zero when the backend lacks it. NULL: fp32 only. Everything else (norms, softmax,
    // losses, optimizer, the stored parameters and activations) stays fp32 either way.
    int (*set_precision)(void *ctx, kd_precision p);
} kd_ops;

// One capability per sub-table; the first five are required of every backend.
typedef enum {
    KD_CAP_MEM,
    KD_CAP_VEC,
    KD_CAP_NN,
    KD_CAP_LOSSES,
    KD_CAP_OPTIM,
    KD_CAP_MAMBA2,
    KD_CAP_DECODE,
    KD_CAP_COUNT
} kd_cap;

// The CPU backend (always built; implements every capability).
const kd_ops *kd_ops_cpu(void);
// The CUDA backend, or NULL when not built or no usable device (message in why).
const kd_ops *kd_ops_cuda(char *why, size_t why_len);
// The CUDA table as built, without touching a device (NULL when built without CUDA): for
// asking what it holds (kd_ops_missing); its ops must not be called.
const kd_ops *kd_ops_cuda_table(void);
// 1 when the backend has the capability's sub-table and every entry of it.
int kd_ops_supports(const kd_ops *ops, kd_cap cap);
// Name of a capability ("mem", ..., "mamba2", "decode").
const char *kd_cap_name(kd_cap cap);
// Number of ops the backend lacks (0 for a complete backend). With names != NULL, writes
// what is missing there, comma-separated: a whole absent sub-table by its name with its
// op count ("mamba2 (13 ops)"), a single absent op as "sub-table.op".
int kd_ops_missing(const kd_ops *ops, char *names, size_t names_len);
