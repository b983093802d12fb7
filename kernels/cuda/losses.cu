// losses.cu: the CUDA kernels of the distillation and preference losses (the
// "distillation losses" fields of kd_ops; contracts in kernels/ops.h, maths in
// docs/losses.md). Simple and correct first: one block per row, the row's statistics by
// block reductions in double, then one write pass in which each thread reads s[j] before
// writing dlogits[j] (so dlogits may alias s). The top-K kernel finds the ids of a row by
// scanning the K ids kept in shared memory (O(V K) per row; K is small). Same numerics as
// the CPU kernels (every per-element value in double). No op needs scratch (the *_scratch
// queries answer 0). kd_cuda_losses() hands the sub-table to kernels/cuda/ops_cuda.cu.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "kernels/ops.h"
}
#include "kernels/cuda/reduce.cuh"

static const int LTPB =
    KD_CUDA_TPB; // threads per block (a power of two: the reductions rely on it)

static __device__ double lsum(double v) {
    return kd_block_reduce(v, kd_cuda_sum());
}
static __device__ double lmax(double v) {
    return kd_block_reduce(v, kd_cuda_max());
}

static __device__ double laddexp(double a, double b) {
    double m = fmax(a, b);
    if (m == -INFINITY) return -INFINITY;
    return m + log1p(exp(-fabs(a - b)));
}

// log sum_j exp(x_j / tau) over a row, block-wide.
static __device__ double row_logz(const float *x, int V, double tau) {
    double mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmax(mx, (double)x[j] / tau);
    mx = lmax(mx);
    if (mx == -INFINITY) return mx;
    double s = 0.0;
    for (int j = threadIdx.x; j < V; j += blockDim.x) s += exp((double)x[j] / tau - mx);
    return mx + log(lsum(s));
}

// ============================================================================ full vocabulary

// A row whose weight is 0 gets loss 0 and gradient 0 (dx may be NULL); true if it was one.
__device__ static bool zero_weight_row(float *loss, float *dx, size_t row, double wi, int V) {
    if (wi != 0.0) return false;
    if (threadIdx.x == 0) loss[row] = 0.0f;
    if (dx)
        for (int j = threadIdx.x; j < V; j += blockDim.x) dx[j] = 0.0f;
    return true;
}

__global__ void k_distill_full(float *loss, float *dlogits, const float *s, const float *t,
                               const float *w, int V, int div, double beta, double tau,
                               double dscale) {
    size_t row = blockIdx.x;
    const float *x = s + row * V, *y = t + row * V;
    float *dx = dlogits ? dlogits + row * V : NULL;
    double wi = w ? (double)w[row] : 1.0;
    if (zero_weight_row(loss, dx, row, wi, V)) return;
    if (div == KD_DIV_JSD && beta <= 0.0) div = KD_DIV_FORWARD_KL; // TRL: exact ends
    if (div == KD_DIV_JSD && beta >= 1.0) div = KD_DIV_REVERSE_KL;
    double lb = div == KD_DIV_JSD ? log(beta) : 0.0, l1b = div == KD_DIV_JSD ? log1p(-beta) : 0.0;
    double zs = row_logz(x, V, tau), zt = row_logz(y, V, tau);
    double d_t = 0.0, d_s = 0.0;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        double ls = (double)x[j] / tau - zs, lt = (double)y[j] / tau - zt;
        double ps = exp(ls), pt = exp(lt);
        if (div == KD_DIV_FORWARD_KL) {
            if (pt > 0.0) d_t += pt * (lt - ls);
        } else if (div == KD_DIV_REVERSE_KL) {
            if (ps > 0.0) d_s += ps * (ls - lt);
        } else {
            double lm = laddexp(lt + lb, ls + l1b);
            if (pt > 0.0) d_t += pt * (lt - lm);
            if (ps > 0.0) d_s += ps * (ls - lm);
        }
    }
    d_t = lsum(d_t);
    d_s = lsum(d_s); // also a barrier: every read of the row is done before any write
    double D = div == KD_DIV_FORWARD_KL   ? d_t
               : div == KD_DIV_REVERSE_KL ? d_s
                                          : beta * d_t + (1.0 - beta) * d_s;
    if (threadIdx.x == 0) loss[row] = (float)(wi * tau * tau * D);
    if (!dx) return;
    double c = dscale * wi * tau;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        double ls = (double)x[j] / tau - zs, lt = (double)y[j] / tau - zt;
        double ps = exp(ls), g;
        if (div == KD_DIV_FORWARD_KL)
            g = ps - exp(lt);
        else if (ps == 0.0)
            g = 0.0;
        else if (div == KD_DIV_REVERSE_KL)
            g = ps * (ls - lt - d_s);
        else
            g = (1.0 - beta) * ps * (ls - laddexp(lt + lb, ls + l1b) - d_s);
        dx[j] = (float)(c * g);
    }
}

static size_t cu_distill_full_scratch(void *ctx, int N, int V) {
    (void)ctx, (void)N, (void)V;
    return 0;
}

static void cu_distill_full(void *ctx, float *loss, float *dlogits, const float *s, const float *t,
                            const float *w, int N, int V, kd_divergence div, float beta, float tau,
                            float dscale, kd_scratch ws) {
    (void)ctx, (void)ws;
    if (N > 0 && V > 0)
        k_distill_full<<<N, LTPB>>>(loss, dlogits, s, t, w, V, (int)div, (double)beta, (double)tau,
                                    (double)dscale);
}

// ============================================================================ top-K teacher

// Dynamic shared memory: lq (K+1 doubles: tempered teacher log-probs, tail in slot K),
// then the row's ids (K int32).
__global__ void k_distill_topk(float *loss, float *dlogits, const float *s, const int32_t *ids,
                               const float *lp, const float *w, int V, int K, int mode, double tau,
                               double dscale) {
    extern __shared__ double smem[];
    double *lq = smem;
    int32_t *id = (int32_t *)(smem + K + 1);
    size_t row = blockIdx.x;
    const float *x = s + row * V;
    float *dx = dlogits ? dlogits + row * V : NULL;
    double wi = w ? (double)w[row] : 1.0;
    if (zero_weight_row(loss, dx, row, wi, V)) return;
    for (int k = threadIdx.x; k < K; k += blockDim.x) id[k] = ids[row * K + k];
    if (threadIdx.x == 0) { // the teacher side: K is small, one thread does it
        const float *l = lp + row * K;
        double m = -INFINITY;
        for (int k = 0; k < K; k++) m = laddexp(m, (double)l[k]);
        double ltail = (mode == KD_TOPK_TAIL && m < 0.0) ? log(-expm1(m)) : -INFINITY;
        double u = ltail / tau;
        for (int k = 0; k < K; k++) u = laddexp(u, (double)l[k] / tau);
        for (int k = 0; k < K; k++) lq[k] = (double)l[k] / tau - u;
        lq[K] = ltail == -INFINITY ? -INFINITY : ltail / tau - u;
    }
    __syncthreads();
    // Student: max over the support, then Z split into the top-K part and the tail.
    double mx = -INFINITY;
    if (mode == KD_TOPK_TAIL) {
        for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmax(mx, (double)x[j] / tau);
    } else {
        for (int k = threadIdx.x; k < K; k += blockDim.x) mx = fmax(mx, (double)x[id[k]] / tau);
    }
    mx = lmax(mx);
    double ztop = 0.0, ztail = 0.0, d = 0.0;
    for (int k = threadIdx.x; k < K; k += blockDim.x) ztop += exp((double)x[id[k]] / tau - mx);
    if (mode == KD_TOPK_TAIL)
        for (int j = threadIdx.x; j < V; j += blockDim.x) {
            int top = 0;
            for (int k = 0; k < K; k++) top |= id[k] == j;
            if (!top) ztail += exp((double)x[j] / tau - mx);
        }
    ztop = lsum(ztop);
    ztail = lsum(ztail);
    double logz = log(ztop + ztail);
    for (int k = threadIdx.x; k < K; k += blockDim.x) {
        double q = exp(lq[k]);
        if (q > 0.0) d += q * (lq[k] - ((double)x[id[k]] / tau - mx - logz));
    }
    d = lsum(d); // also the barrier before the writes
    double qtail = exp(lq[K]);
    if (qtail > 0.0) d += qtail * (lq[K] - (log(fmax(ztail, 2.2250738585072014e-308)) - logz));
    if (threadIdx.x == 0) loss[row] = (float)(wi * tau * tau * d);
    if (!dx) return;
    double c = dscale * wi * tau;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        double e = exp((double)x[j] / tau - mx), g;
        int slot = -1;
        for (int k = 0; k < K; k++)
            if (id[k] == j) slot = k;
        if (slot >= 0)
            g = e / (ztop + ztail) - exp(lq[slot]);
        else if (mode == KD_TOPK_TAIL)
            g = e / (ztop + ztail) - (ztail > 0.0 ? qtail * e / ztail : 0.0);
        else
            g = 0.0;
        dx[j] = (float)(c * g);
    }
}

static size_t cu_distill_topk_scratch(void *ctx, int N, int V, int K) {
    (void)ctx, (void)N, (void)V, (void)K;
    return 0;
}

static void cu_distill_topk(void *ctx, float *loss, float *dlogits, const float *s,
                            const int32_t *ids, const float *lp, const float *w, int N, int V,
                            int K, kd_topk_mode mode, float tau, float dscale, kd_scratch ws) {
    (void)ctx, (void)ws;
    if (N <= 0 || V <= 0) return;
    if (K < 0) K = 0;
    size_t shm = sizeof(double) * (K + 1) + sizeof(int32_t) * (K ? K : 1);
    k_distill_topk<<<N, LTPB, shm>>>(loss, dlogits, s, ids, lp, w, V, K, (int)mode, (double)tau,
                                     (double)dscale);
}

// ============================================================================ token log-probs

__global__ void k_token_logp_fwd(float *logp, const float *logits, const int32_t *targets, int V) {
    size_t row = blockIdx.x;
    const float *x = logits + row * V;
    int t = targets[row];
    if (t < 0) {
        if (threadIdx.x == 0) logp[row] = 0.0f;
        return;
    }
    double lse = row_logz(x, V, 1.0);
    if (threadIdx.x == 0) logp[row] = (float)((double)x[t] - lse);
}

__global__ void k_token_logp_bwd(float *dlogits, const float *dlogp, const float *logits,
                                 const int32_t *targets, int V) {
    size_t row = blockIdx.x;
    const float *x = logits + row * V;
    float *dx = dlogits + row * V;
    int t = targets[row];
    if (t < 0 || dlogp[row] == 0.0f) {
        for (int j = threadIdx.x; j < V; j += blockDim.x) dx[j] = 0.0f;
        return;
    }
    double lse = row_logz(x, V, 1.0); // ends with a barrier: the row is read before writes
    double g = (double)dlogp[row];
    for (int j = threadIdx.x; j < V; j += blockDim.x)
        dx[j] = (float)(g * ((j == t ? 1.0 : 0.0) - exp((double)x[j] - lse)));
}

static void cu_token_logp_fwd(void *ctx, float *logp, const float *logits, const int32_t *targets,
                              int N, int V) {
    (void)ctx;
    if (N > 0 && V > 0) k_token_logp_fwd<<<N, LTPB>>>(logp, logits, targets, V);
}

static void cu_token_logp_bwd(void *ctx, float *dlogits, const float *dlogp, const float *logits,
                              const int32_t *targets, int N, int V) {
    (void)ctx;
    if (N > 0 && V > 0) k_token_logp_bwd<<<N, LTPB>>>(dlogits, dlogp, logits, targets, V);
}

// ============================================================================ the sub-table

extern "C" const kd_losses_ops *kd_cuda_losses(void) {
    static kd_losses_ops t;
    t.distill_full_scratch = cu_distill_full_scratch;
    t.distill_full = cu_distill_full;
    t.distill_topk_scratch = cu_distill_topk_scratch;
    t.distill_topk = cu_distill_topk;
    t.token_logp_fwd = cu_token_logp_fwd;
    t.token_logp_bwd = cu_token_logp_bwd;
    return &t;
}
