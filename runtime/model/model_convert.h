// model_convert.h: attention -> Mamba-2 conversion of a whole model (MambaInLlama init,
// docs/hybrid.md). Called by stage `init` (stages/init.c) and its tests. The result is a new
// model; the source is only read. Invariants: every tensor whose name exists in the source
// with the same size is copied bit for bit (embeddings, norms, MLPs, LM head, attention
// layers and layers that are already Mamba-2); converted layers take x <- v_proj,
// B <- k_proj, C <- q_proj, out_proj <- o_proj exactly; their new tensors are seeded by
// (seed, parameter name), so the result does not depend on the world size or on order.
#pragma once
#include <stdint.h>

#include "runtime/model/model.h"

// How a converted layer's causal conv1d starts.
typedef enum {
    KD_CONV_INIT_IDENTITY = 0, // kernel passes the current token through, bias 0 (MOHAWK)
    KD_CONV_INIT_DEFAULT = 1,  // PyTorch Conv1d default U(+-1/sqrt(width)) (MambaInLlama)
} kd_conv_init;

typedef struct {
    uint64_t seed;     // run seed: streams are kd_rng_seed_str(seed, parameter name)
    kd_conv_init conv; // conv1d init of converted layers
    int d_state;       // 0: head_dim; must equal head_dim
    int chunk_size;    // SSD chunk of the new model (>= 1)
    int conv_width;    // conv width (>= 1; must match layers already Mamba-2)
} kd_convert_opts;

// Builds *out (with gradients if with_grads) from src: the layers listed in ssm_layers
// (n_ssm >= 1 indices in [0, n_layers)) become Mamba-2, attention layers not listed stay
// attention. A layer that is Mamba-2 in src must be listed (init never turns Mamba back
// into attention). KD_EINPUT with err naming the offending value otherwise.
int kd_model_convert(kd_model **out, const kd_model *src, const int *ssm_layers, int n_ssm,
                     const kd_convert_opts *opts, int with_grads, kd_error *err);
