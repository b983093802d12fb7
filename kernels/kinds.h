// kinds.h: the enums that name a loss variant. They are shared by the kernels (which
// implement them) and the recipe (which names them), so they live apart from the op
// table: the configuration layer includes this header and nothing else of kernels/.
#pragma once

// Divergence of the full-vocabulary distillation loss (distill_full; docs/losses.md).
typedef enum {
    KD_DIV_FORWARD_KL = 0, // KL(p_t || p_s): MambaInLlama's loss
    KD_DIV_REVERSE_KL = 1, // KL(p_s || p_t)
    KD_DIV_JSD = 2,        // generalized JSD_beta of TRL's GKD
} kd_divergence;

// Preference loss of the dpo stage (kd_losses_pref; docs/losses.md). Host-side losses,
// but named here beside the other loss variants so that the recipe and the loss share it.
typedef enum {
    KD_PREF_SIGMOID = 0, // DPO: -(1-eps) log s(b D) - eps log s(-b D)
    KD_PREF_IPO = 1,     // (D_avg - 1/(2b))^2, log-probs averaged per token
    KD_PREF_HINGE = 2,   // relu(1 - b D)
    KD_PREF_SIMPO = 3,   // -(1-eps) log s(z) - eps log s(-z), z = b (m_c - m_r) - gamma
    KD_PREF_ORPO = 4,    // -m_c + b * -log s(logodds(m_c) - logodds(m_r)); b is ORPO's lambda
} kd_pref_type;

// Arithmetic of the backend's matrix products (run.precision; kd_ops.set_precision).
typedef enum {
    KD_PREC_FP32 = 0, // every product in fp32
    KD_PREC_BF16 = 1, // operands rounded to bf16, fp32 accumulation and fp32 results
} kd_precision;

// Support of the cached top-K teacher (distill_topk; docs/losses.md).
typedef enum {
    KD_TOPK_TAIL = 0,   // the K ids plus one bucket holding the rest of the mass (default)
    KD_TOPK_RENORM = 1, // both sides restricted to the K ids and renormalised
} kd_topk_mode;
