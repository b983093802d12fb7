// losses.h: host-side loss helpers of the kd and dpo stages: the preference losses
// (DPO sigmoid, IPO, hinge, SimPO, ORPO; TRL conventions) over per-sequence log-prob sums,
// with their gradients and TRL's reward metrics; the segment sums that turn per-token
// log-probs (kd_ops.token_logp_fwd) into those sums and gradients back into per-token
// ones; name parsing and the checks of loss settings and cached top-K data. All O(batch)
// host doubles: no backend memory is touched. Formulas: docs/losses.md.
#pragma once
#include <stdint.h>

#include "kernels/ops.h"
#include "runtime/base/common.h"
#include "runtime/config/recipe.h"

// kd_pref_type (sigmoid, ipo, hinge, simpo, orpo) is in kernels/kinds.h, shared with the recipe.
typedef struct {
    kd_pref_type type;
    double beta;            // > 0 (TRL default 0.1); ORPO's lambda
    double label_smoothing; // sigmoid and simpo only, in [0, 0.5)
    double gamma;           // simpo target margin (TRL simpo_gamma, default 0.5)
    double rpo_alpha;       // RPO: + alpha * chosen per-token NLL (TRL rpo_alpha; 0 = off)
} kd_pref_config;

// One preference pair. Sums run over completion tokens only (prompt and pad masked).
// n_c > 0 is also needed by any type when rpo_alpha > 0.
typedef struct {
    double logp_c, logp_r; // policy log-prob sums of the chosen / rejected completion
    double ref_c, ref_r;   // reference model sums (unused by simpo and orpo)
    int n_c, n_r;          // completion token counts (> 0 for ipo, simpo, orpo)
} kd_pref_pair;

// Per-pair results. dmean_* = dlogp_* * n_*: the same gradient w.r.t. the per-token means.
typedef struct {
    double loss;
    double dlogp_c, dlogp_r; // d loss / d policy sums (pass to kd_losses_segment_scatter)
    double dmean_c, dmean_r; // d loss / d policy means
    double reward_c, reward_r;
} kd_pref_out;

// Means over the pairs of one call (n of them); weight by n to combine across ranks.
typedef struct {
    int n;
    double loss, reward_c, reward_r;
    double accuracy; // fraction of pairs with reward_c > reward_r
    double margin;   // mean(reward_c - reward_r)
    double logp_c, logp_r;
} kd_pref_metrics;

// Losses, gradients and rewards of n pairs. out (n) and metrics may be NULL. Returns
// KD_OK, or KD_EINPUT (bad config, or a pair with a zero count where one is needed).
int kd_losses_pref(const kd_pref_config *cfg, const kd_pref_pair *pairs, int n, kd_pref_out *out,
                   kd_pref_metrics *metrics, kd_error *err);
int kd_losses_check_pref(const kd_pref_config *cfg, kd_error *err);

// Names as recipes spell them: sigmoid|ipo|hinge|simpo|orpo, forward|reverse|jsd,
// tail|renorm. Unknown names are KD_EINPUT listing the accepted ones.
int kd_losses_parse_pref_type(const char *name, kd_pref_type *type, kd_error *err);
int kd_losses_parse_divergence(const char *name, kd_divergence *div, kd_error *err);
int kd_losses_parse_topk_mode(const char *name, kd_topk_mode *mode, kd_error *err);
const char *kd_losses_pref_type_name(kd_pref_type type);

// distill_full / distill_topk settings: tau > 0 and finite, beta in [0,1] for jsd.
int kd_losses_check_distill(kd_divergence div, double beta, double tau, kd_error *err);
// Cached top-K rows, ids and lp (N,K): ids in [0,V) and distinct per row, lp finite and
// <= 0, total mass exp(logsumexp(lp)) <= 1 + 1e-3. `where` names the data (file name).
int kd_losses_check_topk(const int32_t *ids, const float *lp, int N, int K, int V,
                         const char *where, kd_error *err);

// KD normalisation (recipe loss.normalize) of n rows of T tokens, G rows in the global batch:
// fills wk (n*T), the per-token weights the divergence kernel gets, and returns the factor
// that replaces the trainer's 1/(global target weight) for that term. token: wk = w, returns
// dscale. batchmean: wk = w, returns 1/G (sum over target tokens / rows: torch's kl_div
// reduction 'batchmean' on (rows, T, V), MambaInLlama's KD). sequence: wk = w / (the row's
// target weight; 0 for a row without targets), returns 1/G (mean over rows of each row's
// per-token mean). A position counts only where targets >= 0, as in the trainer.
float kd_losses_kd_norm(kd_kd_norm norm, const int32_t *targets, const float *w, int n, int T,
                        int G, float dscale, float *wk);

// Segment sums: seq (N) gives each token's sequence index in [0,nseq) or -1 (not part of
// any completion). sums (nseq) = sum of logp over each sequence, counts (nseq) its tokens
// (counts may be NULL). Both are overwritten.
void kd_losses_segment_sum(double *sums, int *counts, const float *logp, const int32_t *seq, int N,
                           int nseq);
// The backward of the sum: dlogp (N) = dsums[seq[i]], 0 where seq[i] < 0 (overwritten).
void kd_losses_segment_scatter(float *dlogp, const double *dsums, const int32_t *seq, int N);
