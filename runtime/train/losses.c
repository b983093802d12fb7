// losses.c: the preference losses over per-sequence log-prob sums (with gradients and
// reward metrics), segment sums, loss-name parsing and the checks of loss settings and of
// cached top-K data. Everything here is O(batch) host arithmetic in double.
#include "runtime/train/losses.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ============================================================================ scalar helpers

static double sigmoid(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

// log sigmoid(x) = -softplus(-x), stable for either sign.
static double log_sigmoid(double x) {
    return x >= 0.0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

// log(1 - e^m) for m < 0 (the two branches keep full precision near 0 and far below).
static double log1mexp(double m) {
    return m > -0.6931471805599453 ? log(-expm1(m)) : log1p(-exp(m));
}

// Largest per-token mean log-prob ORPO accepts: log-odds diverge at m = 0 (p = 1).
#define ORPO_MAX_MEAN (-1e-12)

// ============================================================================ names

static const char *pref_names[] = {"sigmoid", "ipo", "hinge", "simpo", "orpo"};
static const char *div_names[] = {"forward", "reverse", "jsd"};
static const char *topk_names[] = {"tail", "renorm"};

static int parse_name(const char *name, const char **names, int n, int *out, const char *what,
                      kd_error *err) {
    for (int i = 0; name && i < n; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = i;
            return KD_OK;
        }
    char list[128] = "";
    for (int i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < n) strncat(list, "|", sizeof list - strlen(list) - 1);
    }
    return kd_fail(err, KD_EINPUT, "%s: expected one of %s, found '%s'", what, list,
                   name ? name : "(null)");
}

int kd_losses_parse_pref_type(const char *name, kd_pref_type *type, kd_error *err) {
    int v = 0, rc = parse_name(name, pref_names, 5, &v, "preference loss type", err);
    if (rc == KD_OK) *type = (kd_pref_type)v;
    return rc;
}

int kd_losses_parse_divergence(const char *name, kd_divergence *div, kd_error *err) {
    int v = 0, rc = parse_name(name, div_names, 3, &v, "distillation divergence", err);
    if (rc == KD_OK) *div = (kd_divergence)v;
    return rc;
}

int kd_losses_parse_topk_mode(const char *name, kd_topk_mode *mode, kd_error *err) {
    int v = 0, rc = parse_name(name, topk_names, 2, &v, "top-K teacher mode", err);
    if (rc == KD_OK) *mode = (kd_topk_mode)v;
    return rc;
}

const char *kd_losses_pref_type_name(kd_pref_type type) {
    return (unsigned)type < 5 ? pref_names[type] : "?";
}

// ============================================================================ checks

int kd_losses_check_distill(kd_divergence div, double beta, double tau, kd_error *err) {
    if (!(tau > 0.0) || !isfinite(tau))
        return kd_fail(err, KD_EINPUT, "temperature: expected a finite value > 0, found %g", tau);
    if ((unsigned)div > KD_DIV_JSD)
        return kd_fail(err, KD_EINPUT, "divergence: expected 0..2, found %d", (int)div);
    if (div == KD_DIV_JSD && !(beta >= 0.0 && beta <= 1.0))
        return kd_fail(err, KD_EINPUT, "beta: expected a value in [0, 1] for jsd, found %g", beta);
    return KD_OK;
}

int kd_losses_check_pref(const kd_pref_config *cfg, kd_error *err) {
    if ((unsigned)cfg->type > KD_PREF_ORPO)
        return kd_fail(err, KD_EINPUT, "loss.type: expected 0..4, found %d", (int)cfg->type);
    if (!(cfg->beta > 0.0) || !isfinite(cfg->beta))
        return kd_fail(err, KD_EINPUT, "loss.beta: expected a finite value > 0, found %g",
                       cfg->beta);
    double eps = cfg->label_smoothing;
    if (!(eps >= 0.0 && eps < 0.5))
        return kd_fail(err, KD_EINPUT,
                       "loss.label_smoothing: expected a value in [0, 0.5), found %g", eps);
    if (eps != 0.0 && cfg->type != KD_PREF_SIGMOID && cfg->type != KD_PREF_SIMPO)
        return kd_fail(err, KD_EINPUT,
                       "loss.label_smoothing: expected 0 for loss type %s (only sigmoid and simpo "
                       "smooth labels), found %g",
                       kd_losses_pref_type_name(cfg->type), eps);
    if (!isfinite(cfg->gamma))
        return kd_fail(err, KD_EINPUT, "loss.gamma: expected a finite value, found %g", cfg->gamma);
    if (!(cfg->rpo_alpha >= 0.0) || !isfinite(cfg->rpo_alpha))
        return kd_fail(err, KD_EINPUT, "loss.rpo_alpha: expected a finite value >= 0, found %g",
                       cfg->rpo_alpha);
    return KD_OK;
}

int kd_losses_check_topk(const int32_t *ids, const float *lp, int N, int K, int V,
                         const char *where, kd_error *err) {
    // seen[id] = 1 + the slot of the current row that holds id: distinctness in O(K) per row
    // (K may be thousands); the row's ids are cleared again before the next row
    int *seen = kd_calloc((size_t)(V > 0 ? V : 1), sizeof *seen);
    int rc = KD_OK;
    for (int i = 0; i < N && !rc; i++) {
        const int32_t *id = ids + (size_t)i * K;
        const float *l = lp + (size_t)i * K;
        double mx = -INFINITY, sum = 0.0;
        int k = 0;
        for (; k < K && !rc; k++) {
            if (id[k] < 0 || id[k] >= V)
                rc = kd_fail(err, KD_EINPUT, "%s: row %d, top-k id %d: expected in [0,%d), found %d",
                             where, i, k, V, id[k]);
            else if (seen[id[k]])
                rc = kd_fail(err, KD_EINPUT,
                             "%s: row %d: expected distinct top-k ids, found %d at slots %d and %d",
                             where, i, id[k], seen[id[k]] - 1, k);
            else if (!isfinite(l[k]) || l[k] > 1e-4f)
                rc = kd_fail(err, KD_EINPUT,
                             "%s: row %d, top-k log-prob %d: expected a finite value <= 0, found %g",
                             where, i, k, (double)l[k]);
            else
                seen[id[k]] = k + 1, mx = fmax(mx, (double)l[k]);
        }
        for (int j = 0; j < k; j++)
            if (id[j] >= 0 && id[j] < V) seen[id[j]] = 0;
        if (rc) break;
        for (int j = 0; j < K; j++) sum += exp((double)l[j] - mx);
        double lse = K ? mx + log(sum) : -INFINITY;
        if (lse > 1e-3)
            rc = kd_fail(err, KD_EINPUT,
                         "%s: row %d: expected top-k probabilities summing to <= 1, found %.6f",
                         where, i, exp(lse));
    }
    free(seen);
    return rc;
}

// ============================================================================ preference losses

// One pair. Returns the loss; fills d/d(policy sums) and rewards.
static double pref_pair(const kd_pref_config *cfg, const kd_pref_pair *p, kd_pref_out *o) {
    double b = cfg->beta, eps = cfg->label_smoothing, loss = 0.0;
    double dc = 0.0, dr = 0.0; // d loss / d policy sums
    switch (cfg->type) {
    case KD_PREF_SIGMOID:
    case KD_PREF_HINGE: {
        // delta = (pi_c - ref_c) - (pi_r - ref_r), log-probs summed over completion tokens
        double delta = (p->logp_c - p->ref_c) - (p->logp_r - p->ref_r), z = b * delta, dz;
        if (cfg->type == KD_PREF_SIGMOID) {
            loss = -(1.0 - eps) * log_sigmoid(z) - eps * log_sigmoid(-z);
            dz = -(1.0 - eps) * sigmoid(-z) + eps * sigmoid(z);
        } else {
            loss = z < 1.0 ? 1.0 - z : 0.0;
            dz = z < 1.0 ? -1.0 : 0.0;
        }
        dc = b * dz, dr = -b * dz;
        o->reward_c = b * (p->logp_c - p->ref_c);
        o->reward_r = b * (p->logp_r - p->ref_r);
        break;
    }
    case KD_PREF_IPO: {
        // Every log-prob (policy and reference) is divided by its completion's token count.
        double ac = (p->logp_c - p->ref_c) / p->n_c, ar = (p->logp_r - p->ref_r) / p->n_r;
        double h = (ac - ar) - 1.0 / (2.0 * b);
        loss = h * h;
        dc = 2.0 * h / p->n_c, dr = -2.0 * h / p->n_r;
        o->reward_c = b * ac, o->reward_r = b * ar;
        break;
    }
    case KD_PREF_SIMPO: {
        double mc = p->logp_c / p->n_c, mr = p->logp_r / p->n_r;
        double z = b * (mc - mr) - cfg->gamma;
        loss = -(1.0 - eps) * log_sigmoid(z) - eps * log_sigmoid(-z);
        double dz = -(1.0 - eps) * sigmoid(-z) + eps * sigmoid(z);
        dc = b * dz / p->n_c, dr = -b * dz / p->n_r;
        o->reward_c = b * mc, o->reward_r = b * mr;
        break;
    }
    case KD_PREF_ORPO: {
        double mc = fmin(p->logp_c / p->n_c, ORPO_MAX_MEAN);
        double mr = fmin(p->logp_r / p->n_r, ORPO_MAX_MEAN);
        // log odds(m) = m - log(1 - e^m); d/dm = 1 / (1 - e^m) = -1 / expm1(m)
        double lo = (mc - log1mexp(mc)) - (mr - log1mexp(mr));
        double s = sigmoid(-lo); // -d log sigmoid(lo) / d lo
        loss = -mc - b * log_sigmoid(lo);
        double dmc = -1.0 - b * s * (-1.0 / expm1(mc)), dmr = b * s * (-1.0 / expm1(mr));
        dc = dmc / p->n_c, dr = dmr / p->n_r;
        o->reward_c = b * mc, o->reward_r = b * mr;
        break;
    }
    }
    if (cfg->rpo_alpha > 0.0) { // RPO: the chosen completion's mean per-token NLL, -pi_c / n_c
        loss += cfg->rpo_alpha * (-p->logp_c / p->n_c);
        dc -= cfg->rpo_alpha / p->n_c;
    }
    o->loss = loss;
    o->dlogp_c = dc, o->dlogp_r = dr;
    o->dmean_c = dc * p->n_c, o->dmean_r = dr * p->n_r;
    return loss;
}

int kd_losses_pref(const kd_pref_config *cfg, const kd_pref_pair *pairs, int n, kd_pref_out *out,
                   kd_pref_metrics *metrics, kd_error *err) {
    int rc = kd_losses_check_pref(cfg, err);
    if (rc) return rc;
    int need_counts =
        cfg->type == KD_PREF_IPO || cfg->type == KD_PREF_SIMPO || cfg->type == KD_PREF_ORPO;
    for (int i = 0; i < n; i++)
        if ((need_counts && (pairs[i].n_c <= 0 || pairs[i].n_r <= 0)) ||
            (cfg->rpo_alpha > 0.0 && pairs[i].n_c <= 0))
            return kd_fail(err, KD_EINPUT,
                           "preference pair %d: expected completion token counts > 0 for loss "
                           "type %s%s, found chosen %d, rejected %d",
                           i, kd_losses_pref_type_name(cfg->type),
                           cfg->rpo_alpha > 0.0 ? " with rpo_alpha" : "", pairs[i].n_c, pairs[i].n_r);
    kd_pref_metrics m = {.n = n};
    for (int i = 0; i < n; i++) {
        kd_pref_out o;
        pref_pair(cfg, &pairs[i], &o);
        if (out) out[i] = o;
        m.loss += o.loss;
        m.reward_c += o.reward_c;
        m.reward_r += o.reward_r;
        m.accuracy += o.reward_c > o.reward_r ? 1.0 : 0.0;
        m.margin += o.reward_c - o.reward_r;
        m.logp_c += pairs[i].logp_c;
        m.logp_r += pairs[i].logp_r;
    }
    if (n > 0) {
        m.loss /= n, m.reward_c /= n, m.reward_r /= n, m.accuracy /= n, m.margin /= n;
        m.logp_c /= n, m.logp_r /= n;
    }
    if (metrics) *metrics = m;
    return KD_OK;
}

// ============================================================================ KD normalisation

float kd_losses_kd_norm(kd_kd_norm norm, const int32_t *targets, const float *w, int n, int T,
                        int G, float dscale, float *wk) {
    for (int r = 0; r < n; r++) {
        const int32_t *tg = targets + (size_t)r * T;
        const float *wr = w + (size_t)r * T;
        float *o = wk + (size_t)r * T;
        double rw = 0.0; // the row's target weight
        for (int t = 0; t < T; t++) rw += tg[t] >= 0 ? (double)wr[t] : 0.0;
        double f = norm == KD_NORM_SEQUENCE ? (rw > 0.0 ? 1.0 / rw : 0.0) : 1.0;
        for (int t = 0; t < T; t++) o[t] = tg[t] >= 0 ? (float)(wr[t] * f) : 0.0f;
    }
    return norm == KD_NORM_TOKEN ? dscale : (float)(1.0 / G);
}

// ============================================================================ segment sums

void kd_losses_segment_sum(double *sums, int *counts, const float *logp, const int32_t *seq, int N,
                           int nseq) {
    for (int s = 0; s < nseq; s++) {
        sums[s] = 0.0;
        if (counts) counts[s] = 0;
    }
    for (int i = 0; i < N; i++) {
        int s = seq[i];
        if (s < 0) continue;
        KD_ASSERT(s < nseq); // the stage builds seq from its own batch layout
        sums[s] += (double)logp[i];
        if (counts) counts[s]++;
    }
}

void kd_losses_segment_scatter(float *dlogp, const double *dsums, const int32_t *seq, int N) {
    for (int i = 0; i < N; i++) dlogp[i] = seq[i] < 0 ? 0.0f : (float)dsums[seq[i]];
}
