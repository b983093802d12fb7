// mamba2_grid_ssd_gemm.h: the chunked SSD forward and backward as batched GEMMs with small
// elementwise grid bodies between them: the GEMM builders (each fills a kd_bgemm of
// kernels/bgemm.h for one product over every (b, h, chunk)), the bodies that form the operands
// (masked M and dG, rows scaled by the pass or state weights, per-token gradient parts, the
// sums over the heads of a kv head) and the launch plans KD_M2G_SSD_{FWD,BWD}_GEMM_PLAN.
// kernels/cuda/mamba2_ssd.cu runs a GEMM step through cublasSgemmBatched, and
// tests/unit/test_mamba2_grid.c through a naive host loop; both take the same descriptors.
// The maths mirrors kernels/cpu/mamba2_ssd.c product by product (same masks, same factor
// order); the chunk recurrences and per-chunk stages are in mamba2_grid_ssd.h.
#pragma once
#include <string.h>

#include "kernels/bgemm.h"
#include "kernels/mamba2_grid_ssd.h"

// ============================================================================ GEMM builders
// A builder fills g for one part of the chunks: part 0 = the full chunks (q = Q tokens each),
// part 1 = the partial last chunk (q = T mod Q; no entries when Q divides T), so no block
// reaches past token T-1. Builders run on the host only (they read no tensor).
typedef void (*kd_m2g_gemm_fn)(kd_bgemm *g, const kd_m2g_ssd *a, int part);

// The entries and pointer arrays of `part`, alpha = 1; returns q.
static inline int kd_m2g_gemm_part(kd_bgemm *g, const kd_m2g_ssd *a, int part, float beta) {
    const int Q = a->d.Q, nf = a->in.T / Q, rem = a->in.T % Q;
    memset(g, 0, sizeof *g);
    g->alpha = 1.0f, g->beta = beta;
    g->nb = a->in.B, g->nh = a->d.H;
    g->c0 = part ? nf : 0, g->nc = part ? (rem > 0) : nf;
    g->pa = a->pa, g->pb = a->pb, g->pc = a->pc;
    return part ? rem : Q;
}
// Token rows of a (B,T,ld) activation: chunk c's rows, columns [w*(h/hdiv), +w).
static inline kd_bgemm_op kd_m2g_op_rows(const kd_m2g_ssd *a, int ld, int w, int hdiv) {
    kd_bgemm_op o;
    memset(&o, 0, sizeof o);
    o.sb = (size_t)a->in.T * ld, o.sh = (size_t)w, o.sc = (size_t)a->d.Q * ld;
    o.hdiv = hdiv, o.ld = ld;
    return o;
}
// Token rows of a per-head scratch buffer (B,H,T,w).
static inline kd_bgemm_op kd_m2g_op_head(const kd_m2g_ssd *a, int w) {
    kd_bgemm_op o;
    memset(&o, 0, sizeof o);
    o.sh = (size_t)a->in.T * w, o.sb = o.sh * a->d.H, o.sc = (size_t)a->d.Q * w;
    o.hdiv = 1, o.ld = w;
    return o;
}
// One (r,w) block per chunk: a (B,H,nc,r,w) buffer.
static inline kd_bgemm_op kd_m2g_op_block(const kd_m2g_ssd *a, int r, int w) {
    kd_bgemm_op o;
    memset(&o, 0, sizeof o);
    o.sc = (size_t)r * w, o.sh = o.sc * a->nc, o.sb = o.sh * a->d.H;
    o.hdiv = 1, o.ld = w;
    return o;
}
KD_HD static inline int kd_m2g_rep(const kd_m2g_ssd *a) { // heads per kv head
    return a->d.H / a->d.n_kv;
}
// The operands every builder uses: x, B (kv heads), C, dy (heads) and y.
#define KD_M2G_OP_X(a) kd_m2g_op_rows(a, (a)->in.ldx, (a)->d.P, kd_m2g_rep(a))
#define KD_M2G_OP_B(a) kd_m2g_op_rows(a, (a)->in.ldb, (a)->d.N, kd_m2g_rep(a))
#define KD_M2G_OP_C(a) kd_m2g_op_rows(a, (a)->in.ldc, (a)->d.N, 1)
#define KD_M2G_OP_Y(a) kd_m2g_op_rows(a, (a)->d.H * (a)->d.P, (a)->d.P, 1)

// One builder: C (m,n) = op(A) op(B) [+ C when beta is 1]; the statements after k_ set A, B, C.
#define KD_M2G_GEMM(name, beta_, ta_, tb_, m_, n_, k_, ...)                                        \
    static inline void name(kd_bgemm *g, const kd_m2g_ssd *a, int part) {                          \
        const int q = kd_m2g_gemm_part(g, a, part, beta_), P = a->d.P, N = a->d.N;                 \
        (void)q, (void)P, (void)N;                                                                 \
        g->ta = ta_, g->tb = tb_, g->m = m_, g->n = n_, g->k = k_;                                 \
        __VA_ARGS__                                                                                \
    }

// Forward. sloc: Sloc (P,N) = (w x)^T B, w x in tp.
KD_M2G_GEMM(kd_m2g_g_sloc, 0.0f, 1, 0, P, N, q, {
    g->A = kd_m2g_op_head(a, P), g->A.in = a->tp;
    g->B = KD_M2G_OP_B(a), g->B.in = a->in.Bm;
    g->C = kd_m2g_op_block(a, P, N), g->C.out = a->cbuf;
})
// cb: G (q,q) = C B^T into qa (forward and backward).
KD_M2G_GEMM(kd_m2g_g_cb, 0.0f, 0, 1, q, q, N, {
    g->A = KD_M2G_OP_C(a), g->A.in = a->in.Cm;
    g->B = KD_M2G_OP_B(a), g->B.in = a->in.Bm;
    g->C = kd_m2g_op_block(a, a->d.Q, a->d.Q), g->C.out = a->qa;
})
// mx: y (q,P) = M x, M in qa, straight into y's (B,T,H,P) rows.
KD_M2G_GEMM(kd_m2g_g_mx, 0.0f, 0, 0, q, P, q, {
    g->A = kd_m2g_op_block(a, a->d.Q, a->d.Q), g->A.in = a->qa;
    g->B = KD_M2G_OP_X(a), g->B.in = a->in.x;
    g->C = KD_M2G_OP_Y(a), g->C.out = a->y;
})
// cs: T1 (q,P) = C S^T with S the states entering the chunks, into tp.
KD_M2G_GEMM(kd_m2g_g_cs, 0.0f, 0, 1, q, P, N, {
    g->A = KD_M2G_OP_C(a), g->A.in = a->in.Cm;
    g->B = kd_m2g_op_block(a, P, N), g->B.in = a->states;
    g->C = kd_m2g_op_head(a, P), g->C.out = a->tp;
})

// Backward. gout: Gout (P,N) = (e dy)^T C, e dy in tp.
KD_M2G_GEMM(kd_m2g_g_gout, 0.0f, 1, 0, P, N, q, {
    g->A = kd_m2g_op_head(a, P), g->A.in = a->tp;
    g->B = KD_M2G_OP_C(a), g->B.in = a->in.Cm;
    g->C = kd_m2g_op_block(a, P, N), g->C.out = a->cbuf;
})
// dyx: dM (q,q) = dy x^T into qb.
KD_M2G_GEMM(kd_m2g_g_dyx, 0.0f, 0, 1, q, q, P, {
    g->A = KD_M2G_OP_Y(a), g->A.in = a->dy;
    g->B = KD_M2G_OP_X(a), g->B.in = a->in.x;
    g->C = kd_m2g_op_block(a, a->d.Q, a->d.Q), g->C.out = a->qb;
})
// cst: T1 (q,P) = C S^T with the forward's states, into tq1.
KD_M2G_GEMM(kd_m2g_g_cst, 0.0f, 0, 1, q, P, N, {
    g->A = KD_M2G_OP_C(a), g->A.in = a->in.Cm;
    g->B = kd_m2g_op_block(a, P, N), g->B.in = a->st;
    g->C = kd_m2g_op_head(a, P), g->C.out = a->tq1;
})
// bds: U (q,P) = B dS_out^T into tq2.
KD_M2G_GEMM(kd_m2g_g_bds, 0.0f, 0, 1, q, P, N, {
    g->A = KD_M2G_OP_B(a), g->A.in = a->in.Bm;
    g->B = kd_m2g_op_block(a, P, N), g->B.in = a->sbuf;
    g->C = kd_m2g_op_head(a, P), g->C.out = a->tq2;
})
// xds: V (q,N) = x dS_out into tn.
KD_M2G_GEMM(kd_m2g_g_xds, 0.0f, 0, 0, q, N, P, {
    g->A = KD_M2G_OP_X(a), g->A.in = a->in.x;
    g->B = kd_m2g_op_block(a, P, N), g->B.in = a->sbuf;
    g->C = kd_m2g_op_head(a, N), g->C.out = a->tn;
})
// mtdy: head h's part of dx (q,P) = M^T dy, M in qa, into tq1.
KD_M2G_GEMM(kd_m2g_g_mtdy, 0.0f, 1, 0, q, P, q, {
    g->A = kd_m2g_op_block(a, a->d.Q, a->d.Q), g->A.in = a->qa;
    g->B = KD_M2G_OP_Y(a), g->B.in = a->dy;
    g->C = kd_m2g_op_head(a, P), g->C.out = a->tq1;
})
// dgtc: head h's part of dB (q,N) = dG^T C, dG in qb, into tdb.
KD_M2G_GEMM(kd_m2g_g_dgtc, 0.0f, 1, 0, q, N, q, {
    g->A = kd_m2g_op_block(a, a->d.Q, a->d.Q), g->A.in = a->qb;
    g->B = KD_M2G_OP_C(a), g->B.in = a->in.Cm;
    g->C = kd_m2g_op_head(a, N), g->C.out = a->tdb;
})
// dgb: dC (q,N) = dG B, straight into dC's rows (overwritten).
KD_M2G_GEMM(kd_m2g_g_dgb, 0.0f, 0, 0, q, N, q, {
    g->A = kd_m2g_op_block(a, a->d.Q, a->d.Q), g->A.in = a->qb;
    g->B = KD_M2G_OP_B(a), g->B.in = a->in.Bm;
    g->C = kd_m2g_op_rows(a, a->g.ldc, N, 1), g->C.out = a->g.dC;
})
// dcs: dC (q,N) += (e dy) S, e dy in tp, S the forward's states.
KD_M2G_GEMM(kd_m2g_g_dcs, 1.0f, 0, 0, q, N, P, {
    g->A = kd_m2g_op_head(a, P), g->A.in = a->tp;
    g->B = kd_m2g_op_block(a, P, N), g->B.in = a->st;
    g->C = kd_m2g_op_rows(a, a->g.ldc, N, 1), g->C.out = a->g.dC;
})

// ============================================================================ elementwise bodies

// Index idx of a (B,H,T,w) buffer: its token t, row b, bh = b*H+h and r = bh*T+t.
typedef struct {
    size_t b, bh, r;
    int h, t, col;
} kd_m2g_tok;
KD_HD static inline kd_m2g_tok kd_m2g_tok_of(const kd_m2g_ssd *a, size_t idx, int w) {
    kd_m2g_tok k;
    k.col = (int)(idx % (size_t)w), k.r = idx / w, k.bh = k.r / a->in.T;
    k.t = (int)(k.r % (size_t)a->in.T), k.b = k.bh / a->d.H, k.h = (int)(k.bh % (size_t)a->d.H);
    return k;
}

// Entry (i,j) of the Q x Q block that idx of a (B,H,nc,Q,Q) buffer lies in: 1 when both are
// inside the chunk and j is a key visible to query i (j <= i, same document), with
// E = exp(c_i - c_j) and dt_j; 0 otherwise.
KD_HD static inline int kd_m2g_qq_at(const kd_m2g_ssd *a, size_t idx, float *E, float *dtj) {
    const int Q = a->d.Q, j = (int)(idx % (size_t)Q), i = (int)(idx / Q % (size_t)Q);
    const size_t bhc = idx / ((size_t)Q * Q), bh = bhc / a->nc, b = bh / a->d.H;
    const kd_m2g_chunk k = kd_m2g_chunk_of(a, b, (int)(bhc % (size_t)a->nc));
    if (i >= k.q || j > i || k.t0 + j < a->lr[b * a->in.T + k.t0 + i]) return 0;
    const size_t o = bh * a->in.T + k.t0;
    *E = (float)exp(a->cum[o + i] - a->cum[o + j]);
    *dtj = a->dt[o + j];
    return 1;
}

// Forward. tp[b,h,t,p] = wpass_t x_t[p]: the rows that sloc multiplies by B.
KD_HD static inline void kd_m2g_ssd_xw(size_t idx, const kd_m2g_ssd *a) {
    const kd_m2g_tok k = kd_m2g_tok_of(a, idx, a->d.P);
    const kd_m2g_chunk c = kd_m2g_chunk_of(a, k.b, k.t / a->d.Q);
    const int kv = k.h / kd_m2g_rep(a);
    a->tp[idx] = kd_m2g_wpass(a, k.bh, c, k.t - c.t0) * kd_m2g_x(a, k.b, k.t, kv)[k.col];
}
// qa: G -> M = G E dt_j on visible entries, 0 elsewhere (in place).
KD_HD static inline void kd_m2g_ssd_mmat(size_t idx, const kd_m2g_ssd *a) {
    float E, dtj;
    a->qa[idx] = kd_m2g_qq_at(a, idx, &E, &dtj) ? a->qa[idx] * E * dtj : 0.0f;
}
// y[b,t,h,p] (= the intra-chunk sum from mx) += e_t T1[p] for tokens whose document began
// before the chunk (T1 = C S^T in tp, e_t = exp(c_t)), then += D x.
KD_HD static inline void kd_m2g_ssd_yfin(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, H = a->d.H, T = a->in.T, p = (int)(idx % (size_t)P);
    const int h = (int)(idx / P % (size_t)H), kv = h / kd_m2g_rep(a);
    const size_t r = idx / ((size_t)P * H), b = r / T, bh = b * H + h;
    const int t = (int)(r % (size_t)T), t0 = t / a->d.Q * a->d.Q;
    float v = a->y[idx];
    if (a->lr[r] < t0) v += (float)exp(a->cum[bh * T + t]) * a->tp[(bh * T + t) * P + p];
    a->y[idx] = v + a->in.D[h] * kd_m2g_x(a, b, t, kv)[p];
}

// Backward. tp[b,h,t,p] = e_t dy_t[p], e_t = exp(c_t) for tokens whose document began before
// the chunk, else 0: the rows of gout and dcs.
KD_HD static inline void kd_m2g_ssd_edy(size_t idx, const kd_m2g_ssd *a) {
    const kd_m2g_tok k = kd_m2g_tok_of(a, idx, a->d.P);
    const int t0 = k.t / a->d.Q * a->d.Q;
    const float e = a->lr[k.b * a->in.T + k.t] < t0 ? (float)exp(a->cum[k.r]) : 0.0f;
    a->tp[idx] = e * kd_m2g_dy(a, k.b, k.t, k.h)[k.col];
}
// Token i of (b,h) in its chunk (G in qa, dM = dy x^T in qb, T1 = C S^T in tq1, U = B dS^T
// in tq2): its own part of dcum and ddt (double), and df_i, its share of the last token's
// dcum (added by ssd_chunk). With R[i,j] = dM[i,j] M[i,j]:
//   dcum_i = sum_{j<=i} R[i,j] - sum_{i'>=i} R[i',i] + e_i dy_i.T1_i - df_i
//   ddt_i  = sum_{i'>=i} dM[i',i] G[i',i] E[i',i] + f_i xu_i,  df_i = f_i dt_i xu_i
// over visible pairs, f_i = exp(c_last-c_i), xu_i = x_i.U_i (tokens that reach the chunk end).
KD_HD static inline void kd_m2g_ssd_gtok(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, T = a->in.T, Q = a->d.Q;
    const kd_m2g_tok k = kd_m2g_tok_of(a, idx, 1);
    const int t = k.t, c = t / Q, kv = k.h / kd_m2g_rep(a);
    const kd_m2g_chunk ch = kd_m2g_chunk_of(a, k.b, c);
    const int i = t - ch.t0, l = a->lr[k.b * T + t];
    const size_t o = k.bh * T + ch.t0, blk = (k.bh * a->nc + c) * (size_t)Q * Q;
    const float *G = a->qa + blk, *dM = a->qb + blk, *dt = a->dt + o;
    const double *cum = a->cum + o;
    double dcum = 0.0, ddt = 0.0, df = 0.0;
    for (int j = l > ch.t0 ? l - ch.t0 : 0; j <= i; j++) {
        const float E = (float)exp(cum[i] - cum[j]);
        dcum += (double)dM[i * Q + j] * (G[i * Q + j] * E * dt[j]);
    }
    for (int i2 = i; i2 < ch.q && t >= a->lr[k.b * T + ch.t0 + i2]; i2++) {
        const float E = (float)exp(cum[i2] - cum[i]), g = G[i2 * Q + i], dm = dM[i2 * Q + i];
        dcum -= (double)dm * (g * E * dt[i]);
        ddt += (double)dm * g * E;
    }
    if (l < ch.t0) {
        const float *T1 = a->tq1 + idx * P, *dyi = kd_m2g_dy(a, k.b, t, k.h);
        double dot = 0.0;
        for (int p = 0; p < P; p++) dot += (double)dyi[p] * T1[p];
        dcum += (float)exp(cum[i]) * dot;
    }
    if (t >= ch.lrl) {
        const float *U = a->tq2 + idx * P, *xi = kd_m2g_x(a, k.b, t, kv);
        double xu = 0.0;
        for (int p = 0; p < P; p++) xu += (double)xi[p] * U[p];
        const float f = (float)exp(cum[ch.q - 1] - cum[i]);
        ddt += f * xu;
        df = f * dt[i] * xu;
        dcum -= df;
    }
    a->dcum[idx] = dcum, a->ddt[idx] = ddt, a->df[idx] = df;
}
// qa: G -> M = G E dt_j and qb: dM -> dG = dM E dt_j on visible entries, 0 elsewhere.
KD_HD static inline void kd_m2g_ssd_mdg(size_t idx, const kd_m2g_ssd *a) {
    float E, dtj;
    const int vis = kd_m2g_qq_at(a, idx, &E, &dtj);
    a->qa[idx] = vis ? a->qa[idx] * E * dtj : 0.0f;
    a->qb[idx] = vis ? a->qb[idx] * E * dtj : 0.0f;
}
// Shared body of dx and dB: out[b,t,kv,i] = sum over the heads h of kv, in order, of
// (with_D ? D_h dy[b,t,h,i] : 0) + t1[b,h,t,i] + (visible ? wpass * t2[b,h,t,i] : 0),
// where t1 and t2 are (B,H,T,W) and out is rows of ld floats.
KD_HD static inline void kd_m2g_kv_fin(size_t idx, const kd_m2g_ssd *a, int W, int with_D,
                                       const float *t1, const float *t2, float *out, int ld) {
    const int H = a->d.H, T = a->in.T, rep = kd_m2g_rep(a);
    const kd_m2g_rowix e = kd_m2g_rowix_of(idx, W, a->d.n_kv, T);
    const kd_m2g_chunk k = kd_m2g_chunk_of(a, e.b, e.t / a->d.Q);
    float acc = 0.0f;
    for (int h = e.g * rep; h < (e.g + 1) * rep; h++) {
        const size_t bh = e.b * H + h, o = (bh * T + e.t) * W + e.i;
        if (with_D) acc += a->in.D[h] * kd_m2g_dy(a, e.b, e.t, h)[e.i];
        acc += t1[o];
        if (e.t >= k.lrl) acc += kd_m2g_wpass(a, bh, k, e.t - k.t0) * t2[o];
    }
    out[e.r * (size_t)ld + (size_t)e.g * W + e.i] = acc;
}
// dx[b,t,kv,p]: D_h dy + (M^T dy, in tq1) + wpass U (in tq2), summed over kv's heads.
KD_HD static inline void kd_m2g_ssd_dxfin(size_t idx, const kd_m2g_ssd *a) {
    kd_m2g_kv_fin(idx, a, a->d.P, 1, a->tq1, a->tq2, a->g.dx, a->g.ldx);
}
// dB[b,t,kv,n]: (dG^T C, in tdb) + wpass V (in tn), summed over kv's heads.
KD_HD static inline void kd_m2g_ssd_dBfin(size_t idx, const kd_m2g_ssd *a) {
    kd_m2g_kv_fin(idx, a, a->d.N, 0, a->tdb, a->tn, a->g.dB, a->g.ldb);
}

// ============================================================================ launch plans
// Launch order of each op: STAGE(body, grid size, a) as in mamba2_grid.h, and GEMM(builder, a)
// for one batched product over every (b, h, chunk) (both parts of kd_m2g_gemm_part).
#define KD_M2G_BHT(a) ((size_t)(a).in.B * (a).d.H * (a).in.T)
#define KD_M2G_BHQQ(a) ((size_t)(a).in.B * (a).d.H * (a).nc * (a).d.Q * (a).d.Q)
#define KD_M2G_BHPN(a) ((size_t)(a).in.B * (a).d.H * (a).d.P * (a).d.N)
// Both directions start with each sequence's document resets (last_reset) and the dt cumsums.
#define KD_M2G_SSD_PREP_PLAN(STAGE, a)                                                         \
    STAGE(kd_m2g_ssd_lr, (size_t)(a).in.B, a)                                                  \
    STAGE(kd_m2g_ssd_dt_cum, (size_t)(a).in.B * (a).d.H * (a).nc, a)
// Forward: states (sloc GEMM, then the recurrence), y = M x, then the state and D terms.
#define KD_M2G_SSD_FWD_GEMM_PLAN(STAGE, GEMM, a)                                               \
    KD_M2G_SSD_PREP_PLAN(STAGE, a)                                                             \
    STAGE(kd_m2g_ssd_xw, KD_M2G_BHT(a) * (a).d.P, a)                                           \
    GEMM(kd_m2g_g_sloc, a)                                                                     \
    STAGE(kd_m2g_ssd_pass, KD_M2G_BHPN(a), a)                                                  \
    GEMM(kd_m2g_g_cb, a)                                                                       \
    STAGE(kd_m2g_ssd_mmat, KD_M2G_BHQQ(a), a)                                                  \
    GEMM(kd_m2g_g_mx, a)                                                                       \
    GEMM(kd_m2g_g_cs, a)                                                                       \
    STAGE(kd_m2g_ssd_yfin, KD_M2G_BHT(a) * (a).d.P, a)
// Backward: state gradients (gout GEMM, reverse recurrence), the products the per-token
// gradient parts need, dt and parameter gradients, then dx, dB, dC.
#define KD_M2G_SSD_BWD_GEMM_PLAN(STAGE, GEMM, a)                                               \
    KD_M2G_SSD_PREP_PLAN(STAGE, a)                                                             \
    STAGE(kd_m2g_ssd_edy, KD_M2G_BHT(a) * (a).d.P, a)                                          \
    GEMM(kd_m2g_g_gout, a)                                                                     \
    STAGE(kd_m2g_ssd_dpass, KD_M2G_BHPN(a), a)                                                 \
    GEMM(kd_m2g_g_cb, a)                                                                       \
    GEMM(kd_m2g_g_dyx, a)                                                                      \
    GEMM(kd_m2g_g_cst, a)                                                                      \
    GEMM(kd_m2g_g_bds, a)                                                                      \
    GEMM(kd_m2g_g_xds, a)                                                                      \
    STAGE(kd_m2g_ssd_gtok, KD_M2G_BHT(a), a)                                                   \
    STAGE(kd_m2g_ssd_chunk, (size_t)(a).in.B * (a).d.H * (a).nc, a)                            \
    STAGE(kd_m2g_ssd_params, (size_t)(a).d.H, a)                                               \
    STAGE(kd_m2g_ssd_mdg, KD_M2G_BHQQ(a), a)                                                   \
    GEMM(kd_m2g_g_mtdy, a)                                                                     \
    GEMM(kd_m2g_g_dgtc, a)                                                                     \
    GEMM(kd_m2g_g_dgb, a)                                                                      \
    GEMM(kd_m2g_g_dcs, a)                                                                      \
    STAGE(kd_m2g_ssd_dxfin, (size_t)(a).in.B * (a).in.T * (a).d.n_kv * (a).d.P, a)             \
    STAGE(kd_m2g_ssd_dBfin, (size_t)(a).in.B * (a).in.T * (a).d.n_kv * (a).d.N, a)
