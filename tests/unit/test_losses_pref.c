// test_losses_pref.c: the host-side preference losses (runtime/train/losses.c) against naive
// double formulas written from the published definitions, their gradients against central
// finite differences, a few values known in closed form, the reward metrics, the error
// paths (bad settings, zero token counts, unknown names, bad top-K caches) and the segment
// sums that connect per-token log-probs to per-sequence sums.
#include <string.h>

#include "runtime/train/losses.h"
#include "unit/test_kernels_util.h"

// ============================================================================ naive reference

static double naive_logsig(double x) {
    return -log1p(exp(-x)); // |x| stays below ~30 in these tests: no overflow
}

static double naive_logodds(double m) {
    double p = exp(m);
    return log(p / (1.0 - p));
}

// Loss of one pair as a function of the policy sums (c, r); everything else from pr.
static double naive_base(const kd_pref_config *cfg, const kd_pref_pair *pr, double c, double r) {
    double b = cfg->beta, e = cfg->label_smoothing;
    double delta = (c - pr->ref_c) - (r - pr->ref_r);
    double mc = c / pr->n_c, mr = r / pr->n_r;
    switch (cfg->type) {
    case KD_PREF_SIGMOID:
        return -(1 - e) * naive_logsig(b * delta) - e * naive_logsig(-b * delta);
    case KD_PREF_HINGE:
        return fmax(0.0, 1.0 - b * delta);
    case KD_PREF_IPO: {
        double d = (mc - pr->ref_c / pr->n_c) - (mr - pr->ref_r / pr->n_r) - 1.0 / (2.0 * b);
        return d * d;
    }
    case KD_PREF_SIMPO: {
        double z = b * (mc - mr) - cfg->gamma;
        return -(1 - e) * naive_logsig(z) - e * naive_logsig(-z);
    }
    case KD_PREF_ORPO:
        return -mc - b * naive_logsig(naive_logodds(mc) - naive_logodds(mr));
    }
    return NAN;
}

// ... plus RPO's alpha * (chosen mean per-token NLL) = alpha * (-c / n_c).
static double naive_loss(const kd_pref_config *cfg, const kd_pref_pair *pr, double c, double r) {
    return naive_base(cfg, pr, c, r) + cfg->rpo_alpha * (-c / pr->n_c);
}

static void random_pairs(kd_pref_pair *p, int n) {
    for (int i = 0; i < n; i++) {
        p[i].n_c = 3 + (int)(rng_uniform() * 30), p[i].n_r = 3 + (int)(rng_uniform() * 30);
        p[i].logp_c = -p[i].n_c * (0.3 + 2.0 * rng_uniform());
        p[i].logp_r = -p[i].n_r * (0.3 + 2.0 * rng_uniform());
        p[i].ref_c = p[i].logp_c + 2.0 * rng_normal();
        p[i].ref_r = p[i].logp_r + 2.0 * rng_normal();
    }
}

// ============================================================================ tests

// Loss vs naive formula (rel 1e-12: same double maths, different but exact rewritings);
// d loss / d sums vs central differences (h = 1e-5 on sums of size ~10: truncation
// ~h^2 * |f'''| < 1e-9, cancellation ~1e-16 / h = 1e-11; tol 1e-7 rel + 1e-9 abs).
static void test_losses_vs_naive(void) {
    const double betas[] = {0.1, 0.5, 2.0};
    enum { NP = 7 };
    kd_pref_pair p[NP];
    kd_pref_out o[NP];
    kd_pref_metrics m;
    char what[160];
    for (int type = 0; type <= KD_PREF_ORPO; type++)
        for (int bi = 0; bi < 3; bi++)
            for (int smooth = 0; smooth < 3; smooth++) { // 2: RPO (rpo_alpha 0.7)
                if (smooth == 1 && type != KD_PREF_SIGMOID && type != KD_PREF_SIMPO) continue;
                kd_pref_config cfg = {.type = (kd_pref_type)type,
                                      .beta = betas[bi],
                                      .label_smoothing = smooth == 1 ? 0.2 : 0.0,
                                      .gamma = 0.5,
                                      .rpo_alpha = smooth == 2 ? 0.7 : 0.0};
                random_pairs(p, NP);
                kd_error err = {0};
                int rc = kd_losses_pref(&cfg, p, NP, o, &m, &err);
                snprintf(what, sizeof what, "%s beta=%g eps=%g returns OK (%s)",
                         kd_losses_pref_type_name(cfg.type), cfg.beta, cfg.label_smoothing,
                         err.msg);
                check(rc == KD_OK, what, rc, KD_OK, 0);
                double mloss = 0, macc = 0;
                for (int i = 0; i < NP; i++) {
                    double want = naive_loss(&cfg, &p[i], p[i].logp_c, p[i].logp_r), h = 1e-5;
                    snprintf(what, sizeof what, "%s beta=%g eps=%g pair %d loss",
                             kd_losses_pref_type_name(cfg.type), cfg.beta, cfg.label_smoothing, i);
                    check(fabs(o[i].loss - want) <= 1e-12 * fmax(1.0, fabs(want)), what, o[i].loss,
                          want, 1e-12);
                    double fdc = (naive_loss(&cfg, &p[i], p[i].logp_c + h, p[i].logp_r) -
                                  naive_loss(&cfg, &p[i], p[i].logp_c - h, p[i].logp_r)) /
                                 (2 * h);
                    double fdr = (naive_loss(&cfg, &p[i], p[i].logp_c, p[i].logp_r + h) -
                                  naive_loss(&cfg, &p[i], p[i].logp_c, p[i].logp_r - h)) /
                                 (2 * h);
                    double tc = 1e-7 * fabs(fdc) + 1e-9, tr = 1e-7 * fabs(fdr) + 1e-9;
                    strcat(what, " d/dlogp_c");
                    check(fabs(o[i].dlogp_c - fdc) <= tc, what, o[i].dlogp_c, fdc, tc);
                    what[strlen(what) - 1] = 'r';
                    check(fabs(o[i].dlogp_r - fdr) <= tr, what, o[i].dlogp_r, fdr, tr);
                    check(o[i].dmean_c == o[i].dlogp_c * p[i].n_c, "dmean_c = dlogp_c * n_c",
                          o[i].dmean_c, o[i].dlogp_c * p[i].n_c, 0);
                    // rewards: b * (pi - ref) on the quantities the loss uses
                    double rc_want = cfg.beta * (p[i].logp_c - p[i].ref_c);
                    if (type == KD_PREF_IPO) rc_want /= p[i].n_c;
                    if (type == KD_PREF_SIMPO || type == KD_PREF_ORPO)
                        rc_want = cfg.beta * p[i].logp_c / p[i].n_c;
                    check(fabs(o[i].reward_c - rc_want) <= 1e-12 * fabs(rc_want), "reward_c",
                          o[i].reward_c, rc_want, 1e-12);
                    mloss += want / NP;
                    macc += (o[i].reward_c > o[i].reward_r) / (double)NP;
                }
                check(m.n == NP && fabs(m.loss - mloss) <= 1e-12 * fmax(1.0, fabs(mloss)),
                      "metrics.loss is the mean loss", m.loss, mloss, 1e-12);
                check(fabs(m.accuracy - macc) <= 1e-12, "metrics.accuracy", m.accuracy, macc,
                      1e-12);
                check(fabs(m.margin - (m.reward_c - m.reward_r)) <= 1e-12,
                      "metrics.margin = mean chosen - mean rejected reward", m.margin,
                      m.reward_c - m.reward_r, 1e-12);
            }
}

// Closed forms at delta = 0: sigmoid log 2 with d/dlogp_c = -b/2; hinge 1 with -b;
// ipo 1/(4 b^2) with -1/(b n_c); and a large margin does not overflow.
static void test_known_values(void) {
    kd_pref_pair p = {.logp_c = -10, .logp_r = -20, .ref_c = -10, .ref_r = -20, .n_c = 4, .n_r = 5};
    kd_pref_out o;
    kd_pref_config c = {.type = KD_PREF_SIGMOID, .beta = 0.1};
    kd_losses_pref(&c, &p, 1, &o, NULL, NULL);
    check(fabs(o.loss - log(2.0)) < 1e-15, "sigmoid at delta 0 is log 2", o.loss, log(2.0), 1e-15);
    check(fabs(o.dlogp_c + 0.05) < 1e-15, "sigmoid d/dlogp_c at 0 is -b/2", o.dlogp_c, -0.05,
          1e-15);
    c.type = KD_PREF_HINGE;
    kd_losses_pref(&c, &p, 1, &o, NULL, NULL);
    check(o.loss == 1.0 && o.dlogp_c == -0.1, "hinge at delta 0 is 1, slope -b", o.loss, 1.0, 0);
    c.type = KD_PREF_IPO;
    kd_losses_pref(&c, &p, 1, &o, NULL, NULL);
    check(fabs(o.loss - 25.0) < 1e-12, "ipo at delta 0 is 1/(4 b^2)", o.loss, 25.0, 1e-12);
    check(fabs(o.dlogp_c + 10.0 / 4) < 1e-12, "ipo d/dlogp_c at 0 is -1/(b n_c)", o.dlogp_c, -2.5,
          1e-12);
    // RPO at delta 0: log 2 + alpha * 10/4 (chosen mean NLL), slope -b/2 - alpha/n_c
    c = (kd_pref_config){.type = KD_PREF_SIGMOID, .beta = 0.1, .rpo_alpha = 1.0};
    kd_losses_pref(&c, &p, 1, &o, NULL, NULL);
    check(fabs(o.loss - (log(2.0) + 2.5)) < 1e-15, "rpo at delta 0 is log 2 + alpha * 2.5", o.loss,
          log(2.0) + 2.5, 1e-15);
    check(fabs(o.dlogp_c + 0.05 + 0.25) < 1e-15, "rpo d/dlogp_c at 0 is -b/2 - alpha/n_c",
          o.dlogp_c, -0.3, 1e-15);
    c.rpo_alpha = 0.0;
    c.type = KD_PREF_SIGMOID;
    p.logp_c = 5000; // delta * beta = 500: log sigmoid must not overflow
    kd_losses_pref(&c, &p, 1, &o, NULL, NULL);
    check(isfinite(o.loss) && o.loss >= 0 && o.loss < 1e-200, "sigmoid at a huge margin ~ 0",
          o.loss, 0, 1e-200);
    p.logp_c = -5000;
    kd_losses_pref(&c, &p, 1, &o, NULL, NULL);
    check(fabs(o.loss - 499.0) < 1e-9, "sigmoid at a huge negative margin = -b delta", o.loss,
          499.0, 1e-9);
}

static int msg_has(const kd_error *e, const char *s) {
    return strstr(e->msg, s) != NULL;
}

static void test_errors(void) {
    kd_pref_pair p[2] = {{-5, -6, -5, -6, 3, 3}, {-5, -6, -5, -6, 0, 3}};
    kd_error e = {0};
    kd_pref_config c = {.type = KD_PREF_IPO, .beta = 0.1};
    int rc = kd_losses_pref(&c, p, 2, NULL, NULL, &e);
    check(rc == KD_EINPUT && msg_has(&e, "pair 1"), "ipo with a zero token count is KD_EINPUT", rc,
          KD_EINPUT, 0);
    c.type = KD_PREF_SIGMOID; // sums only: zero counts are fine
    kd_error_clear(&e);
    rc = kd_losses_pref(&c, p, 2, NULL, NULL, &e);
    check(rc == KD_OK, "sigmoid does not need token counts", rc, KD_OK, 0);
    c.rpo_alpha = 1.0; // ... but RPO's chosen mean NLL does
    kd_error_clear(&e);
    rc = kd_losses_pref(&c, p, 2, NULL, NULL, &e);
    check(rc == KD_EINPUT && msg_has(&e, "pair 1") && msg_has(&e, "rpo_alpha"),
          "rpo with a zero chosen count is KD_EINPUT", rc, KD_EINPUT, 0);
    c.rpo_alpha = -0.5;
    kd_error_clear(&e);
    rc = kd_losses_pref(&c, p, 1, NULL, NULL, &e);
    check(rc == KD_EINPUT && msg_has(&e, "loss.rpo_alpha"), "negative rpo_alpha is rejected", rc,
          KD_EINPUT, 0);
    c.rpo_alpha = 0.0;
    c.beta = 0.0;
    kd_error_clear(&e);
    rc = kd_losses_pref(&c, p, 2, NULL, NULL, &e);
    check(rc == KD_EINPUT && msg_has(&e, "loss.beta"), "beta 0 is rejected", rc, KD_EINPUT, 0);
    c = (kd_pref_config){.type = KD_PREF_HINGE, .beta = 0.1, .label_smoothing = 0.1};
    kd_error_clear(&e);
    rc = kd_losses_pref(&c, p, 1, NULL, NULL, &e);
    check(rc == KD_EINPUT && msg_has(&e, "label_smoothing"), "hinge with smoothing is rejected", rc,
          KD_EINPUT, 0);

    kd_pref_type t;
    kd_divergence d;
    kd_topk_mode mo;
    kd_error_clear(&e);
    rc = kd_losses_parse_pref_type("dpo", &t, &e);
    check(rc == KD_EINPUT && msg_has(&e, "sigmoid|ipo|hinge|simpo|orpo") && msg_has(&e, "'dpo'"),
          "unknown loss type lists the accepted names", rc, KD_EINPUT, 0);
    check(kd_losses_parse_pref_type("orpo", &t, NULL) == KD_OK && t == KD_PREF_ORPO, "parse orpo",
          t, KD_PREF_ORPO, 0);
    check(kd_losses_parse_divergence("jsd", &d, NULL) == KD_OK && d == KD_DIV_JSD, "parse jsd", d,
          KD_DIV_JSD, 0);
    check(kd_losses_parse_topk_mode("renorm", &mo, NULL) == KD_OK && mo == KD_TOPK_RENORM,
          "parse renorm", mo, KD_TOPK_RENORM, 0);
    check(kd_losses_check_distill(KD_DIV_JSD, 1.5, 1.0, NULL) == KD_EINPUT, "jsd beta 1.5", 0, 0,
          0);
    check(kd_losses_check_distill(KD_DIV_FORWARD_KL, 0.0, 0.0, NULL) == KD_EINPUT, "tau 0", 0, 0,
          0);
    check(kd_losses_check_distill(KD_DIV_JSD, 1.0, 0.9, NULL) == KD_OK, "jsd beta 1 tau 0.9", 0, 0,
          0);

    // top-K caches: a good one, then one defect each
    int32_t ids[6] = {4, 1, 7, 0, 2, 3};
    float lp[6] = {-0.5f, -1.5f, -3.0f, -0.5f, -2.0f, -2.5f};
    check(kd_losses_check_topk(ids, lp, 2, 3, 8, "x.h5", NULL) == KD_OK, "good top-k cache", 0, 0,
          0);
    int32_t same[6] = {4, 1, 7, 4, 1, 7}; // the same ids in two rows are fine
    check(kd_losses_check_topk(same, lp, 2, 3, 8, "x.h5", NULL) == KD_OK,
          "same top-k ids in different rows", 0, 0, 0);
    ids[5] = 0;
    kd_error_clear(&e);
    rc = kd_losses_check_topk(ids, lp, 2, 3, 8, "x.h5", &e);
    check(rc == KD_EINPUT && msg_has(&e, "x.h5: row 1") && msg_has(&e, "distinct"),
          "duplicate top-k id", rc, KD_EINPUT, 0);
    ids[5] = 8;
    kd_error_clear(&e);
    rc = kd_losses_check_topk(ids, lp, 2, 3, 8, "x.h5", &e);
    check(rc == KD_EINPUT && msg_has(&e, "[0,8)"), "top-k id out of range", rc, KD_EINPUT, 0);
    ids[5] = 3, lp[3] = -0.01f;
    kd_error_clear(&e);
    rc = kd_losses_check_topk(ids, lp, 2, 3, 8, "x.h5", &e);
    check(rc == KD_EINPUT && msg_has(&e, "summing to <= 1"), "top-k mass above 1", rc, KD_EINPUT,
          0);
}

static void test_segments(void) {
    float logp[7] = {-1, -2, -3, -4, -5, -6, -7};
    int32_t seq[7] = {-1, 0, 0, 2, -1, 2, 2};
    double sums[3], ds[3] = {0.5, 9.0, -2.0};
    int cnt[3];
    kd_losses_segment_sum(sums, cnt, logp, seq, 7, 3);
    check(sums[0] == -5 && sums[1] == 0 && sums[2] == -17, "segment sums", sums[2], -17, 0);
    check(cnt[0] == 2 && cnt[1] == 0 && cnt[2] == 3, "segment counts", cnt[2], 3, 0);
    float d[7];
    kd_losses_segment_scatter(d, ds, seq, 7);
    check(d[0] == 0 && d[1] == 0.5f && d[2] == 0.5f && d[3] == -2 && d[4] == 0 && d[6] == -2,
          "segment scatter", d[3], -2, 0);
}

int main(void) {
    rng_seed(7);
    test_losses_vs_naive();
    test_known_values();
    test_errors();
    test_segments();
    return check_done("test_losses_pref");
}
