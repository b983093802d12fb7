// model_align.h: per-layer MOHAWK alignment losses between a hybrid student's Mamba-2 layer
// and the same layer of an attention teacher (docs/hybrid.md). Called by stage `align`
// (stages/align.c) and its tests. Each call reads the teacher's LAST forward (mixer input,
// attention probabilities or output, document ids) and runs only the student's layer on the
// teacher's input, so layers are independent; gradients go to that layer's mixer tensors
// only and ACCUMULATE. Invariants: student and teacher share d_model, heads and head_dim;
// the student's layer is Mamba-2, the teacher's is attention; the student has gradients.
#pragma once
#include "runtime/model/model.h"

// Scratch for one (B,T): the student layer's activations, its output, the mixing matrix.
// Grown on demand; free with kd_align_ws_free.
typedef struct kd_align_ws kd_align_ws;
kd_align_ws *kd_align_ws_create(const kd_ops *ops);
void kd_align_ws_free(kd_align_ws *ws);

// KD_EINPUT naming the mismatch when `layer` of student/teacher cannot be aligned.
int kd_model_align_check(const kd_model *student, const kd_model *teacher, int layer,
                         kd_error *err);

// Phase matrix. With M (B,H,T,T) the student's mixing matrix (kd_mamba2_matrix) and A the
// teacher's attention probabilities: returns sum_b row_w[b] * mean_h ||M_bh - A_bh||_F
// (Frobenius norm, not squared); with want_grad adds dscale * d(that)/d(params) to the
// layer's gradients. row_w is host (B).
double kd_model_align_matrix(kd_model *student, const kd_model *teacher, int layer,
                             const float *row_w, float dscale, int want_grad, kd_align_ws *ws);

// Phase hidden. With y (B,T,C) the student's mixer output on the teacher's mixer input and
// a the teacher's attention output (before the residual): returns
// sum_{b,t} tok_w[b,t] * ||y_bt - a_bt||_2 (over C, not squared); gradients as above.
// tok_w is host (B,T).
double kd_model_align_hidden(kd_model *student, const kd_model *teacher, int layer,
                             const float *tok_w, float dscale, int want_grad, kd_align_ws *ws);
