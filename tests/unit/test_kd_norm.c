// test_kd_norm.c: the kd stage's loss.normalize (kd_losses_kd_norm + the distill kernel, as
// stages/kd.c combines them) on a hand-computed case. 2 rows x 3 tokens, V = 2, student
// logits all 0 (p_s = (1/2, 1/2)), teacher rows of three kinds:
//   A: t = (ln 3, 0) -> p_t = (3/4, 1/4):  KL_A = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.1308120360
//   B: t = (0, ln 9) -> p_t = (1/10, 9/10): KL_B = 1/10 ln(1/5) + 9/10 ln(9/5) = 0.3680642074
//   Z: t = (0, 0)    -> KL = 0
// row 0 = A A B, row 1 = B Z A. MambaInLlama's KD term is torch
// kl_div(log_softmax(s), softmax(t), reduction='batchmean') over (rows, T, V): every position,
// summed, divided by the rows: (3 KL_A + 2 KL_B) / 2; its gradient is (p_s - p_t) / rows.
// The stage's loss is sum_i loss_i * ks / dscale, divided by the trainer by the target weight
// W = 1 / dscale: sum_i loss_i * ks. Tolerance 1e-6: float kernel, double sums.
#include <math.h>

#include "kernels/cpu/cpu_losses.h"
#include "runtime/train/losses.h"
#include "unit/check.h"

#define KL_A 0.1308120360
#define KL_B 0.3680642074

static double stage_kl(kd_kd_norm norm, const int32_t *tg, const float *w, float *grad) {
    enum { n = 2, T = 3, V = 2, N = n * T };
    const double l3 = log(3.0), l9 = log(9.0);
    const float t[N * V] = {(float)l3, 0,         (float)l3, 0, 0,         (float)l9,
                            0,         (float)l9, 0,         0, (float)l3, 0};
    float s[N * V] = {0}, loss[N], wk[N];
    double W = 0;
    for (int i = 0; i < N; i++) W += tg[i] >= 0 ? w[i] : 0;
    float dscale = (float)(1.0 / W);
    float ks = kd_losses_kd_norm(norm, tg, w, n, T, /*G=*/2, dscale, wk);
    kd_scratch ws = {.bytes = kd_cpu_distill_full_scratch(NULL, N, V)};
    ws.p = malloc(ws.bytes);
    kd_cpu_distill_full(NULL, loss, grad, s, t, wk, N, V, KD_DIV_FORWARD_KL, 0.5f, 1.0f, ks, ws);
    free(ws.p);
    double sum = 0;
    for (int i = 0; i < N; i++) sum += loss[i];
    return sum * ks; // the stage's kl_loss, divided by the trainer's W
}

int main(void) {
    const int32_t all[6] = {1, 1, 1, 1, 1, 1}, masked[6] = {1, 1, 1, 1, 1, -1};
    const float ones[6] = {1, 1, 1, 1, 1, 1}, wmask[6] = {1, 1, 1, 1, 1, 0};
    float g[12];
    // batchmean, no mask: MambaInLlama's value and gradient
    double v = stage_kl(KD_NORM_BATCHMEAN, all, ones, g), want = (3 * KL_A + 2 * KL_B) / 2;
    CHECK(fabs(v - want) < 1e-6, "batchmean: got %.9f, MambaInLlama's kl_div batchmean %.9f", v,
          want);
    CHECK(fabsf(g[0] - (0.5f - 0.75f) / 2) < 1e-7f && fabsf(g[1] - (0.5f - 0.25f) / 2) < 1e-7f,
          "batchmean grad row A: got (%g, %g), want (-0.125, 0.125)", g[0], g[1]);
    CHECK(fabsf(g[4] - (0.5f - 0.1f) / 2) < 1e-7f, "batchmean grad row B: got %g, want 0.2", g[4]);
    // token (today's default): the per-target mean, dscale as given
    v = stage_kl(KD_NORM_TOKEN, all, ones, g), want = (3 * KL_A + 2 * KL_B) / 6;
    CHECK(fabs(v - want) < 1e-6, "token: got %.9f, want %.9f", v, want);
    CHECK(fabsf(g[0] + 0.25f / 6) < 1e-7f, "token grad: got %g, want %g", g[0], -0.25 / 6);
    // with the last position masked: batchmean sums the 5 targets / 2 rows; sequence averages
    // row 0's mean (2A+B)/3 and row 1's (B+0)/2; the masked position gets no gradient
    v = stage_kl(KD_NORM_BATCHMEAN, masked, wmask, g), want = (2 * KL_A + 2 * KL_B) / 2;
    CHECK(fabs(v - want) < 1e-6, "batchmean masked: got %.9f, want %.9f", v, want);
    CHECK(g[10] == 0 && g[11] == 0, "masked position has gradient (%g, %g)", g[10], g[11]);
    v = stage_kl(KD_NORM_SEQUENCE, masked, wmask, g), want = ((2 * KL_A + KL_B) / 3 + KL_B / 2) / 2;
    CHECK(fabs(v - want) < 1e-6, "sequence masked: got %.9f, want %.9f", v, want);
    CHECK(fabsf(g[0] + 0.25f / 3 / 2) < 1e-7f && fabsf(g[6] - 0.4f / 2 / 2) < 1e-7f,
          "sequence grads: got row0 %g (want %g), row1 %g (want %g)", g[0], -0.25 / 6, g[6], 0.1);
    return check_done("test_kd_norm");
}
