// attention.c: causal grouped-query softmax attention on the CPU, forward, backward and the
// probabilities on demand, memory-lean: nothing of size T*T is kept (online softmax, as in
// FlashAttention). The forward walks the visible keys of a block of KD_ATT_TQ queries in
// tiles of KD_ATT_TK keys, keeping per query row the running maximum m and sum l of the
// exponentials and rescaling the output rows when m grows; it saves lse = m + log l. The
// backward recomputes each tile's probabilities from lse (P = exp(S - lse)) and needs
// D_i = dO_i . O_i. Products are single-threaded cblas_sgemm calls on the tiles; work is
// split over (batch, head) with OpenMP (backward: (batch, kv head), so the query heads of
// one kv head accumulate its dK, dV in one thread, without races). A block only multiplies
// against the keys it can see (causality skips about half the work at long T).
// Threading: OpenBLAS is pinned to one thread for the duration of the parallel region
// (openblas_set_num_threads(1), restored afterwards) so that its own pool does not
// oversubscribe the cores the OpenMP team already occupies.
// Scratch per thread: two (TQ,TK) tiles and three TQ rows.
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vmath.h"

#define KD_ATT_TQ 64  // query rows per block
#define KD_ATT_TK 512 // keys per tile: up to T = 512 a query block sees one tile

// Pins OpenBLAS to one thread; returns the previous count for openblas_set_num_threads.
static int att_blas_pin(void) {
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return saved;
}

static int att_min(int a, int b) {
    return a < b ? a : b;
}

// The per-thread tiles: s, d (TQ,TK) and rows m, l, x (TQ).
typedef struct {
    float *s, *d, *m, *l, *x;
} att_tiles;

static size_t att_thread_bytes(void) {
    return 2 * kd_cpu_round(sizeof(float) * KD_ATT_TQ * KD_ATT_TK) +
           3 * kd_cpu_round(sizeof(float) * KD_ATT_TQ);
}

size_t kd_cpu_attention_scratch(void *ctx, int B, int T, int NH, int HD) {
    (void)ctx, (void)B, (void)T, (void)NH, (void)HD;
    return kd_cpu_per_thread(att_thread_bytes());
}

static att_tiles att_thread_tiles(char *base) {
    char *p = base + att_thread_bytes() * (size_t)omp_get_thread_num();
    const size_t tile = kd_cpu_round(sizeof(float) * KD_ATT_TQ * KD_ATT_TK),
                 row = kd_cpu_round(sizeof(float) * KD_ATT_TQ);
    att_tiles t = {(float *)p, (float *)(p + tile), (float *)(p + 2 * tile),
                   (float *)(p + 2 * tile + row), (float *)(p + 2 * tile + 2 * row)};
    return t;
}

// Online-softmax update of one query row i over the tile's keys [j0, j0+nk): s holds the
// scaled scores and becomes the unnormalised probabilities exp(s - m_new) (0 for keys
// after i or of another document). Returns alpha = exp(m_old - m_new), by which the
// row's running sum (updated here) and its output so far are rescaled.
KD_CPU_CLONES static float att_online_row(float *s, int i, int j0, int nk, const int32_t *seg,
                                          float *m, float *l) {
    const int nv = att_min(nk, i + 1 - j0); // keys of this tile at or before i
    float mx = *m;
    if (seg) {
        for (int j = 0; j < nv; j++)
            if (seg[j0 + j] == seg[i] && s[j] > mx) mx = s[j];
    } else {
        for (int j = 0; j < nv; j++) mx = s[j] > mx ? s[j] : mx;
    }
    if (mx == -INFINITY) { // nothing visible yet (a tile of keys before this document)
        for (int j = 0; j < nk; j++) s[j] = 0.0f;
        return 1.0f;
    }
    const float alpha = kd_vexp(*m - mx); // exp(-inf) = 0 on the first visible tile
    float sum = 0.0f;
    if (seg) {
        const int32_t si = seg[i];
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < nv; j++) {
            float e = kd_vexp(s[j] - mx) * (float)(seg[j0 + j] == si);
            s[j] = e;
            sum += e;
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < nv; j++) {
            float e = kd_vexp(s[j] - mx);
            s[j] = e;
            sum += e;
        }
    }
    for (int j = nv < 0 ? 0 : nv; j < nk; j++) s[j] = 0.0f;
    *l = *l * alpha + sum;
    *m = mx;
    return alpha;
}

// Probabilities of one query row i over the tile's keys from its log-sum-exp: s (scaled
// scores) becomes exp(s - lse), 0 for keys after i or of another document.
KD_CPU_CLONES static void att_prob_row(float *s, int i, int j0, int nk, const int32_t *seg,
                                       float lse) {
    const int nv = att_min(nk, i + 1 - j0);
    if (seg) {
        const int32_t si = seg[i];
#pragma omp simd
        for (int j = 0; j < nv; j++) s[j] = kd_vexp(s[j] - lse) * (float)(seg[j0 + j] == si);
    } else {
#pragma omp simd
        for (int j = 0; j < nv; j++) s[j] = kd_vexp(s[j] - lse);
    }
    for (int j = nv < 0 ? 0 : nv; j < nk; j++) s[j] = 0.0f;
}

// Softmax backward of one row, in place on d (dP): d = scale * p * (d - D).
KD_CPU_CLONES static void att_dscore_row(float *d, const float *p, int nk, float D, float scale) {
#pragma omp simd
    for (int j = 0; j < nk; j++) d[j] = scale * p[j] * (d[j] - D);
}

// out is (B,T,NH*HD), lse is (B,NH,T), qkv is (B,T,(NH+2*NKV)*HD), seg is (B,T) or NULL.
void kd_cpu_attention_fwd(void *ctx, float *out, float *lse, const float *qkv, const int32_t *seg,
                          int B, int T, int NH, int NKV, int HD, kd_scratch ws) {
    (void)ctx;
    const int R = (NH + 2 * NKV) * HD, OD = NH * HD, G = NH / NKV;
    const float scale = 1.0f / sqrtf((float)HD);
    char *tiles = kd_cpu_take(&ws, kd_cpu_per_thread(att_thread_bytes()));
    int saved = att_blas_pin();
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            att_tiles w = att_thread_tiles(tiles);
            const float *base = qkv + (size_t)b * T * R;
            const float *q = base + (size_t)h * HD;            // (T,HD) with row stride R
            const float *k = base + (size_t)(NH + h / G) * HD; // (T,HD) with row stride R
            const float *v = base + (size_t)(NH + NKV + h / G) * HD;
            float *o = out + (size_t)b * T * OD + (size_t)h * HD; // (T,HD) row stride OD
            float *ls = lse + ((size_t)b * NH + h) * T;           // (T)
            const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
            for (int i0 = 0; i0 < T; i0 += KD_ATT_TQ) {
                const int i1 = att_min(i0 + KD_ATT_TQ, T), nq = i1 - i0;
                for (int r = 0; r < nq; r++) w.m[r] = -INFINITY, w.l[r] = 0.0f;
                for (int j0 = 0; j0 < i1; j0 += KD_ATT_TK) {
                    const int nk = att_min(KD_ATT_TK, i1 - j0);
                    // S (nq,nk) = scale * Q K^T for queries [i0,i1), keys [j0,j0+nk)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, HD, scale,
                                q + (size_t)i0 * R, R, k + (size_t)j0 * R, R, 0.0f, w.s,
                                KD_ATT_TK);
                    for (int r = 0; r < nq; r++) {
                        float a = att_online_row(w.s + (size_t)r * KD_ATT_TK, i0 + r, j0, nk, sg,
                                                 &w.m[r], &w.l[r]);
                        if (j0 > 0 && a != 1.0f)
                            for (int e = 0; e < HD; e++) o[(size_t)(i0 + r) * OD + e] *= a;
                    }
                    // O += P V over the tile (the first tile overwrites)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, HD, nk, 1.0f, w.s,
                                KD_ATT_TK, v + (size_t)j0 * R, R, j0 > 0 ? 1.0f : 0.0f,
                                o + (size_t)i0 * OD, OD);
                }
                for (int r = 0; r < nq; r++) { // l >= 1: the key i itself is always visible
                    const float inv = 1.0f / w.l[r];
                    for (int e = 0; e < HD; e++) o[(size_t)(i0 + r) * OD + e] *= inv;
                    ls[i0 + r] = w.m[r] + logf(w.l[r]);
                }
            }
        }
    }
    openblas_set_num_threads(saved);
}

// dout, out are (B,T,NH*HD); lse (B,NH,T) from the forward; dqkv (B,T,(NH+2*NKV)*HD) is
// OVERWRITTEN.
void kd_cpu_attention_bwd(void *ctx, float *dqkv, const float *dout, const float *out,
                          const float *lse, const float *qkv, const int32_t *seg, int B, int T,
                          int NH, int NKV, int HD, kd_scratch ws) {
    (void)ctx;
    const int R = (NH + 2 * NKV) * HD, OD = NH * HD, G = NH / NKV;
    const float scale = 1.0f / sqrtf((float)HD);
    char *tiles = kd_cpu_take(&ws, kd_cpu_per_thread(att_thread_bytes()));
    int saved = att_blas_pin();
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < NKV; g++) {
            att_tiles w = att_thread_tiles(tiles);
            const float *base = qkv + (size_t)b * T * R;
            float *dbase = dqkv + (size_t)b * T * R;
            const float *k = base + (size_t)(NH + g) * HD, *v = base + (size_t)(NH + NKV + g) * HD;
            float *dk = dbase + (size_t)(NH + g) * HD, *dv = dbase + (size_t)(NH + NKV + g) * HD;
            const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
            for (int t = 0; t < T; t++) {
                memset(dk + (size_t)t * R, 0, sizeof(float) * HD);
                memset(dv + (size_t)t * R, 0, sizeof(float) * HD);
            }
            for (int h = g * G; h < (g + 1) * G; h++) {
                const float *q = base + (size_t)h * HD;
                float *dq = dbase + (size_t)h * HD;
                const float *dO = dout + (size_t)b * T * OD + (size_t)h * HD;
                const float *O = out + (size_t)b * T * OD + (size_t)h * HD;
                const float *ls = lse + ((size_t)b * NH + h) * T;
                for (int i0 = 0; i0 < T; i0 += KD_ATT_TQ) {
                    const int i1 = att_min(i0 + KD_ATT_TQ, T), nq = i1 - i0;
                    for (int r = 0; r < nq; r++) { // D_i = dO_i . O_i
                        const float *a = dO + (size_t)(i0 + r) * OD, *c = O + (size_t)(i0 + r) * OD;
                        float s = 0.0f;
                        for (int e = 0; e < HD; e++) s += a[e] * c[e];
                        w.x[r] = s;
                    }
                    for (int j0 = 0; j0 < i1; j0 += KD_ATT_TK) {
                        const int nk = att_min(KD_ATT_TK, i1 - j0);
                        // P (nq,nk) recomputed: exp(scale * Q K^T - lse)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, HD, scale,
                                    q + (size_t)i0 * R, R, k + (size_t)j0 * R, R, 0.0f, w.s,
                                    KD_ATT_TK);
                        for (int r = 0; r < nq; r++)
                            att_prob_row(w.s + (size_t)r * KD_ATT_TK, i0 + r, j0, nk, sg,
                                         ls[i0 + r]);
                        // dP (nq,nk) = dO V^T, then dS = scale * P * (dP - D)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, HD, 1.0f,
                                    dO + (size_t)i0 * OD, OD, v + (size_t)j0 * R, R, 0.0f, w.d,
                                    KD_ATT_TK);
                        for (int r = 0; r < nq; r++)
                            att_dscore_row(w.d + (size_t)r * KD_ATT_TK, w.s + (size_t)r * KD_ATT_TK,
                                           nk, w.x[r], scale);
                        // dQ (+)= dS K ; dK += dS^T Q ; dV += P^T dO
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, HD, nk, 1.0f,
                                    w.d, KD_ATT_TK, k + (size_t)j0 * R, R, j0 > 0 ? 1.0f : 0.0f,
                                    dq + (size_t)i0 * R, R);
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, HD, nq, 1.0f, w.d,
                                    KD_ATT_TK, q + (size_t)i0 * R, R, 1.0f, dk + (size_t)j0 * R,
                                    R);
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, HD, nq, 1.0f, w.s,
                                    KD_ATT_TK, dO + (size_t)i0 * OD, OD, 1.0f, dv + (size_t)j0 * R,
                                    R);
                    }
                }
            }
        }
    }
    openblas_set_num_threads(saved);
}

// P (B,NH,T,T) from qkv and lse: one full-width score product per (batch, head), then the
// probabilities row by row.
void kd_cpu_attention_probs(void *ctx, float *P, const float *qkv, const float *lse,
                            const int32_t *seg, int B, int T, int NH, int NKV, int HD) {
    (void)ctx;
    const int R = (NH + 2 * NKV) * HD, G = NH / NKV;
    const float scale = 1.0f / sqrtf((float)HD);
    int saved = att_blas_pin();
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const float *base = qkv + (size_t)b * T * R;
            float *p = P + ((size_t)b * NH + h) * T * T;
            const float *ls = lse + ((size_t)b * NH + h) * T;
            const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HD, scale,
                        base + (size_t)h * HD, R, base + (size_t)(NH + h / G) * HD, R, 0.0f, p, T);
            for (int i = 0; i < T; i++) att_prob_row(p + (size_t)i * T, i, 0, T, sg, ls[i]);
        }
    }
    openblas_set_num_threads(saved);
}
