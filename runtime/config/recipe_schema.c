// recipe_schema.c: the recipe schema tables: every YAML key of a recipe, its type, struct
// field, default, range and (for stage keys) the stage kinds it applies to. docs/recipe.md
// documents the same keys; a new key is one line here plus its field in recipe.h.
// Defaults marked "derived" are placeholders filled after the walk by runtime/config/recipe.c.
#include <math.h>
#include <stddef.h>

#include "runtime/config/recipe_schema.h"

#define INF HUGE_VAL
#define BIG 1e9
#define F(k, t, st, fld, ...)                                                                      \
    { .key = k, .type = t, .off = offsetof(st, fld), __VA_ARGS__ }
#define COUNT(st, fld) .count_off = offsetof(st, fld)
#define KIND(x) (1u << KD_STAGE_##x)
#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

const char *const kd_stage_kind_names[] = {"pretrain", "init", "align",    "kd", "sft",
                                           "dpo",      "eval", "generate", NULL};
// YAML key of each kd_from_kind, indexed by value
const char *const kd_from_kind_keys[] = {"random", "stage", "checkpoint", "hf", "prev", NULL};
static const char *const schedule_names[] = {"cosine", "linear", "constant", NULL};
const char *kd_schedule_name(kd_schedule s) { return schedule_names[s]; }
static const char *const phase_names[] = {"matrix", "hidden", NULL};
static const char *const conv_init_names[] = {"identity", "default", NULL};
static const char *const divergence_names[] = {"forward", "reverse", "jsd", NULL};
static const char *const normalize_names[] = {"token", "batchmean", "sequence", NULL};
static const char *const dpo_names[] = {"sigmoid", "ipo", "hinge", "simpo", "orpo", NULL};
static const char *const backend_names[] = {"auto", "cpu", "cuda", NULL};
static const char *const precision_names[] = {"fp32", "bf16", NULL};
// the order of kd_rope_type (runtime/model/rope.h)
static const char *const rope_type_names[] = {"default", "linear", "dynamic", "llama3", NULL};

// ---------------------------------------------------------------------------- model
static const kd_field arch_fields[] = {
    F("vocab_size", KD_F_INT, kd_arch, vocab_size, .def = 259, .lo = 2, .hi = BIG),
    F("d_model", KD_F_INT, kd_arch, d_model, .def = 128, .lo = 1, .hi = 1 << 20),
    F("n_layers", KD_F_INT, kd_arch, n_layers, .def = 4, .lo = 1, .hi = KD_MAX_LAYERS),
    F("n_heads", KD_F_INT, kd_arch, n_heads, .def = 4, .lo = 1, .hi = 1 << 16),
    F("n_kv_heads", KD_F_INT, kd_arch, n_kv_heads, .def = 0 /* derived */, .lo = 1, .hi = 1 << 16),
    F("head_dim", KD_F_INT, kd_arch, head_dim, .def = 0 /* derived */, .lo = 1, .hi = 1 << 16),
    F("ffn_dim", KD_F_INT, kd_arch, ffn_dim, .def = 0 /* derived */, .lo = 1, .hi = 1 << 24),
    F("rope_theta", KD_F_FLOAT, kd_arch, rope_theta, .def = 10000, .lo = 0, .hi = INF,
      .flags = KD_F_LO_OPEN),
    F("norm_eps", KD_F_FLOAT, kd_arch, norm_eps, .def = 1e-5, .lo = 0, .hi = 1,
      .flags = KD_F_LO_OPEN),
    F("tie_embeddings", KD_F_BOOL, kd_arch, tie_embeddings, .def = 0),
    F("init_std", KD_F_FLOAT, kd_arch, init_std, .def = 0.02, .lo = 0, .hi = INF,
      .flags = KD_F_LO_OPEN),
    F("rope_type", KD_F_ENUM, kd_arch, rope_type, .def = 0, .names = rope_type_names),
    F("rope_factor", KD_F_FLOAT, kd_arch, rope_factor, .def = 1, .lo = 0, .hi = INF,
      .flags = KD_F_LO_OPEN),
    F("rope_low_freq_factor", KD_F_FLOAT, kd_arch, rope_low_freq_factor, .def = 1, .lo = 0,
      .hi = INF, .flags = KD_F_LO_OPEN),
    F("rope_high_freq_factor", KD_F_FLOAT, kd_arch, rope_high_freq_factor, .def = 4, .lo = 0,
      .hi = INF, .flags = KD_F_LO_OPEN),
    F("rope_original_max_position_embeddings", KD_F_INT, kd_arch, rope_original_max_pos,
      .def = 8192, .lo = 1, .hi = 1 << 30),
    F("max_position_embeddings", KD_F_INT, kd_arch, max_position_embeddings, .def = 0, .lo = 0,
      .hi = 1 << 30),
};
static const kd_schema arch_schema = {arch_fields, N(arch_fields), NULL, 0};

static const kd_field hybrid_fields[] = {
    F("ssm_layers", KD_F_INTS, kd_hybrid, ssm_layers, COUNT(kd_hybrid, n_ssm_layers),
      .cap = KD_MAX_LAYERS, .lo = 0, .hi = KD_MAX_LAYERS - 1, .flags = KD_F_UNIQUE | KD_F_HYB_SSM),
    F("attn_layers", KD_F_INTS, kd_hybrid, attn_layers, COUNT(kd_hybrid, n_attn_layers),
      .cap = KD_MAX_LAYERS, .lo = 0, .hi = KD_MAX_LAYERS - 1, .flags = KD_F_UNIQUE | KD_F_HYB_ATTN),
    F("d_state", KD_F_INT, kd_hybrid, d_state, .def = 0, .lo = 0, .hi = 1 << 12,
      .flags = KD_F_AUTO0),
    F("chunk_size", KD_F_INT, kd_hybrid, chunk_size, .def = 64, .lo = 1, .hi = 1 << 16),
    F("conv_width", KD_F_INT, kd_hybrid, conv_width, .def = 4, .lo = 1, .hi = 64),
};
static const kd_schema hybrid_schema = {hybrid_fields, N(hybrid_fields), NULL, 0};

static const kd_field model_fields[] = {
    F("from", KD_F_FROM, kd_model_spec, from, .def = KD_FROM_RANDOM, .flags = KD_F_NO_PREV),
    F("arch", KD_F_MAP, kd_model_spec, arch, .sub = &arch_schema),
    F("hybrid", KD_F_MAP, kd_model_spec, hybrid, .sub = &hybrid_schema),
    F("tokenizer", KD_F_STR, kd_model_spec, tokenizer, .cap = KD_PATH_MAX, .sdef = ""),
};
static const kd_schema model_schema = {model_fields, N(model_fields), NULL, 0};

static const kd_field teacher_fields[] = {
    F("from", KD_F_FROM, kd_model_spec, from, .flags = KD_F_REQUIRED | KD_F_NO_PREV),
    F("tokenizer", KD_F_STR, kd_model_spec, tokenizer, .cap = KD_PATH_MAX, .sdef = ""),
};
static const kd_schema teacher_schema = {teacher_fields, N(teacher_fields), NULL, 0};

// ---------------------------------------------------------------------------- stage blocks
static const kd_field batch_fields[] = {
    F("global", KD_F_INT, kd_batch, global, .def = 8, .lo = 1, .hi = BIG),
    F("micro", KD_F_INT, kd_batch, micro, .def = 0 /* derived: global */, .lo = 1, .hi = BIG),
    F("seq_len", KD_F_INT, kd_batch, seq_len, .def = 64, .lo = 1, .hi = 1 << 24),
};
static const kd_schema batch_schema = {batch_fields, N(batch_fields), NULL, 0};

static const kd_field optim_fields[] = {
    F("lr", KD_F_FLOAT, kd_optim, lr, .def = 3e-4, .lo = 0, .hi = INF, .flags = KD_F_LO_OPEN),
    F("min_lr_ratio", KD_F_FLOAT, kd_optim, min_lr_ratio, .def = 0.1, .lo = 0, .hi = 1),
    F("warmup", KD_F_INT, kd_optim, warmup, .def = 0, .lo = 0, .hi = BIG),
    F("schedule", KD_F_ENUM, kd_optim, schedule, .def = KD_SCHED_COSINE, .names = schedule_names),
    F("weight_decay", KD_F_FLOAT, kd_optim, weight_decay, .def = 0.0, .lo = 0, .hi = INF),
    F("beta1", KD_F_FLOAT, kd_optim, beta1, .def = 0.9, .lo = 0, .hi = 0.999999),
    F("beta2", KD_F_FLOAT, kd_optim, beta2, .def = 0.95, .lo = 0, .hi = 0.999999),
    F("eps", KD_F_FLOAT, kd_optim, eps, .def = 1e-8, .lo = 0, .hi = 1, .flags = KD_F_LO_OPEN),
    F("grad_clip", KD_F_FLOAT, kd_optim, grad_clip, .def = 1.0, .lo = 0, .hi = INF),
};
static const kd_schema optim_schema = {optim_fields, N(optim_fields), NULL, 0};

static const kd_field ckpt_fields[] = {
    F("every", KD_F_INT, kd_ckpt_policy, every, .def = 0, .lo = 0, .hi = BIG),
    F("keep", KD_F_INT, kd_ckpt_policy, keep, .def = 3, .lo = 2, .hi = 1000),
    F("at_end", KD_F_BOOL, kd_ckpt_policy, at_end, .def = 1),
};
static const kd_schema ckpt_schema = {ckpt_fields, N(ckpt_fields), NULL, 0};

static const kd_field kd_loss_fields[] = {
    F("kl", KD_F_FLOAT, kd_kd_loss, kl, .def = 1.0, .lo = 0, .hi = INF),
    F("ce", KD_F_FLOAT, kd_kd_loss, ce, .def = 0.0, .lo = 0, .hi = INF),
    F("temperature", KD_F_FLOAT, kd_kd_loss, temperature, .def = 1.0, .lo = 0, .hi = INF,
      .flags = KD_F_LO_OPEN),
    F("divergence", KD_F_ENUM, kd_kd_loss, divergence, .def = KD_DIV_FORWARD_KL,
      .names = divergence_names),
    F("beta", KD_F_FLOAT, kd_kd_loss, beta, .def = 0.5, .lo = 0, .hi = 1),
    F("normalize", KD_F_ENUM, kd_kd_loss, normalize, .def = KD_NORM_TOKEN, .names = normalize_names),
};
static const kd_schema kd_loss_schema = {kd_loss_fields, N(kd_loss_fields), NULL, 0};

static const kd_field pseudo_fields[] = {
    F("generate", KD_F_BOOL, kd_pseudo_labels, generate, .def = 0),
    F("prompts", KD_F_STR, kd_pseudo_labels, prompts, .cap = KD_PATH_MAX, .sdef = ""),
    F("max_new_tokens", KD_F_INT, kd_pseudo_labels, max_new_tokens, .def = 64, .lo = 1, .hi = BIG),
    F("temperature", KD_F_FLOAT, kd_pseudo_labels, temperature, .def = 0.7, .lo = 0, .hi = INF),
    F("top_p", KD_F_FLOAT, kd_pseudo_labels, top_p, .def = 0.95, .lo = 0, .hi = 1,
      .flags = KD_F_LO_OPEN),
    F("top_k", KD_F_INT, kd_pseudo_labels, top_k, .def = 0, .lo = 0, .hi = BIG),
    F("top_k_logits", KD_F_INT, kd_pseudo_labels, top_k_logits, .def = 0, .lo = 0, .hi = 1 << 16),
    F("out", KD_F_STR, kd_pseudo_labels, out, .cap = KD_PATH_MAX, .sdef = "" /* derived */),
};
static const kd_schema pseudo_schema = {pseudo_fields, N(pseudo_fields), NULL, 0};

static const kd_field dpo_loss_fields[] = {
    F("type", KD_F_ENUM, kd_dpo_loss, type, .def = KD_PREF_SIGMOID, .names = dpo_names),
    F("beta", KD_F_FLOAT, kd_dpo_loss, beta, .def = 0.1, .lo = 0, .hi = INF, .flags = KD_F_LO_OPEN),
    F("label_smoothing", KD_F_FLOAT, kd_dpo_loss, label_smoothing, .def = 0.0, .lo = 0,
      .hi = 0.49999),
    F("gamma", KD_F_FLOAT, kd_dpo_loss, gamma, .def = 0.5, .lo = 0, .hi = INF),
    F("rpo_alpha", KD_F_FLOAT, kd_dpo_loss, rpo_alpha, .def = 0.0, .lo = 0, .hi = INF),
};
static const kd_schema dpo_loss_schema = {dpo_loss_fields, N(dpo_loss_fields), NULL, 0};

// `reference: {from: ...}` fills a kd_from directly (offset 0 of the block's target)
static const kd_field reference_fields[] = {
    {.key = "from", .type = KD_F_FROM, .off = 0, .flags = KD_F_REQUIRED | KD_F_NO_PREV},
};
static const kd_schema reference_schema = {reference_fields, N(reference_fields), NULL, 0};

// ---------------------------------------------------------------------------- stage
#define S kd_stage_spec
static const kd_field stage_fields[] = {
    // every kind
    F("name", KD_F_STR, S, name, .cap = KD_NAME_MAX, .sdef = "",
      .flags = KD_F_REQUIRED | KD_F_NONEMPTY | KD_F_IDENT),
    F("kind", KD_F_ENUM, S, kind, .names = kd_stage_kind_names, .flags = KD_F_REQUIRED),
    F("from", KD_F_FROM, S, from, .def = KD_FROM_PREV),
    F("data", KD_F_STR, S, data, .cap = KD_PATH_MAX, .sdef = ""),
    F("eval_data", KD_F_STR, S, eval_data, .cap = KD_PATH_MAX, .sdef = "",
      .kinds = KIND(PRETRAIN) | KIND(SFT) | KIND(KD) | KIND(EVAL)),
    F("steps", KD_F_INT, S, steps, .def = 100, .lo = 0, .hi = BIG),
    F("log_every", KD_F_INT, S, log_every, .def = 10, .lo = 1, .hi = BIG),
    F("eval_every", KD_F_INT, S, eval_every, .def = 0, .lo = 0, .hi = BIG,
      .kinds = KIND(PRETRAIN) | KIND(SFT) | KIND(KD)),
    F("batch", KD_F_MAP, S, batch, .sub = &batch_schema),
    F("optim", KD_F_MAP, S, optim, .sub = &optim_schema),
    F("checkpoint", KD_F_MAP, S, checkpoint, .sub = &ckpt_schema),
    F("freeze", KD_F_STRS, S, freeze, COUNT(S, n_freeze), .cap = KD_MAX_GLOBS,
      .item = KD_NAME_MAX * 2, .flags = KD_F_NONEMPTY),
    F("max_bad_steps", KD_F_INT, S, max_bad_steps, .def = 5, .lo = 0, .hi = BIG),
    // init
    F("hybrid", KD_F_MAP, S, hybrid, COUNT(S, has_hybrid), .sub = &hybrid_schema,
      .kinds = KIND(INIT)),
    F("conv", KD_F_ENUM, S, init.conv, .def = KD_INIT_CONV_IDENTITY, .names = conv_init_names,
      .kinds = KIND(INIT)),
    // align
    F("phase", KD_F_ENUM, S, align.phase, .names = phase_names, .flags = KD_F_REQUIRED,
      .kinds = KIND(ALIGN)),
    F("layers", KD_F_INTS, S, align.layers, COUNT(S, align.n_layers), .cap = KD_MAX_LAYERS, .lo = 0,
      .hi = KD_MAX_LAYERS - 1, .flags = KD_F_UNIQUE, .kinds = KIND(ALIGN)),
    // kd
    F("loss", KD_F_MAP, S, kd.loss, .sub = &kd_loss_schema, .kinds = KIND(KD)),
    F("mask_prompt", KD_F_BOOL, S, kd.mask_prompt, .def = 1, .kinds = KIND(KD)),
    F("use_topk_cache", KD_F_BOOL, S, kd.use_topk_cache, .def = 1, .kinds = KIND(KD)),
    F("pseudo_labels", KD_F_MAP, S, kd.pseudo_labels, .sub = &pseudo_schema, .kinds = KIND(KD)),
    F("lmbda", KD_F_FLOAT, S, kd.lmbda, .def = 0.0, .lo = 0, .hi = 1, .kinds = KIND(KD)),
    F("onpolicy_temperature", KD_F_FLOAT, S, kd.onpolicy_temperature, .def = 0.9, .lo = 0, .hi = INF,
      .kinds = KIND(KD)),
    F("onpolicy_max_new_tokens", KD_F_INT, S, kd.onpolicy_max_new_tokens, .def = 128, .lo = 1, .hi = BIG,
      .kinds = KIND(KD)),
    // sft
    F("packing", KD_F_BOOL, S, sft.packing, .def = 1, .kinds = KIND(SFT)),
    // dpo
    F("loss", KD_F_MAP, S, dpo.loss, .sub = &dpo_loss_schema, .kinds = KIND(DPO)),
    F("max_len", KD_F_INT, S, dpo.max_len, .def = 256, .lo = 2, .hi = 1 << 24, .kinds = KIND(DPO)),
    F("max_prompt_len", KD_F_INT, S, dpo.max_prompt_len, .def = 128, .lo = 1, .hi = 1 << 24,
      .kinds = KIND(DPO)),
    F("reference", KD_F_MAP, S, dpo.reference, COUNT(S, dpo.has_reference),
      .sub = &reference_schema, .kinds = KIND(DPO)),
    // eval
    F("tasks", KD_F_STRS, S, eval.tasks, COUNT(S, eval.n_tasks), .cap = KD_MAX_TASKS,
      .item = KD_PATH_MAX, .flags = KD_F_NONEMPTY, .kinds = KIND(EVAL)),
    F("max_new_tokens", KD_F_INT, S, eval.max_new_tokens, .def = 32, .lo = 1, .hi = BIG,
      .kinds = KIND(EVAL)),
    F("reference", KD_F_MAP, S, eval.reference, COUNT(S, eval.has_reference),
      .sub = &reference_schema, .kinds = KIND(EVAL)),
    // generate
    F("prompts", KD_F_STR, S, generate.prompts, .cap = KD_PATH_MAX, .sdef = "",
      .flags = KD_F_REQUIRED | KD_F_NONEMPTY, .kinds = KIND(GENERATE)),
    F("max_new_tokens", KD_F_INT, S, generate.max_new_tokens, .def = 64, .lo = 1, .hi = BIG,
      .kinds = KIND(GENERATE)),
    F("temperature", KD_F_FLOAT, S, generate.temperature, .def = 0.7, .lo = 0, .hi = INF,
      .kinds = KIND(GENERATE)),
    F("top_k", KD_F_INT, S, generate.top_k, .def = 0, .lo = 0, .hi = BIG, .kinds = KIND(GENERATE)),
    F("top_p", KD_F_FLOAT, S, generate.top_p, .def = 0.95, .lo = 0, .hi = 1, .flags = KD_F_LO_OPEN,
      .kinds = KIND(GENERATE)),
};
#undef S
static const kd_schema stage_schema = {stage_fields, N(stage_fields), "kind", 0};

// ---------------------------------------------------------------------------- document
static const kd_field run_fields[] = {
    F("name", KD_F_STR, kd_run_spec, name, .cap = KD_NAME_MAX, .sdef = "" /* derived */,
      .flags = KD_F_NONEMPTY),
    F("out_dir", KD_F_STR, kd_run_spec, out_dir, .cap = KD_PATH_MAX, .sdef = "" /* derived */,
      .flags = KD_F_NONEMPTY),
    F("seed", KD_F_U64, kd_run_spec, seed, .def = 1234),
    F("backend", KD_F_STR, kd_run_spec, backend, .cap = 16, .sdef = "auto", .names = backend_names),
    F("precision", KD_F_STR, kd_run_spec, precision, .cap = 8, .sdef = "fp32",
      .names = precision_names),
    F("max_minutes", KD_F_FLOAT, kd_run_spec, max_minutes, .def = 0, .lo = 0, .hi = INF),
    F("collective_timeout_s", KD_F_FLOAT, kd_run_spec, collective_timeout_s, .def = 600, .lo = 0,
      .hi = INF, .flags = KD_F_LO_OPEN),
    F("tensorboard", KD_F_BOOL, kd_run_spec, tensorboard, .def = 1),
    F("grad_bucket_mb", KD_F_FLOAT, kd_run_spec, grad_bucket_mb, .def = 25, .lo = 0, .hi = 65536),
};
static const kd_schema run_schema = {run_fields, N(run_fields), NULL, 0};

static const kd_field recipe_fields[] = {
    F("run", KD_F_MAP, kd_recipe, run, .sub = &run_schema),
    F("model", KD_F_MAP, kd_recipe, model, .sub = &model_schema),
    F("teacher", KD_F_MAP, kd_recipe, teacher, COUNT(kd_recipe, has_teacher),
      .sub = &teacher_schema),
    F("stages", KD_F_MAPS, kd_recipe, stages, COUNT(kd_recipe, n_stages), .cap = KD_MAX_STAGES,
      .item = sizeof(kd_stage_spec), .sub = &stage_schema, .lo = 1, .flags = KD_F_REQUIRED),
};
const kd_schema kd_recipe_schema = {recipe_fields, N(recipe_fields), NULL, 1};
