// test_losses_kd.c: the CPU distillation kernels (distill_full, distill_topk) and the
// per-token log-prob kernels (token_logp_fwd/bwd) against a plain double-precision host
// reference written from the definitions (explicit softmaxes, explicit mixture M, explicit
// tail sums), and their gradients against central finite differences of that reference.
// Also: masked rows read nothing, dlogits may alias the logits, KL(p||p) = 0, and the
// kernels are reached through the CPU kd_ops table. Runs under valgrind in seconds.
#include "kernels/cpu/cpu_losses.h"
#include "unit/test_kernels_util.h"

// ============================================================================ host reference

// softmax of x (V) / tau into p (V), in double.
// Host scratch for the loss kernels, grown on demand (freed at the end of main).
static kd_scratch g_ws;
static kd_scratch loss_scratch(int N, int V, int K) {
    size_t full = kd_cpu_distill_full_scratch(NULL, N, V);
    size_t topk = kd_cpu_distill_topk_scratch(NULL, N, V, K);
    size_t need = full > topk ? full : topk;
    if (need > g_ws.bytes) {
        free(g_ws.p);
        g_ws.p = malloc(need);
        g_ws.bytes = need;
    }
    return g_ws;
}

static void ref_softmax(double *p, const double *x, int V, double tau) {
    double mx = -INFINITY, z = 0.0;
    for (int j = 0; j < V; j++) mx = fmax(mx, x[j] / tau);
    for (int j = 0; j < V; j++) z += (p[j] = exp(x[j] / tau - mx));
    for (int j = 0; j < V; j++) p[j] /= z;
}

// sum_j a_j log(a_j / b_j), 0 log 0 = 0
static double ref_kl(const double *a, const double *b, int n) {
    double d = 0.0;
    for (int j = 0; j < n; j++)
        if (a[j] > 0.0) d += a[j] * log(a[j] / b[j]);
    return d;
}

// D of one row (no weight, no tau^2) straight from the definitions.
static double ref_full(const double *s, const double *t, int V, kd_divergence div, double beta,
                       double tau) {
    double ps[64], pt[64], m[64];
    ref_softmax(ps, s, V, tau);
    ref_softmax(pt, t, V, tau);
    if (div == KD_DIV_JSD && beta == 0.0) div = KD_DIV_FORWARD_KL;
    if (div == KD_DIV_JSD && beta == 1.0) div = KD_DIV_REVERSE_KL;
    if (div == KD_DIV_FORWARD_KL) return ref_kl(pt, ps, V);
    if (div == KD_DIV_REVERSE_KL) return ref_kl(ps, pt, V);
    for (int j = 0; j < V; j++) m[j] = beta * pt[j] + (1.0 - beta) * ps[j];
    return beta * ref_kl(pt, m, V) + (1.0 - beta) * ref_kl(ps, m, V);
}

// Top-K forward KL of one row: teacher masses T_k = exp(lp_k) plus T_tail = 1 - sum T_k
// (tail mode), tempered as q ~ T^(1/tau); student P = softmax(s/tau) with the tail summed
// explicitly (tail mode) or restricted to the ids and renormalised (renorm mode).
static double ref_topk(const double *s, const int32_t *ids, const float *lp, int V, int K,
                       kd_topk_mode mode, double tau) {
    double ps[64], P[65], q[65], qs = 0.0, Ps = 0.0;
    ref_softmax(ps, s, V, tau);
    int n = mode == KD_TOPK_TAIL ? K + 1 : K;
    double ttail = 1.0;
    for (int k = 0; k < K; k++) {
        P[k] = ps[ids[k]];
        q[k] = pow(exp((double)lp[k]), 1.0 / tau);
        ttail -= exp((double)lp[k]);
    }
    if (mode == KD_TOPK_TAIL) {
        P[K] = 0.0;
        for (int j = 0; j < V; j++) {
            int top = 0;
            for (int k = 0; k < K; k++) top |= ids[k] == j;
            if (!top) P[K] += ps[j];
        }
        q[K] = ttail > 0.0 ? pow(ttail, 1.0 / tau) : 0.0;
    }
    for (int k = 0; k < n; k++) qs += q[k], Ps += P[k];
    for (int k = 0; k < n; k++) q[k] /= qs, P[k] /= Ps;
    return ref_kl(q, P, n);
}

// ============================================================================ fixtures

typedef struct {
    int N, V, K;
    double s[8 * 64], t[8 * 64], w[8];
    int32_t ids[8 * 16];
    float lp[8 * 16];
    kd_divergence div;
    kd_topk_mode mode;
    double beta, tau;
    int topk;
} fixture;

// Sum over rows of w tau^2 D: the scalar whose gradient the kernels return (dscale = 1).
static double fixture_loss(const fixture *f) {
    double L = 0.0;
    for (int i = 0; i < f->N; i++) {
        const double *s = f->s + (size_t)i * f->V;
        double D =
            f->topk ? ref_topk(s, f->ids + i * f->K, f->lp + i * f->K, f->V, f->K, f->mode, f->tau)
                    : ref_full(s, f->t + (size_t)i * f->V, f->V, f->div, f->beta, f->tau);
        L += f->w[i] * f->tau * f->tau * D;
    }
    return L;
}

// Fills a fixture with random logits (scale 2), weights with one masked row, and a top-K
// cache: the teacher's K most likely ids and their log-softmax at tau = 1.
static void fixture_init(fixture *f, int N, int V, int K) {
    f->N = N, f->V = V, f->K = K;
    for (int i = 0; i < N * V; i++) f->s[i] = 2.0f * rng_normal(), f->t[i] = 2.0f * rng_normal();
    for (int i = 0; i < N; i++) f->w[i] = i == 1 ? 0.0 : 0.25 + rng_uniform();
    for (int i = 0; i < N; i++) {
        double pt[64];
        const double *t = f->t + (size_t)i * V;
        ref_softmax(pt, t, V, 1.0);
        int used[64] = {0};
        for (int k = 0; k < K; k++) {
            int best = 0;
            while (used[best]) best++;
            for (int j = best + 1; j < V; j++)
                if (!used[j] && pt[j] > pt[best]) best = j;
            used[best] = 1;
            f->ids[i * K + k] = best;
            f->lp[i * K + k] = (float)log(pt[best]);
        }
    }
}

// Runs the kernel of the fixture on float copies; returns loss (N) and dlogits (N,V).
static void fixture_run(const fixture *f, float *loss, float *dl, float dscale, int alias) {
    size_t n = (size_t)f->N * f->V;
    float *s = malloc(sizeof(float) * n), *t = malloc(sizeof(float) * n), w[8];
    for (size_t i = 0; i < n; i++) s[i] = (float)f->s[i], t[i] = (float)f->t[i];
    for (int i = 0; i < f->N; i++) w[i] = (float)f->w[i];
    float *out = alias ? s : dl;
    if (f->topk)
        kd_cpu_distill_topk(NULL, loss, out, s, f->ids, f->lp, w, f->N, f->V, f->K, f->mode,
                            (float)f->tau, dscale, loss_scratch(f->N, f->V, f->K));
    else
        kd_cpu_distill_full(NULL, loss, out, s, t, w, f->N, f->V, f->div, (float)f->beta,
                            (float)f->tau, dscale, loss_scratch(f->N, f->V, 0));
    if (alias) memcpy(dl, s, sizeof(float) * n);
    free(s);
    free(t);
}

// Kernel vs reference on one fixture: the losses (rel 1e-6: the kernel works in double and
// rounds once to float, 6e-8), and the gradient vs central differences of the double
// reference (h = 1e-5: truncation ~h^2 = 1e-10, cancellation ~1e-16/h = 1e-11; the kernel's
// float output is good to 6e-8, so rel 2e-6 of max(|g_j|, rms g) leaves a 30x margin).
static void check_fixture(fixture *f, const char *name) {
    // The reference sees float-rounded inputs, exactly what the kernel sees.
    for (int i = 0; i < f->N * f->V; i++) f->s[i] = (float)f->s[i], f->t[i] = (float)f->t[i];
    float loss[8], *dl = malloc(sizeof(float) * f->N * f->V);
    float dscale = 0.75f;
    fixture_run(f, loss, dl, dscale, 0);
    char what[200];
    for (int i = 0; i < f->N; i++) {
        const double *s = f->s + (size_t)i * f->V;
        double D =
            f->topk ? ref_topk(s, f->ids + i * f->K, f->lp + i * f->K, f->V, f->K, f->mode, f->tau)
                    : ref_full(s, f->t + (size_t)i * f->V, f->V, f->div, f->beta, f->tau);
        double want = f->w[i] * f->tau * f->tau * D;
        snprintf(what, sizeof what, "%s loss[%d]", name, i);
        check(fabs(loss[i] - want) <= 1e-6 * fabs(want) + 1e-12, what, loss[i], want,
              1e-6 * fabs(want) + 1e-12);
        snprintf(what, sizeof what, "%s D[%d] >= 0", name, i);
        check(D >= -1e-15, what, D, 0.0, 0.0);
    }
    double *fd = malloc(sizeof(double) * f->N * f->V), h = 1e-5;
    for (int i = 0; i < f->N * f->V; i++) {
        double x0 = f->s[i];
        f->s[i] = x0 + h;
        double lp = fixture_loss(f);
        f->s[i] = x0 - h;
        double lm = fixture_loss(f);
        f->s[i] = x0;
        fd[i] = dscale * (lp - lm) / (2.0 * h);
    }
    snprintf(what, sizeof what, "%s dlogits vs finite differences", name);
    check_close(what, dl, fd, (size_t)f->N * f->V, 2e-6);
    // Aliased output must give the same bits: each row is read before it is written.
    float loss2[8], *dl2 = malloc(sizeof(float) * f->N * f->V);
    fixture_run(f, loss2, dl2, dscale, 1);
    snprintf(what, sizeof what, "%s aliased dlogits == separate dlogits", name);
    check(memcmp(dl, dl2, sizeof(float) * f->N * f->V) == 0, what, 0, 0, 0);
    free(dl);
    free(dl2);
    free(fd);
}

// ============================================================================ tests

static void test_full(void) {
    const double taus[] = {1.0, 0.7, 2.0};
    const double betas[] = {0.0, 0.1, 0.5, 0.9, 1.0};
    fixture f;
    char name[128];
    for (int it = 0; it < 3; it++) {
        for (int d = 0; d < 3; d++) {
            int nb = d == KD_DIV_JSD ? 5 : 1;
            for (int b = 0; b < nb; b++) {
                fixture_init(&f, 4, 17 + 10 * it, 0);
                f.topk = 0, f.div = (kd_divergence)d, f.beta = betas[b], f.tau = taus[it];
                snprintf(name, sizeof name, "full div=%d beta=%.1f tau=%.1f", d, f.beta, f.tau);
                check_fixture(&f, name);
            }
        }
    }
}

static void test_topk(void) {
    const double taus[] = {1.0, 0.5, 2.0};
    fixture f;
    char name[128];
    for (int it = 0; it < 3; it++)
        for (int m = 0; m < 2; m++) {
            fixture_init(&f, 4, 23, 5);
            f.topk = 1, f.mode = (kd_topk_mode)m, f.tau = taus[it];
            snprintf(name, sizeof name, "topk mode=%s tau=%.1f", m ? "renorm" : "tail", f.tau);
            check_fixture(&f, name);
        }
    // A cache whose K probabilities already sum to 1 (renormalised by whoever wrote it):
    // the tail bucket is empty on the teacher side, q_tail = 0, no NaN from 0 * log 0.
    fixture_init(&f, 3, 19, 4);
    for (int i = 0; i < 3; i++) {
        double z = 0.0;
        for (int k = 0; k < 4; k++) z += exp((double)f.lp[i * 4 + k]);
        for (int k = 0; k < 4; k++) f.lp[i * 4 + k] -= (float)log(z);
    }
    f.topk = 1, f.mode = KD_TOPK_TAIL, f.tau = 1.3;
    check_fixture(&f, "topk tail with empty teacher tail");
}

// KL(p||p) = 0 with zero gradient for every divergence, and masked rows (w = 0) are never
// read: NaN logits there must not leak into the loss or the gradient.
static void test_properties(void) {
    enum { N = 3, V = 40 };
    float s[N * V], loss[N], dl[N * V], w[N] = {1.0f, 0.0f, 2.0f};
    for (int i = 0; i < N * V; i++) s[i] = 3.0f * rng_normal();
    for (int j = 0; j < V; j++) s[V + j] = NAN;
    for (int d = 0; d < 3; d++) {
        kd_cpu_distill_full(NULL, loss, dl, s, s, w, N, V, (kd_divergence)d, 0.5f, 1.5f, 1.0f,
                            loss_scratch(N, V, 0));
        double worst = 0.0, lw = 0.0;
        for (int i = 0; i < N; i++) lw = fmax(lw, fabs(loss[i]));
        for (int i = 0; i < N * V; i++) worst = fmax(worst, isnan(dl[i]) ? INFINITY : fabs(dl[i]));
        // same inputs on both sides: the only error is the rounding of exp/log, ~1e-15
        check(lw <= 1e-12, "KL(p||p) loss is 0", lw, 0.0, 1e-12);
        check(worst <= 1e-7, "KL(p||p) gradient is 0, masked NaN row gives 0", worst, 0.0, 1e-7);
    }
    // A -inf teacher logit (a token the teacher forbids) is a zero-probability term of the
    // forward KL: finite loss, student pushed away from it with gradient tau * w * ps_j.
    float t[V];
    for (int j = 0; j < V; j++) t[j] = s[j];
    t[5] = -INFINITY;
    kd_cpu_distill_full(NULL, loss, dl, s, t, NULL, 1, V, KD_DIV_FORWARD_KL, 0.0f, 1.0f, 1.0f,
                        loss_scratch(1, V, 0));
    check(isfinite(loss[0]) && loss[0] > 0.0f, "forward KL with a -inf teacher logit is finite",
          loss[0], 0.0, 0.0);
    check(isfinite(dl[5]) && dl[5] > 0.0f, "gradient at the forbidden token is positive", dl[5],
          0.0, 0.0);
}

// token_logp_fwd vs log-softmax in double (rel 1e-6: one rounding to float), bwd vs central
// differences of sum_i g_i logp_i in double (same margins as check_fixture).
static void test_token_logp(void) {
    enum { N = 5, V = 29 };
    float x[N * V], logp[N], g[N], dl[N * V];
    int32_t tg[N] = {3, -1, 0, 28, 11};
    double xd[N * V];
    for (int i = 0; i < N * V; i++) xd[i] = x[i] = 2.5f * rng_normal();
    for (int i = 0; i < N; i++) g[i] = rng_normal();
    kd_cpu_token_logp_fwd(NULL, logp, x, tg, N, V);
    double fd[N * V];
    for (int i = 0; i < N; i++) {
        double p[V];
        ref_softmax(p, xd + i * V, V, 1.0);
        double want = tg[i] < 0 ? 0.0 : log(p[tg[i]]);
        check(fabs(logp[i] - want) <= 1e-6 * fabs(want) + 1e-12, "token_logp_fwd", logp[i], want,
              1e-6 * fabs(want));
        for (int j = 0; j < V; j++) {
            double v[2], h = 1e-5, x0 = xd[i * V + j];
            for (int sgn = 0; sgn < 2; sgn++) {
                xd[i * V + j] = x0 + (sgn ? -h : h);
                ref_softmax(p, xd + i * V, V, 1.0);
                v[sgn] = tg[i] < 0 ? 0.0 : g[i] * log(p[tg[i]]);
            }
            xd[i * V + j] = x0;
            fd[i * V + j] = (v[0] - v[1]) / (2.0 * h);
        }
    }
    kd_cpu_token_logp_bwd(NULL, dl, g, x, tg, N, V);
    check_close("token_logp_bwd vs finite differences", dl, fd, N * V, 2e-6);
    kd_cpu_token_logp_bwd(NULL, x, g, x, tg, N, V); // aliased
    check(memcmp(x, dl, sizeof dl) == 0, "token_logp_bwd aliased == separate", 0, 0, 0);
}

// The CPU table carries the kernels (its losses sub-table).
static void test_table(void) {
    const kd_losses_ops *ops = kd_ops_cpu()->losses;
    check(ops->distill_full == kd_cpu_distill_full && ops->distill_topk == kd_cpu_distill_topk &&
              ops->token_logp_fwd == kd_cpu_token_logp_fwd &&
              ops->token_logp_bwd == kd_cpu_token_logp_bwd,
          "kd_ops_cpu() has the loss kernels", 0, 0, 0);
}

int main(void) {
    rng_seed(20240611);
    test_full();
    test_topk();
    test_properties();
    test_token_logp();
    test_table();
    free(g_ws.p);
    return check_done("test_losses_kd");
}
