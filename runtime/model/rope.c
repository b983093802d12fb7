// rope.c: RoPE scaling types and the inverse-frequency table (rope.h). The llama3 and linear
// tables follow the Hugging Face definitions step by step in float, the precision and order
// of operations of transformers' own tables, so imported models see the same angles.
#include "runtime/model/rope.h"

#include <math.h>
#include <string.h>

#include "kernels/math.h"

static const char *const k_names[KD_ROPE_TYPES] = {"default", "linear", "dynamic", "llama3"};

const char *kd_rope_type_name(kd_rope_type t) {
    return (unsigned)t < KD_ROPE_TYPES ? k_names[t] : "?";
}

int kd_rope_type_parse(const char *s) {
    for (int t = 0; t < KD_ROPE_TYPES; t++)
        if (strcmp(s, k_names[t]) == 0) return t;
    return -1;
}

int kd_rope_check(const kd_rope_scaling *s, int max_pos, const char *prefix, kd_error *err) {
    if ((unsigned)s->type >= KD_ROPE_TYPES)
        return kd_fail(err, KD_EINPUT, "%stype: unknown scaling type %d", prefix, (int)s->type);
    if (s->type == KD_ROPE_DEFAULT) return KD_OK;
    if (!(s->factor > 0) || !isfinite(s->factor))
        return kd_fail(err, KD_EINPUT, "%sfactor: %s scaling needs a factor > 0, found %g", prefix,
                       k_names[s->type], s->factor);
    if (s->type == KD_ROPE_DYNAMIC && max_pos < 1)
        return kd_fail(err, KD_EINPUT,
                       "max_position_embeddings: dynamic RoPE scaling needs it (dynamic equals "
                       "plain RoPE only up to that length)");
    if (s->type != KD_ROPE_LLAMA3) return KD_OK;
    if (!(s->low_freq_factor > 0) || !(s->high_freq_factor > s->low_freq_factor))
        return kd_fail(err, KD_EINPUT,
                       "%shigh_freq_factor: llama3 scaling needs 0 < low_freq_factor < "
                       "high_freq_factor, found %g and %g",
                       prefix, s->low_freq_factor, s->high_freq_factor);
    if (s->original_max_pos < 1)
        return kd_fail(err, KD_EINPUT,
                       "%soriginal_max_position_embeddings: llama3 scaling needs a positive value, "
                       "found %d",
                       prefix, s->original_max_pos);
    return KD_OK;
}

// transformers' _compute_llama3_parameters, elementwise in float32: wavelengths above the
// low-frequency bound are divided by factor, below the high-frequency bound kept, and in
// between interpolated with smooth = (old_len/wavelen - low) / (high - low).
static float llama3_inv_freq(const kd_rope_scaling *s, float f) {
    double old_len = s->original_max_pos, low = s->low_freq_factor, high = s->high_freq_factor;
    // Python scalars meet float32 tensors: each scalar is rounded to float where it is used
    float low_wavelen = (float)(old_len / low), high_wavelen = (float)(old_len / high);
    float wavelen = (1.0f / f) * (float)6.283185307179586; // 2*pi / t is t.reciprocal() * 2*pi
    float scaled = wavelen > low_wavelen ? f / s->factor : f;
    if (wavelen < high_wavelen || wavelen > low_wavelen) return scaled;
    float smooth = ((1.0f / wavelen) * (float)old_len - (float)low) / (float)(high - low);
    return (1.0f - smooth) * scaled / s->factor + smooth * scaled;
}

void kd_rope_table(const kd_rope_scaling *s, float theta, int HD, float *inv_freq) {
    for (int i = 0; i < HD / 2; i++) {
        float f = kd_rope_inv_freq(i, HD, theta);
        if (s->type == KD_ROPE_LINEAR)
            f = f / s->factor;
        else if (s->type == KD_ROPE_LLAMA3)
            f = llama3_inv_freq(s, f);
        inv_freq[i] = f;
    }
}
