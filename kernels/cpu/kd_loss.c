// kd_loss.c: the knowledge-distillation losses on the CPU, fused with their gradients
// w.r.t. the student logits: full-vocabulary forward KL, reverse KL and generalized JSD
// (distill_full), and forward KL to a cached top-K teacher with a tail bucket or a
// renormalised support (distill_topk). OpenMP over rows. Every per-element value of a row
// (log-probabilities, probabilities, the mixture) is computed in double: KL terms cancel
// when student and teacher agree, and float would lose the small differences. Aliasing:
// each row is read completely before the final pass, which reads s[j] and then writes
// dlogits[j] at the same j, so dlogits may be the student logits. Maths: docs/losses.md.
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_losses.h"
#include "runtime/common.h"

// ============================================================================ helpers

// log(e^a + e^b) without overflow; -inf when both are -inf.
static double logaddexp(double a, double b) {
    double m = a > b ? a : b;
    if (m == -INFINITY) return -INFINITY;
    return m + log1p(exp(-fabs(a - b)));
}

static void zero_row(float *dx, int V) {
    if (dx)
        for (int j = 0; j < V; j++) dx[j] = 0.0f;
}

// ============================================================================ full vocabulary

// Row statistics at temperature tau: e (V) gets exp(x_j/tau - max), returns the max and
// sets *z to sum_j e_j (>= 1: the max element contributes exp(0)).
static double row_exp(double *e, const float *x, int V, double tau, double *z) {
    double mx = -INFINITY, sum = 0.0;
    for (int j = 0; j < V; j++) mx = fmax(mx, (double)x[j] / tau);
    for (int j = 0; j < V; j++) sum += (e[j] = exp((double)x[j] / tau - mx));
    *z = sum;
    return mx;
}

// One row: returns D (the divergence, no tau^2, no weight). If dx != NULL writes
// c * dD/da with a = x / tau (c already holds dscale * w * tau, see below).
// x, y, dx are (V); buf is scratch of 3V doubles: ps, pt and the mixture's log lm.
// ls, lt are the log-softmaxes of x/tau and y/tau. Two exp per element in all.
static double full_row(float *dx, const float *x, const float *y, int V, kd_divergence div,
                       double beta, double tau, double c, double *buf) {
    double *ps = buf, *pt = buf + V, *lm = buf + 2 * (size_t)V, sums, sumt;
    double zs = row_exp(ps, x, V, tau, &sums), zt = row_exp(pt, y, V, tau, &sumt);
    // cppcheck-suppress invalidFunctionArg ; sums, sumt >= 1
    zs += log(sums), zt += log(sumt); // now the log-normalisers of x/tau and y/tau
    if (div == KD_DIV_JSD && beta <= 0.0) div = KD_DIV_FORWARD_KL; // TRL: exact ends
    if (div == KD_DIV_JSD && beta >= 1.0) div = KD_DIV_REVERSE_KL;
    double lb = div == KD_DIV_JSD ? log(beta) : 0.0, l1b = div == KD_DIV_JSD ? log1p(-beta) : 0.0;
    // Pass 1: the divergence. Terms with zero probability weight are skipped (0 log 0 = 0,
    // and a -inf logit must not turn 0 * inf into NaN).
    double d_t = 0.0, d_s = 0.0, is = 1.0 / sums, it = 1.0 / sumt;
    for (int j = 0; j < V; j++) {
        double ls = (double)x[j] / tau - zs, lt = (double)y[j] / tau - zt;
        double p_s = (ps[j] *= is), p_t = (pt[j] *= it);
        if (div == KD_DIV_FORWARD_KL) {
            if (p_t > 0.0) d_t += p_t * (lt - ls);
        } else if (div == KD_DIV_REVERSE_KL) {
            if (p_s > 0.0) d_s += p_s * (ls - lt);
        } else {
            lm[j] = logaddexp(lt + lb, ls + l1b);
            if (p_t > 0.0) d_t += p_t * (lt - lm[j]);
            if (p_s > 0.0) d_s += p_s * (ls - lm[j]);
        }
    }
    double D = div == KD_DIV_FORWARD_KL   ? d_t
               : div == KD_DIV_REVERSE_KL ? d_s
                                          : beta * d_t + (1.0 - beta) * d_s;
    if (!dx) return D;
    // Pass 2: gradients w.r.t. a = x / tau (derivations in docs/losses.md):
    //   forward KL: ps - pt
    //   reverse KL: ps * (ls - lt - KL(ps||pt))
    //   JSD_beta:   (1 - beta) * ps * (ls - lm - KL(ps||M))
    for (int j = 0; j < V; j++) {
        double ls = (double)x[j] / tau - zs, g;
        if (div == KD_DIV_FORWARD_KL) {
            g = ps[j] - pt[j];
        } else if (ps[j] == 0.0) {
            g = 0.0;
        } else if (div == KD_DIV_REVERSE_KL) {
            g = ps[j] * (ls - ((double)y[j] / tau - zt) - d_s);
        } else {
            g = (1.0 - beta) * ps[j] * (ls - lm[j] - d_s);
        }
        dx[j] = (float)(c * g);
    }
    return D;
}

// s, t (N,V); w (N) or NULL; loss (N); dlogits (N,V) or NULL, may alias s.
// loss = w tau^2 D, so d loss / d s = w tau^2 (dD/da) / tau = w tau dD/da.
void kd_cpu_distill_full(float *loss, float *dlogits, const float *s, const float *t,
                         const float *w, int N, int V, kd_divergence div, float beta, float tau,
                         float dscale) {
    if (N <= 0 || V <= 0) return;
    int par = (size_t)N * V > KD_CPU_PAR_MIN, nthr = par ? omp_get_max_threads() : 1;
    double *scratch = kd_malloc(sizeof(double) * 3 * (size_t)V * nthr);
#pragma omp parallel for schedule(static) if (par)
    for (int i = 0; i < N; i++) {
        const float *x = s + (size_t)i * V, *y = t + (size_t)i * V;
        float *dx = dlogits ? dlogits + (size_t)i * V : NULL;
        double wi = w ? (double)w[i] : 1.0;
        if (wi == 0.0) { // masked row (pad, prompt): nothing is read
            loss[i] = 0.0f;
            zero_row(dx, V);
            continue;
        }
        double *buf = scratch + 3 * (size_t)V * omp_get_thread_num();
        double c = (double)dscale * wi * (double)tau;
        double D = full_row(dx, x, y, V, div, (double)beta, (double)tau, c, buf);
        loss[i] = (float)(wi * (double)tau * (double)tau * D);
    }
    free(scratch);
}

// ============================================================================ top-K teacher

// Keys (id << 32 | k), unsigned, sort the K ids of a row by id while remembering their
// slot k, so that one ascending walk over the vocabulary knows which ids are in the top-K.
static int cmp_key(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

// The teacher side of one row: lq (K+1) gets the tempered log-probabilities of the K ids
// and, in slot K, of the tail bucket (-inf for KD_TOPK_RENORM or an empty tail).
static void teacher_row(double *lq, const float *lp, int K, kd_topk_mode mode, double tau) {
    double l = -INFINITY; // log of the cached top-K mass at tau = 1
    for (int k = 0; k < K; k++) l = logaddexp(l, (double)lp[k]);
    // tail mass 1 - e^l, computed as -expm1(l); the cache may round the mass above 1
    double ltail = (mode == KD_TOPK_TAIL && l < 0.0) ? log(-expm1(l)) : -INFINITY;
    double u = ltail / tau; // normaliser of the tempered K+1 log-masses
    for (int k = 0; k < K; k++) u = logaddexp(u, (double)lp[k] / tau);
    for (int k = 0; k < K; k++) lq[k] = (double)lp[k] / tau - u;
    lq[K] = ltail == -INFINITY ? -INFINITY : ltail / tau - u;
}

// One row of distill_topk; returns D. keys (K) sorted; lq (K+1) from teacher_row.
static double topk_row(float *dx, const float *x, const uint64_t *keys, const double *lq, int V,
                       int K, kd_topk_mode mode, double tau, double c) {
    // Student statistics: mx over the support that mode uses, Z (all or top-K) and Ztail
    // (the non-top ids) as sums of exp(a_j - mx), each term computed once, no subtraction.
    double mx = -INFINITY;
    if (mode == KD_TOPK_TAIL) {
        for (int j = 0; j < V; j++) mx = fmax(mx, (double)x[j] / tau);
    } else {
        for (int k = 0; k < K; k++) mx = fmax(mx, (double)x[keys[k] >> 32] / tau);
    }
    double ztop = 0.0, ztail = 0.0;
    for (int k = 0; k < K; k++) ztop += exp((double)x[keys[k] >> 32] / tau - mx);
    if (mode == KD_TOPK_TAIL) {
        int p = 0;
        for (int j = 0; j < V; j++) {
            if (p < K && (int)(keys[p] >> 32) == j) {
                p++;
                continue;
            }
            ztail += exp((double)x[j] / tau - mx);
        }
    }
    double logz = log(ztop + ztail);
    // D = sum_k q_k (lq_k - lp_k) + q_tail (lq_tail - lp_tail), lp = student log-probs.
    double D = 0.0;
    for (int k = 0; k < K; k++) {
        int j = (int)(keys[k] >> 32), slot = (int)(keys[k] & 0xffffffff);
        double q = exp(lq[slot]);
        if (q > 0.0) D += q * (lq[slot] - ((double)x[j] / tau - mx - logz));
    }
    double qtail = exp(lq[K]);
    if (qtail > 0.0) D += qtail * (lq[K] - (log(fmax(ztail, DBL_MIN)) - logz));
    if (!dx) return D;
    // Gradient w.r.t. a = x / tau: top id k: ps_j - q_k; tail id: ps_j (1 - q_tail / P_tail),
    // with ps_j / P_tail = e_j / Ztail (the student's distribution inside the tail). For
    // KD_TOPK_RENORM ps_j is the student's renormalised top-K probability and tail ids get 0.
    int p = 0;
    for (int j = 0; j < V; j++) {
        double e = exp((double)x[j] / tau - mx), g;
        if (p < K && (int)(keys[p] >> 32) == j) {
            g = e / (ztop + ztail) - exp(lq[keys[p] & 0xffffffff]);
            p++;
        } else if (mode == KD_TOPK_TAIL) {
            g = e / (ztop + ztail) - (ztail > 0.0 ? qtail * e / ztail : 0.0);
        } else {
            g = 0.0;
        }
        dx[j] = (float)(c * g);
    }
    return D;
}

// s (N,V); ids, lp (N,K); w (N) or NULL; loss (N); dlogits (N,V) or NULL, may alias s.
void kd_cpu_distill_topk(float *loss, float *dlogits, const float *s, const int32_t *ids,
                         const float *lp, const float *w, int N, int V, int K, kd_topk_mode mode,
                         float tau, float dscale) {
    if (N <= 0 || V <= 0) return;
    if (K < 0) K = 0;
    uint64_t *keys = kd_malloc(sizeof(uint64_t) * (size_t)N * (K ? K : 1));
    double *lq = kd_malloc(sizeof(double) * (size_t)N * (K + 1));
#pragma omp parallel for schedule(static) if ((size_t)N * V > KD_CPU_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *x = s + (size_t)i * V;
        float *dx = dlogits ? dlogits + (size_t)i * V : NULL;
        double wi = w ? (double)w[i] : 1.0;
        if (wi == 0.0) {
            loss[i] = 0.0f;
            zero_row(dx, V);
            continue;
        }
        uint64_t *key = keys + (size_t)i * K;
        double *lqi = lq + (size_t)i * (K + 1);
        for (int k = 0; k < K; k++) {
            int32_t id = ids[(size_t)i * K + k];
            KD_ASSERT(id >= 0 && id < V); // checked by kd_losses_check_topk when data is read
            key[k] = ((uint64_t)(uint32_t)id << 32) | (uint32_t)k;
        }
        qsort(key, (size_t)K, sizeof *key, cmp_key);
        for (int k = 1; k < K; k++) KD_ASSERT((key[k] >> 32) != (key[k - 1] >> 32)); // distinct
        teacher_row(lqi, lp + (size_t)i * K, K, mode, (double)tau);
        double c = (double)dscale * wi * (double)tau;
        double D = topk_row(dx, x, key, lqi, V, K, mode, (double)tau, c);
        loss[i] = (float)(wi * (double)tau * (double)tau * D);
    }
    free(keys);
    free(lq);
}
