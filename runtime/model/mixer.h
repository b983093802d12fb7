// mixer.h: the interface of a decoder layer's sequence mixer. Attention (mixer_attn.c) and
// Mamba-2 (mixer_mamba2.c) each fill one kd_mixer_vt with the same entry points (forward,
// backward, prefill, step) over the same arguments; the model and the decoder take it from
// kd_mixer_vt_of(kind), and their layer loops never branch on the kind. A layer's own
// tensors sit behind the void pointers of kd_mixer, which only its kind's file reads.
// Called by model.c and model_decode.c. All memory is the caller's backend memory, sized by
// the vt's queries.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"
#include "runtime/model/model.h"

typedef struct kd_mixer_vt kd_mixer_vt;

// One layer's mixer.
typedef struct kd_mixer {
    const kd_mixer_vt *vt;
    const kd_ops *ops;
    const void *cfg; // kd_attn_dims | kd_mamba2_cfg
    const void *p;   // kd_attn_params | kd_mamba2_params
    const void *g;   // same type as p: the gradients, or NULL without them
} kd_mixer;

// Memory of a training call on a (B,T) batch.
typedef struct {
    float *acts;   // act_floats(B,T): the layer's activations, kept from forward for backward
    float *bwd;    // bwd_floats(B,T): backward scratch shared by the layers
    kd_scratch ws; // scratch_bytes(B,T): kernel scratch shared by the layers
} kd_mixer_mem;

// Memory of decoding `slots` sequences of up to `len` tokens, `rows` rows a step.
typedef struct {
    float *cache; // cache_floats(slots, len): the layer's state of every slot
    int slots, len;
    float *work;   // work_floats(rows, len): shared by the layers
    kd_scratch ws; // decode_scratch_bytes(rows, len): kernel scratch shared by the layers
    // Rollback history (speculative decoding), or hist NULL: hist_len entries of
    // state_floats per slot, (slots, hist_len, state_floats). A step saves the state of a
    // slot after its row r into entry hist_row[r] (host (rows), -1: not saved).
    float *hist;
    int hist_len;
    const int32_t *hist_row;
} kd_mixer_dec;

struct kd_mixer_vt {
    kd_mixer_kind kind;
    const char *name; // in checkpoints and exported configs (kd_mixer_name)
    kd_cap cap;       // the backend capability its training kernels need (decoding: + decode)
    // Sizes (floats, or bytes for kernel scratch) of the memory above.
    size_t (*act_floats)(const void *cfg, int B, int T);
    size_t (*bwd_floats)(const void *cfg, int B, int T);
    size_t (*scratch_bytes)(const kd_ops *ops, const void *cfg, int B, int T);
    size_t (*cache_floats)(const void *cfg, int slots, int len);
    size_t (*work_floats)(const void *cfg, int slots, int len);
    size_t (*decode_scratch_bytes)(const kd_ops *ops, const void *cfg, int slots, int len);
    // out (B,T,C) = mixer(inp (B,T,C)) (overwritten); pos, seg (B,T) backend ints, seg NULL:
    // one document per row.
    void (*forward)(const kd_mixer *x, const kd_mixer_mem *mem, float *out, const float *inp,
                    const int32_t *pos, const int32_t *seg, int B, int T);
    // dinp (B,T,C) = d out / d inp . dout (overwritten), gradients += ...; mem->acts from
    // forward.
    void (*backward)(const kd_mixer *x, const kd_mixer_mem *mem, float *dinp, const float *dout,
                     const float *inp, const int32_t *pos, const int32_t *seg, int B, int T);
    // Forward of one prompt inp (T,C) at positions pos (T) that leaves its state in slot
    // `slot` of the cache (whatever the slot held before is replaced). out (T,C).
    void (*prefill)(const kd_mixer *x, const kd_mixer_dec *dec, int slot, float *out,
                    const float *inp, const int32_t *pos, int T);
    // T tokens per slot b < B in T*B rows, token-major (row r = t*B + b): inp (T*B,C) at
    // positions pos[r], the slot then holding n[r] = pos[r] + 1 tokens. out (T*B,C);
    // advances the slots' state by T tokens (token t of every slot before token t+1), with
    // the kernels of T one-token steps (projections batched over the T*B rows).
    void (*step)(const kd_mixer *x, const kd_mixer_dec *dec, float *out, const float *inp,
                 const int32_t *pos, const int32_t *n, int B, int T);
    // Floats of one slot's rollback state (0: the cache rolls back by its length alone, as
    // a KV cache does), and copying it between the slot and history entry h (restore 0:
    // slot -> entry; 1: entry -> slot).
    size_t (*state_floats)(const void *cfg);
    void (*history)(const kd_mixer *x, const kd_mixer_dec *dec, int slot, int h, int restore);
};

// The table of a mixer kind (mixer_attn.c: kd_attn_mixer, mixer_mamba2.c: kd_mamba2_mixer).
const kd_mixer_vt *kd_mixer_vt_of(kd_mixer_kind kind);
extern const kd_mixer_vt kd_attn_mixer, kd_mamba2_mixer;
