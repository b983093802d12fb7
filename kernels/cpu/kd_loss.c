// kd_loss.c: the knowledge-distillation losses on the CPU, fused with their gradients
// w.r.t. the student logits: full-vocabulary forward KL, reverse KL and generalized JSD
// (distill_full), and forward KL to a cached top-K teacher with a tail bucket or a
// renormalised support (distill_topk). OpenMP over rows. Forward and reverse KL and the
// top-K loss take their exponentials with the vectorised float kd_vexp (~2e-7 relative)
// and keep every sum, logarithm and difference of logits in double, so their loss is exact
// to ~1e-7 absolute and identical rows still give exactly 0; JSD computes every
// per-element value in double (its mixture needs a log per element). Aliasing:
// each row is read completely before the final pass, which reads s[j] and then writes
// dlogits[j] at the same j, so dlogits may be the student logits. Maths: docs/losses.md.
// Scratch (caller's, see the *_scratch queries): row buffers for each thread.
#include <float.h>
#include <math.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_losses.h"
#include "kernels/cpu/vmath.h"

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

// x clamped to [-FLT_MAX, FLT_MAX] branch-free (integer min/max on bit patterns ordered like
// the values, as in kd_vexp). NaN is not preserved here; the callers' sums carry it.
static inline float finite_clamp(float x) {
    kd_vbits u = {x};
    int32_t key = u.i ^ ((u.i >> 31) & 0x7fffffff);
    const int32_t lo = (int32_t)0xff7fffff ^ 0x7fffffff, hi = 0x7f7fffff; // -FLT_MAX, FLT_MAX
    key = key < lo ? lo : key;
    key = key > hi ? hi : key;
    u.i = key ^ ((key >> 31) & 0x7fffffff);
    return u.f;
}

// Forward and reverse KL, vectorised. One pass computes both rows' exponentials with
// kd_vexp into float scratch (es, et: V each) and, in double, their sums and
// sd = sum_j e_j (y_j - x_j) weighted by the side the KL averages over (et forward, es
// reverse). With C = (mxt - mxs) / tau + log st - log ss (= lt_j - ls_j - (y_j - x_j)/tau):
//   forward D = E_pt[lt - ls] = sd / (tau st) - C,   gradient ps - pt
//   reverse D = E_ps[ls - lt] = C - sd / (tau ss),   gradient ps (ls - lt - D)
// The float exps carry ~2e-7 relative error, so D is exact to ~1e-7 absolute (identical
// rows still give exactly 0: same inputs, same exps). Returns D; if dx != NULL writes c
// times the gradient w.r.t. a = x / tau.
KD_CPU_CLONES static double kl_row(float *dx, const float *x, const float *y, int V, int reverse,
                                   double tau, double c, float *es, float *et) {
    float mxs = -INFINITY, mxt = -INFINITY;
#pragma omp simd reduction(max : mxs, mxt)
    for (int j = 0; j < V; j++) {
        mxs = x[j] > mxs ? x[j] : mxs;
        mxt = y[j] > mxt ? y[j] : mxt;
    }
    const float inv = (float)(1.0 / tau);
    double ss = 0.0, st = 0.0, sd = 0.0;
#pragma omp simd reduction(+ : ss, st, sd)
    for (int j = 0; j < V; j++) {
        float a = kd_vexp((x[j] - mxs) * inv), b = kd_vexp((y[j] - mxt) * inv);
        es[j] = a, et[j] = b;
        ss += (double)a, st += (double)b;
        // y - x on logits clamped to +-FLT_MAX, so -inf - -inf is not NaN where the
        // averaging probability is 0 (a float comparison here would keep the loop scalar)
        double d = (double)finite_clamp(y[j]) - (double)finite_clamp(x[j]);
        sd += (double)(reverse ? a : b) * d;
    }
    // cppcheck-suppress invalidFunctionArg ; ss, st >= 1 (the max element gives exp(0))
    const double C = ((double)mxt - (double)mxs) / tau + log(st) - log(ss);
    const double D = reverse ? C - sd / (tau * ss) : sd / (tau * st) - C;
    if (!dx) return D;
    if (!reverse) {
        const float ks = (float)(c / ss), kt = (float)(c / st);
#pragma omp simd
        for (int j = 0; j < V; j++) dx[j] = es[j] * ks - et[j] * kt;
    } else { // c ps_j (ls_j - lt_j - D), ls_j - lt_j = (x_j - y_j) / tau + C
        const double k = c / ss, off = C - D;
#pragma omp simd
        for (int j = 0; j < V; j++) {
            double d = ((double)finite_clamp(x[j]) - (double)finite_clamp(y[j])) / tau + off;
            dx[j] = (float)(k * (double)es[j] * d); // d is finite: es_j = 0 gives 0
        }
    }
    return D;
}

// Threads the row loops run on: one below KD_CPU_PAR_MIN elements.
static int loss_threads(int N, int V) {
    return (size_t)N * V > KD_CPU_PAR_MIN ? omp_get_max_threads() : 1;
}

// 3V doubles per thread.
size_t kd_cpu_distill_full_scratch(void *ctx, int N, int V) {
    (void)ctx;
    if (N <= 0 || V <= 0) return 0;
    return kd_cpu_round(sizeof(double) * 3 * (size_t)V * loss_threads(N, V));
}

// s, t (N,V); w (N) or NULL; loss (N); dlogits (N,V) or NULL, may alias s.
// loss = w tau^2 D, so d loss / d s = w tau^2 (dD/da) / tau = w tau dD/da.
void kd_cpu_distill_full(void *ctx, float *loss, float *dlogits, const float *s, const float *t,
                         const float *w, int N, int V, kd_divergence div, float beta, float tau,
                         float dscale, kd_scratch ws) {
    (void)ctx;
    if (N <= 0 || V <= 0) return;
    int nthr = loss_threads(N, V), par = (size_t)N * V > KD_CPU_PAR_MIN;
    double *scratch = kd_cpu_take(&ws, sizeof(double) * 3 * (size_t)V * nthr);
    // 1: forward KL, 2: reverse KL (JSD at beta 0 / 1 is exactly those), 0: JSD
    int kl = div == KD_DIV_FORWARD_KL || (div == KD_DIV_JSD && beta <= 0.0f)   ? 1
             : div == KD_DIV_REVERSE_KL || (div == KD_DIV_JSD && beta >= 1.0f) ? 2
                                                                               : 0;
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
        float *fb = (float *)buf; // the KL path needs 2V floats of the 3V doubles
        double D = kl != 0 ? kl_row(dx, x, y, V, kl == 2, (double)tau, c, fb, fb + V)
                           : full_row(dx, x, y, V, div, (double)beta, (double)tau, c, buf);
        loss[i] = (float)(wi * (double)tau * (double)tau * D);
    }
}

// ============================================================================ top-K teacher

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

// One row of distill_topk; returns D. ids (K) distinct and in [0,V) (the kd stage checks
// every cached row with kd_losses_check_topk); lq (K+1) from teacher_row; buf is scratch of
// V floats, kbuf of 2K doubles. Tail mode, three vectorised passes over the vocabulary:
// e_j = exp((x_j - max x) / tau) into buf (kd_vexp), the tail sum Ztail over buf with the
// top-K slots zeroed (a sum of its own terms: no Zall - Ztop cancellation when the tail is
// tiny), then the gradient as one scale of buf. The K top entries are handled on their own.
KD_CPU_CLONES static double topk_row(float *dx, const float *x, const int32_t *ids,
                                     const double *lq, int V, int K, kd_topk_mode mode, double tau,
                                     double c, float *buf, double *kbuf) {
    double *xtop = kbuf, *etop = kbuf + K; // the top-K logits (read before dx may alias x)
    const int tail = mode == KD_TOPK_TAIL;
    float mxf = -INFINITY; // max logit over the support the mode uses
    if (tail) {
#pragma omp simd reduction(max : mxf)
        for (int j = 0; j < V; j++) mxf = x[j] > mxf ? x[j] : mxf;
    }
    for (int k = 0; k < K; k++) {
        xtop[k] = (double)x[ids[k]];
        if (!tail && xtop[k] > mxf) mxf = (float)xtop[k];
    }
    const double mx = (double)mxf;
    double ztop = 0.0, ztail = 0.0;
    for (int k = 0; k < K; k++) ztop += (etop[k] = exp((xtop[k] - mx) / tau));
    if (tail) {
        const float inv = (float)(1.0 / tau);
#pragma omp simd
        for (int j = 0; j < V; j++) buf[j] = kd_vexp((x[j] - mxf) * inv);
        for (int k = 0; k < K; k++) buf[ids[k]] = 0.0f;
#pragma omp simd reduction(+ : ztail)
        for (int j = 0; j < V; j++) ztail += (double)buf[j];
    }
    const double z = ztop + ztail, logz = log(z);
    // D = sum_k q_k (lq_k - lp_k) + q_tail (lq_tail - lp_tail), lp = student log-probs.
    double D = 0.0;
    for (int k = 0; k < K; k++) {
        double q = exp(lq[k]);
        if (q > 0.0) D += q * (lq[k] - ((xtop[k] - mx) / tau - logz));
    }
    double qtail = exp(lq[K]);
    if (qtail > 0.0) D += qtail * (lq[K] - (log(fmax(ztail, DBL_MIN)) - logz));
    if (!dx) return D;
    // Gradient w.r.t. a = x / tau: top id k: ps_k - q_k; tail id j: ps_j (1 - q_tail / P_tail)
    // = e_j (1/Z - q_tail/Ztail). For KD_TOPK_RENORM ps is the renormalised top-K
    // distribution and tail ids get 0.
    if (tail) {
        const float g = (float)(c * (1.0 / z - (ztail > 0.0 ? qtail / ztail : 0.0)));
#pragma omp simd
        for (int j = 0; j < V; j++) dx[j] = buf[j] * g; // top-K slots of buf are 0
    } else {
        for (int j = 0; j < V; j++) dx[j] = 0.0f;
    }
    for (int k = 0; k < K; k++) dx[ids[k]] = (float)(c * (etop[k] / z - exp(lq[k])));
    return D;
}

// V floats, then K+1 + 2K doubles (lq, kbuf) per thread.
size_t kd_cpu_distill_topk_scratch(void *ctx, int N, int V, int K) {
    (void)ctx;
    if (N <= 0 || V <= 0) return 0;
    if (K < 0) K = 0;
    size_t nthr = (size_t)loss_threads(N, V);
    return kd_cpu_round(sizeof(float) * (size_t)V * nthr) +
           kd_cpu_round(sizeof(double) * nthr * (3 * (size_t)K + 1));
}

// s (N,V); ids, lp (N,K); w (N) or NULL; loss (N); dlogits (N,V) or NULL, may alias s.
void kd_cpu_distill_topk(void *ctx, float *loss, float *dlogits, const float *s, const int32_t *ids,
                         const float *lp, const float *w, int N, int V, int K, kd_topk_mode mode,
                         float tau, float dscale, kd_scratch ws) {
    (void)ctx;
    if (N <= 0 || V <= 0) return;
    if (K < 0) K = 0;
    int nthr = loss_threads(N, V), par = (size_t)N * V > KD_CPU_PAR_MIN;
    float *scratch = kd_cpu_take(&ws, sizeof(float) * (size_t)V * nthr);
    double *lq = kd_cpu_take(&ws, sizeof(double) * (size_t)nthr * (3 * K + 1)); // lq, kbuf
#pragma omp parallel for schedule(static) if (par)
    for (int i = 0; i < N; i++) {
        const float *x = s + (size_t)i * V;
        float *dx = dlogits ? dlogits + (size_t)i * V : NULL;
        double wi = w ? (double)w[i] : 1.0;
        if (wi == 0.0) {
            loss[i] = 0.0f;
            zero_row(dx, V);
            continue;
        }
        int th = omp_get_thread_num();
        const int32_t *idi = ids + (size_t)i * K;
        for (int k = 0; k < K; k++) KD_CPU_ASSERT(idi[k] >= 0 && idi[k] < V); // see topk_row
        double *lqi = lq + (size_t)th * (3 * K + 1);
        teacher_row(lqi, lp + (size_t)i * K, K, mode, (double)tau);
        double c = (double)dscale * wi * (double)tau;
        double D = topk_row(dx, x, idi, lqi, V, K, mode, (double)tau, c, scratch + (size_t)V * th,
                            lqi + K + 1);
        loss[i] = (float)(wi * (double)tau * (double)tau * D);
    }
}
