// test_mamba2_grid.c: the per-thread bodies of the CUDA Mamba-2 kernels
// (kernels/mamba2_grid.h), run on the host over their whole grids, stage by stage in the
// order kernels/cuda/mamba2*.cu launches them, give what the CPU backend's ops give: conv
// (fwd, conv_state, bwd), the chunked SSD (y, states, final state, every gradient), scan_ref,
// gated norm (fwd, bwd) and the MOHAWK matrix (fwd, bwd). Shapes cover T not a multiple of Q,
// document boundaries (seg), n_kv < H, an initial state, and x/B/C/dt (and their gradients)
// as strided column slices of wider rows. Gradient buffers start non-zero: activation
// gradients must be overwritten (padding columns untouched), parameter gradients accumulate.
// Every stage is also run with its grid walked backwards and must give bitwise the same
// results (a GPU runs a stage's threads in any order), and a CUDA build's table must hold
// every Mamba-2 op. The SSD runs its GEMM launch plans (kernels/mamba2_grid_ssd_gemm.h): the
// GEMM steps through the same descriptors the .cu gives cuBLAS, executed by naive host loops
// (bgemm_host.h), row-major and again in the column-major form (bitwise equal), every call
// within cuBLAS's leading-dimension rule; a negative check makes each GEMM step's lda one
// short in turn and requires the results to move by more than 1e-2.
// Tolerance 1e-5 norm-wise relative (||a-b||/||b||) for every value and gradient: both sides
// are float32 with double accumulators in the same places but sum in different orders
// (sgemm vs plain loops, vectorised vs libm exp), which gives ~1e-7 (seen <= 2e-7, the
// accumulated parameter gradients being the largest); a wrong mask, decay or index gives
// errors above 1e-2 (the "without seg" checks show that the comparison sees masks).
// Untouched padding and unused slices must be bitwise equal (tolerance 0).
#include "kernels/mamba2_grid_ssd_gemm.h"
#include "bgemm_host.h"
#include "grid_host.h"
#include "test_mamba2_util.h"

// One counted check: a and b (n floats) are bitwise equal.
static void same(const char *what, const float *a, const float *b, size_t n) {
    int eq = memcmp(a, b, n * sizeof(float)) == 0;
    printf("  %-52s %s\n", what, eq ? "bitwise equal" : "DIFFER  FAIL");
    CHECK(eq, "%s: the grid run backwards differs from the forward-order run", what);
}

// One counted check: rel_err(got, want) <= tol, printed with its tolerance; on failure the
// worst element is named too.
static void cmp(const char *what, const float *got, const float *want, size_t n, double tol) {
    double e = rel_err(got, want, n);
    printf("  %-52s rel err %.2e (tol %.0e)%s\n", what, e, tol, e <= tol ? "" : "  FAIL");
    size_t worst = 0;
    double wd = -1;
    for (size_t i = 0; i < n; i++) {
        double dd = fabs((double)got[i] - want[i]);
        if (dd > wd || dd != dd) wd = dd, worst = i;
    }
    CHECK(e <= tol, "%s: relative error %.3g > %.1g (worst [%zu]: got %.9g, want %.9g)", what, e,
          tol, worst, n ? got[worst] : 0.0f, n ? want[worst] : 0.0f);
}

// Columns [c0,c0+w) of rows (rows, ld), copied out contiguously (caller frees).
static float *cols(const float *x, size_t rows, int ld, int c0, int w) {
    float *y = kd_malloc(rows * w * sizeof(float) + 1);
    for (size_t r = 0; r < rows; r++) memcpy(y + r * w, x + r * ld + c0, w * sizeof(float));
    return y;
}
// Compares columns [c0,c0+w) of two (rows, ld) buffers.
static void cmp_cols(const char *what, const float *got, const float *want, size_t rows, int ld,
                     int c0, int w, double tol) {
    float *a = cols(got, rows, ld, c0, w), *b = cols(want, rows, ld, c0, w);
    cmp(what, a, b, rows * w, tol);
    free(a), free(b);
}

static float *fdup(const float *x, size_t n) {
    float *y = kd_malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}
static float *frand(size_t n, float lo, float hi) {
    float *x = kd_malloc(n * sizeof(float));
    fill(x, n, lo, hi);
    return x;
}

// ============================================================================ the .cu sequences
// Each sets up its op's arguments as kernels/cuda/mamba2*.cu does and runs the op's launch
// plan, the one the .cu launches, on the host.

static void grid_conv_fwd(float *out, float *conv_state, const float *inp, int ld_in,
                          const float *w, const float *bias, const int32_t *seg, int B, int T,
                          int CD, int W, void *scratch) {
    kd_m2g_conv a;
    memset(&a, 0, sizeof a);
    a.out = out, a.conv_state = conv_state, a.inp = inp, a.w = w, a.bias = bias, a.seg = seg;
    a.ld_in = ld_in, a.B = B, a.T = T, a.CD = CD, a.W = W;
    kd_m2g_conv_bind(&a, scratch);
    KD_M2G_CONV_FWD_PLAN(HOST_STAGE, a)
}

static void grid_conv_bwd(float *dinp, int ld_dinp, float *dw, float *dbias, const float *dout,
                          const float *inp, int ld_in, const float *w, const float *bias,
                          const int32_t *seg, int B, int T, int CD, int W, void *scratch) {
    kd_m2g_conv a;
    memset(&a, 0, sizeof a);
    a.dinp = dinp, a.dw = dw, a.dbias = dbias, a.dout = dout, a.inp = inp, a.w = w;
    a.bias = bias, a.seg = seg, a.ld_in = ld_in, a.ld_dinp = ld_dinp;
    a.B = B, a.T = T, a.CD = CD, a.W = W;
    kd_m2g_conv_bind(&a, scratch);
    KD_M2G_CONV_BWD_PLAN(HOST_STAGE, a)
}

// One GEMM step of an SSD plan: both parts (full chunks, partial last chunk) through the host
// executor (bgemm_host.h). Steps are counted from 1 per plan run; g_bad_step names one whose
// lda is made one short (a deliberate indexing mistake, for the negative checks), and every
// step's column-major form must satisfy cuBLAS's leading-dimension rule (g_bad_lds counts
// violations).
static int g_gemm_step = 0, g_bad_step = 0, g_bad_lds = 0;
static void host_gemm(kd_m2g_gemm_fn f, const kd_m2g_ssd *a) {
    g_gemm_step++;
    for (int part = 0; part < 2; part++) {
        kd_bgemm g;
        f(&g, a, part);
        if (!kd_bgemm_count(&g)) continue;
        if (g_gemm_step == g_bad_step) g.A.ld -= 1;
        const kd_bgemm_cm c = kd_bgemm_colmajor(&g);
        g_bad_lds += !kd_bgemm_cm_valid(&c);
        host_bgemm(&g);
    }
}
#define HOST_GEMM(f, a) host_gemm(f, &(a));

static void grid_ssd_fwd(float *y, float *states, float *final_state, const float *init_state,
                         const kd_mamba2_in *in, const kd_mamba2_dims *d, void *scratch) {
    kd_m2g_ssd a;
    memset(&a, 0, sizeof a);
    a.in = *in, a.d = *d;
    kd_m2g_ssd_bind(&a, scratch);
    a.y = y, a.final_state = final_state, a.init_state = init_state;
    a.states = states ? states : a.sbuf;
    g_gemm_step = 0;
    KD_M2G_SSD_FWD_GEMM_PLAN(HOST_STAGE, HOST_GEMM, a)
}

static void grid_ssd_bwd(const kd_mamba2_grad *g, const float *dy, const float *states,
                         const kd_mamba2_in *in, const kd_mamba2_dims *d, void *scratch) {
    kd_m2g_ssd a;
    memset(&a, 0, sizeof a);
    a.in = *in, a.d = *d;
    kd_m2g_ssd_bind(&a, scratch);
    a.g = *g, a.dy = dy, a.st = states;
    g_gemm_step = 0;
    KD_M2G_SSD_BWD_GEMM_PLAN(HOST_STAGE, HOST_GEMM, a)
}

static void grid_scan_ref(float *y, float *final_state, const float *init_state,
                          const kd_mamba2_in *in, const kd_mamba2_dims *d, void *scratch) {
    kd_m2g_ssd a;
    memset(&a, 0, sizeof a);
    a.in = *in, a.d = *d;
    kd_m2g_ssd_bind(&a, scratch);
    a.y = y, a.final_state = final_state, a.init_state = init_state;
    KD_M2G_SCAN_REF_PLAN(HOST_STAGE, a)
}

static void grid_mat_fwd(float *M, const kd_mamba2_in *in, const kd_mamba2_dims *d, void *scratch) {
    kd_m2g_mat a;
    memset(&a, 0, sizeof a);
    a.in = *in, a.d = *d;
    kd_m2g_mat_bind(&a, scratch);
    a.M = M;
    KD_M2G_MAT_FWD_PLAN(HOST_STAGE, a)
}

static void grid_mat_bwd(const kd_mamba2_grad *g, const float *dM, const kd_mamba2_in *in,
                         const kd_mamba2_dims *d, void *scratch) {
    kd_m2g_mat a;
    memset(&a, 0, sizeof a);
    a.in = *in, a.d = *d;
    kd_m2g_mat_bind(&a, scratch);
    a.dM = dM, a.g = *g;
    KD_M2G_MAT_BWD_PLAN(HOST_STAGE, a)
}

// ============================================================================ conv

static void test_conv(int B, int T, int CD, int W, int with_seg, int with_bias) {
    const int ld_in = CD + 5, ld_d = CD + 3;
    const size_t nin = (size_t)B * T * ld_in, nout = (size_t)B * T * CD;
    const size_t nst = (size_t)B * CD * (W - 1), nd = (size_t)B * T * ld_d;
    int32_t *seg = with_seg ? make_seg(B, T) : NULL;
    float *inp = frand(nin, -1, 1), *w = frand((size_t)CD * W, -0.6f, 0.6f);
    float *bias = with_bias ? frand(CD, -0.2f, 0.2f) : NULL;
    float *o1 = frand(nout, -9, 9), *o2 = fdup(o1, nout);
    float *s1 = frand(nst, -9, 9), *s2 = fdup(s1, nst);
    kd_scratch ws = host_scratch(kd_cpu_mamba2_conv_scratch(NULL, B, T, CD, W));
    void *gs = kd_malloc(kd_m2g_conv_scratch(B, T, CD) + 1);
    kd_cpu_mamba2_conv_fwd(NULL, o2, s2, inp, ld_in, w, bias, seg, B, T, CD, W, ws);
    grid_conv_fwd(o1, s1, inp, ld_in, w, bias, seg, B, T, CD, W, gs);
    printf("conv B=%d T=%d CD=%d W=%d seg=%d bias=%d\n", B, T, CD, W, with_seg, with_bias);
    cmp("conv_fwd out", o1, o2, nout, 1e-5);
    cmp("conv_fwd conv_state", s1, s2, nst, 1e-6);

    float *dout = frand(nout, -1, 1);
    float *di1 = frand(nd, -9, 9), *di2 = fdup(di1, nd);
    float *dw1 = frand((size_t)CD * W, -1, 1), *dw2 = fdup(dw1, (size_t)CD * W);
    float *db1 = frand(CD, -1, 1), *db2 = fdup(db1, CD);
    kd_cpu_mamba2_conv_bwd(NULL, di2, ld_d, dw2, db2, dout, inp, ld_in, w, bias, seg, B, T, CD, W,
                           ws);
    float *di3 = fdup(di1, nd), *dw3 = fdup(dw1, (size_t)CD * W), *db3 = fdup(db1, CD);
    grid_conv_bwd(di1, ld_d, dw1, db1, dout, inp, ld_in, w, bias, seg, B, T, CD, W, gs);
    cmp_cols("conv_bwd dinp", di1, di2, (size_t)B * T, ld_d, 0, CD, 1e-5);
    cmp_cols("conv_bwd dinp padding untouched", di1, di2, (size_t)B * T, ld_d, CD, ld_d - CD, 0);
    cmp("conv_bwd dw (accumulated)", dw1, dw2, (size_t)CD * W, 1e-5);
    cmp("conv_bwd dbias (accumulated)", db1, db2, CD, 1e-5);
    g_reverse = 1; // o2, s2 are no longer needed: the reverse-order forward goes there
    grid_conv_fwd(o2, s2, inp, ld_in, w, bias, seg, B, T, CD, W, gs);
    grid_conv_bwd(di3, ld_d, dw3, db3, dout, inp, ld_in, w, bias, seg, B, T, CD, W, gs);
    g_reverse = 0;
    same("conv_fwd out, grid backwards", o2, o1, nout);
    same("conv_fwd conv_state, grid backwards", s2, s1, nst);
    same("conv_bwd dinp, grid backwards", di3, di1, nd);
    same("conv_bwd dw, grid backwards", dw3, dw1, (size_t)CD * W);
    same("conv_bwd dbias, grid backwards", db3, db1, CD);
    free(di3), free(dw3), free(db3);
    free(seg), free(inp), free(w), free(bias), free(o1), free(o2), free(s1), free(s2), free(dout);
    free(di1), free(di2), free(dw1), free(dw2), free(db1), free(db2), free(ws.p), free(gs);
}

// ============================================================================ gated norm

static void test_gnorm(int N, int D, int G) {
    const int ldz = D + 7, lddz = D + 3;
    const size_t nd = (size_t)N * D, nz = (size_t)N * ldz, ndz = (size_t)N * lddz;
    const size_t nr = (size_t)N * (D / G);
    float *y = frand(nd, -2, 2), *z = frand(nz, -3, 3), *w = frand(D, 0.5f, 1.5f);
    float *o1 = frand(nd, -9, 9), *o2 = fdup(o1, nd), *r1 = frand(nr, -9, 9), *r2 = fdup(r1, nr);
    kd_m2g_gnorm a;
    memset(&a, 0, sizeof a);
    a.out = o1, a.rstd = r1, a.y = y, a.z = z, a.w = w, a.ldz = ldz, a.N = N, a.D = D, a.G = G;
    a.eps = 1e-5f;
    KD_M2G_GNORM_FWD_PLAN(HOST_STAGE, a)
    kd_cpu_mamba2_gnorm_fwd(NULL, o2, r2, y, z, ldz, w, N, D, G, 1e-5f);
    printf("gnorm N=%d D=%d G=%d\n", N, D, G);
    cmp("gnorm_fwd out", o1, o2, nd, 1e-5);
    cmp("gnorm_fwd rstd", r1, r2, nr, 1e-5);

    float *dout = frand(nd, -1, 1), *dy1 = frand(nd, -9, 9), *dy2 = fdup(dy1, nd);
    float *dz1 = frand(ndz, -9, 9), *dz2 = fdup(dz1, ndz);
    float *dw1 = frand(D, -1, 1), *dw2 = fdup(dw1, D);
    kd_m2g_gnorm b;
    memset(&b, 0, sizeof b);
    b.dy = dy1, b.dz = dz1, b.dw = dw1, b.dout = dout, b.y = y, b.z = z, b.w = w, b.rstd_in = r2;
    b.ldz = ldz, b.lddz = lddz, b.N = N, b.D = D, b.G = G;
    float *dy3 = fdup(dy1, nd), *dz3 = fdup(dz1, ndz), *dw3 = fdup(dw1, D);
    KD_M2G_GNORM_BWD_PLAN(HOST_STAGE, b)
    kd_cpu_mamba2_gnorm_bwd(NULL, dy2, dz2, lddz, dw2, dout, y, z, ldz, w, r2, N, D, G);
    cmp("gnorm_bwd dy", dy1, dy2, nd, 1e-5);
    cmp_cols("gnorm_bwd dz", dz1, dz2, N, lddz, 0, D, 1e-5);
    cmp_cols("gnorm_bwd dz padding untouched", dz1, dz2, N, lddz, D, lddz - D, 0);
    cmp("gnorm_bwd dw (accumulated)", dw1, dw2, D, 1e-5);
    g_reverse = 1;
    b.dy = dy3, b.dz = dz3, b.dw = dw3; // same rstd_in (r2) as the forward-order run
    KD_M2G_GNORM_BWD_PLAN(HOST_STAGE, b)
    a.out = o2, a.rstd = r2; // o2, r2 are no longer needed
    KD_M2G_GNORM_FWD_PLAN(HOST_STAGE, a)
    g_reverse = 0;
    same("gnorm_fwd out, grid backwards", o2, o1, nd);
    same("gnorm_fwd rstd, grid backwards", r2, r1, nr);
    same("gnorm_bwd dy, grid backwards", dy3, dy1, nd);
    same("gnorm_bwd dz, grid backwards", dz3, dz1, ndz);
    same("gnorm_bwd dw, grid backwards", dw3, dw1, D);
    free(dy3), free(dz3), free(dw3);
    free(y), free(z), free(w), free(o1), free(o2), free(r1), free(r2), free(dout), free(dy1);
    free(dy2), free(dz1), free(dz2), free(dw1), free(dw2);
}

// ============================================================================ SSD inputs
// x, B, C are column slices of one xbc buffer (B,T,ld) with padding, dt of (B,T,lddt); the
// gradients are slices of a dxbc buffer with other strides, pre-filled with garbage.
typedef struct {
    float *xbc, *dt, *params; // params: dt_bias, A_log, D (H each)
    int ld, lddt;
    kd_mamba2_in in;
} m2_case;

static m2_case make_case(const kd_mamba2_dims *d, int B, int T, const int32_t *seg) {
    m2_case c;
    const int dxb = d->n_kv * d->P, H = d->H;
    c.ld = 2 * dxb + H * d->N + 5;
    c.lddt = H + 3;
    c.xbc = frand((size_t)B * T * c.ld, -1, 1);
    c.dt = frand((size_t)B * T * c.lddt, -3, 1);
    c.params = kd_malloc(3 * (size_t)H * sizeof(float));
    for (int h = 0; h < H; h++) {
        c.params[h] = -0.5f + urand();
        c.params[H + h] = logf(1.0f + 7.0f * urand());
        c.params[2 * H + h] = 0.5f + urand();
    }
    kd_mamba2_in in = {c.xbc,    c.xbc + dxb,  c.xbc + 2 * dxb,  c.dt, c.ld, c.ld, c.ld, c.lddt,
                       c.params, c.params + H, c.params + 2 * H, seg,  B,    T};
    c.in = in;
    return c;
}

// A gradient set over one garbage-filled buffer (B,T,ld) + (B,T,lddt) + 3H parameters.
typedef struct {
    float *buf;
    size_t n;
    kd_mamba2_grad g;
} m2_grad;

static m2_grad make_grad(const kd_mamba2_dims *d, int B, int T) {
    m2_grad r;
    const int dxb = d->n_kv * d->P, H = d->H, ld = 2 * dxb + H * d->N + 2, lddt = H + 1;
    const size_t nx = (size_t)B * T * ld, ndt = (size_t)B * T * lddt;
    r.n = nx + ndt + 3 * (size_t)H;
    r.buf = frand(r.n, -9, 9);
    float *p = r.buf + nx + ndt;
    kd_mamba2_grad g = {r.buf, r.buf + dxb, r.buf + 2 * dxb, r.buf + nx, ld, ld, ld,
                        lddt,  p,           p + H,           p + 2 * H};
    r.g = g;
    return r;
}
static m2_grad grad_dup(const m2_grad *a) {
    m2_grad r = *a;
    r.buf = fdup(a->buf, a->n);
    ptrdiff_t off = r.buf - a->buf;
    r.g.dx += off, r.g.dB += off, r.g.dC += off, r.g.ddt += off;
    r.g.ddt_bias += off, r.g.dA_log += off, r.g.dD += off;
    return r;
}

// Compares two gradient sets piece by piece: dx (or, for mat_bwd, dx untouched), dB, dC,
// ddt, the padding columns (untouched: exactly equal), and the accumulated parameters.
static void cmp_grads(const char *op, const m2_grad *a, const m2_grad *b, const kd_mamba2_dims *d,
                      int B, int T, int dx_unused) {
    const size_t rows = (size_t)B * T;
    const int dxb = d->n_kv * d->P, ld = a->g.ldx, used = 2 * dxb + d->H * d->N, H = d->H;
    char what[96];
#define M2_CMP_COLS(name, c0, w, tol, base, ldb)                                                   \
    do {                                                                                           \
        snprintf(what, sizeof what, "%s %s", op, name);                                            \
        cmp_cols(what, a->base, b->base, rows, ldb, c0, w, tol);                                   \
    } while (0)
    M2_CMP_COLS(dx_unused ? "dx untouched" : "dx (kv slices, strided)", 0, dxb,
                dx_unused ? 0.0 : 1e-5, buf, ld);
    M2_CMP_COLS("dB (kv slices, strided)", dxb, dxb, 1e-5, buf, ld);
    M2_CMP_COLS("dC (strided)", 2 * dxb, d->H * d->N, 1e-5, buf, ld);
    M2_CMP_COLS("padding of dx|dB|dC untouched", used, ld - used, 0.0, buf, ld);
    M2_CMP_COLS("ddt (strided)", 0, H, 1e-5, g.ddt, a->g.lddt);
    M2_CMP_COLS("padding of ddt untouched", H, a->g.lddt - H, 0.0, g.ddt, a->g.lddt);
#undef M2_CMP_COLS
    snprintf(what, sizeof what, "%s ddt_bias (accumulated)", op);
    cmp(what, a->g.ddt_bias, b->g.ddt_bias, H, 1e-5);
    snprintf(what, sizeof what, "%s dA_log (accumulated)", op);
    cmp(what, a->g.dA_log, b->g.dA_log, H, 1e-5);
    snprintf(what, sizeof what, "%s dD (accumulated)", op);
    cmp(what, a->g.dD, b->g.dD, H, 1e-5);
}

// ============================================================================ SSD

static void test_ssd(kd_mamba2_dims d, int B, int T, int with_seg, int with_init) {
    int32_t *seg = with_seg ? make_seg(B, T) : NULL;
    m2_case c = make_case(&d, B, T, seg);
    const int nc = kd_m2g_nchunks(T, d.Q);
    const size_t ny = (size_t)B * T * d.H * d.P, ns = (size_t)B * d.H * d.P * d.N;
    float *init = with_init ? frand(ns, -1, 1) : NULL;
    float *y1 = frand(ny, -9, 9), *y2 = fdup(y1, ny), *y3 = fdup(y1, ny), *y4 = fdup(y1, ny);
    float *st1 = frand(ns * nc, -9, 9), *st2 = fdup(st1, ns * nc);
    float *f1 = frand(ns, -9, 9), *f2 = fdup(f1, ns), *f3 = fdup(f1, ns), *f4 = fdup(f1, ns);
    kd_scratch ws = host_scratch(kd_cpu_mamba2_ssd_scratch(NULL, &d, B, T));
    void *gs = kd_malloc(kd_m2g_ssd_scratch(&d, B, T));
    printf("ssd H=%d n_kv=%d P=%d N=%d Q=%d B=%d T=%d seg=%d init=%d\n", d.H, d.n_kv, d.P, d.N, d.Q,
           B, T, with_seg, with_init);
    grid_ssd_fwd(y1, st1, f1, init, &c.in, &d, gs);
    kd_cpu_mamba2_ssd_fwd(NULL, y2, st2, f2, init, &c.in, &d, ws);
    cmp("ssd_fwd y", y1, y2, ny, 1e-5);
    cmp("ssd_fwd states (entering each chunk)", st1, st2, ns * nc, 1e-5);
    cmp("ssd_fwd final_state", f1, f2, ns, 1e-5);
    grid_ssd_fwd(y3, NULL, NULL, init, &c.in, &d, gs); // states in scratch, no final state
    cmp("ssd_fwd y (states NULL)", y3, y2, ny, 1e-5);
    grid_scan_ref(y3, f3, init, &c.in, &d, gs);
    kd_cpu_mamba2_scan_ref(NULL, y4, f4, init, &c.in, &d, ws);
    cmp("scan_ref y", y3, y4, ny, 1e-5);
    cmp("scan_ref final_state", f3, f4, ns, 1e-5);

    float *dy = frand(ny, -1, 1);
    m2_grad g1 = make_grad(&d, B, T), g2 = grad_dup(&g1), g3 = grad_dup(&g1), g4 = grad_dup(&g1);
    grid_ssd_bwd(&g1.g, dy, st1, &c.in, &d, gs);
    kd_cpu_mamba2_ssd_bwd(NULL, &g2.g, dy, st2, &c.in, &d, ws);
    cmp_grads("ssd_bwd", &g1, &g2, &d, B, T, 0);

    g_reverse = 1; // y2, st2, f2 and g2 are no longer needed
    grid_ssd_fwd(y2, st2, f2, init, &c.in, &d, gs);
    grid_ssd_bwd(&g3.g, dy, st1, &c.in, &d, gs);
    g_reverse = 0;
    same("ssd_fwd y, grid backwards", y2, y1, ny);
    same("ssd_fwd states, grid backwards", st2, st1, ns * nc);
    same("ssd_fwd final_state, grid backwards", f2, f1, ns);
    same("ssd_bwd every gradient, grid backwards", g3.buf, g1.buf, g1.n);
    // The GEMM steps once more through the column-major form the .cu gives cuBLAS.
    g_colmajor = 1;
    grid_ssd_fwd(y2, st2, f2, init, &c.in, &d, gs);
    grid_ssd_bwd(&g4.g, dy, st1, &c.in, &d, gs);
    g_colmajor = 0;
    same("ssd_fwd y, GEMMs column-major", y2, y1, ny);
    same("ssd_fwd states, GEMMs column-major", st2, st1, ns * nc);
    same("ssd_bwd every gradient, GEMMs column-major", g4.buf, g1.buf, g1.n);
    printf("  %-52s %d bad\n", "cuBLAS leading-dimension rule, every GEMM", g_bad_lds);
    CHECK(g_bad_lds == 0, "%d GEMM calls break cuBLAS's leading-dimension rule", g_bad_lds);
    g_bad_lds = 0;
    free(g3.buf), free(g4.buf);

    if (with_seg) { // the checks can fail: the same grid without seg is far from y with it
        kd_mamba2_in noseg = c.in;
        noseg.seg = NULL;
        grid_ssd_fwd(y3, NULL, NULL, init, &noseg, &d, gs);
        double e = rel_err(y3, y1, ny);
        printf("  %-52s rel err %.2e (must exceed 1e-2)\n", "ssd_fwd y without seg (negative)", e);
        CHECK(e > 1e-2, "dropping seg changed y by only %.3g: the comparison cannot see masks", e);
    }
    free(seg), free(c.xbc), free(c.dt), free(c.params), free(init), free(y1), free(y2), free(y3);
    free(y4), free(st1), free(st2), free(f1), free(f2), free(f3), free(f4), free(ws.p), free(gs);
    free(dy), free(g1.buf), free(g2.buf);
}

// Largest relative error over the written parts of two gradient sets (dx, dB, dC, ddt, the
// three parameter gradients).
static double grads_err(const m2_grad *a, const m2_grad *b, const kd_mamba2_dims *d, int B, int T) {
    const size_t rows = (size_t)B * T;
    const int used = 2 * d->n_kv * d->P + d->H * d->N, H = d->H;
    float *ga = cols(a->buf, rows, a->g.ldx, 0, used), *gb = cols(b->buf, rows, b->g.ldx, 0, used);
    float *ta = cols(a->g.ddt, rows, a->g.lddt, 0, H), *tb = cols(b->g.ddt, rows, b->g.lddt, 0, H);
    double e = fmax(rel_err(ga, gb, rows * used), rel_err(ta, tb, rows * H));
    e = fmax(e, rel_err(a->g.ddt_bias, b->g.ddt_bias, H));
    e = fmax(e, rel_err(a->g.dA_log, b->g.dA_log, H));
    e = fmax(e, rel_err(a->g.dD, b->g.dD, H));
    free(ga), free(gb), free(ta), free(tb);
    return e;
}

// Negative checks: each GEMM step of both plans, run with its lda one short (a plausible
// indexing mistake), must move y/states/final state (forward) or the gradients (backward)
// by more than 1e-2, so the comparisons above see every GEMM's indexing.
static void test_ssd_bad_ld(kd_mamba2_dims d, int B, int T) {
    int32_t *seg = make_seg(B, T);
    m2_case c = make_case(&d, B, T, seg);
    const int nc = kd_m2g_nchunks(T, d.Q);
    const size_t ny = (size_t)B * T * d.H * d.P, ns = (size_t)B * d.H * d.P * d.N;
    float *init = frand(ns, -1, 1), *dy = frand(ny, -1, 1);
    float *y1 = frand(ny, -9, 9), *y2 = fdup(y1, ny), *st1 = frand(ns * nc, -9, 9);
    float *st2 = fdup(st1, ns * nc), *f1 = frand(ns, -9, 9), *f2 = fdup(f1, ns);
    void *gs = kd_malloc(kd_m2g_ssd_scratch(&d, B, T));
    m2_grad g0 = make_grad(&d, B, T), g1 = grad_dup(&g0); // g0: the start of every backward
    printf("ssd GEMM steps with lda one short (negative) H=%d n_kv=%d Q=%d B=%d T=%d\n", d.H,
           d.n_kv, d.Q, B, T);
    grid_ssd_fwd(y1, st1, f1, init, &c.in, &d, gs);
    const int nfwd = g_gemm_step;
    grid_ssd_bwd(&g1.g, dy, st1, &c.in, &d, gs);
    const int nbwd = g_gemm_step;
    char what[64];
    for (int s = 1; s <= nfwd + nbwd; s++) {
        const int fwd = s <= nfwd;
        double e;
        g_bad_step = fwd ? s : s - nfwd;
        if (fwd) {
            grid_ssd_fwd(y2, st2, f2, init, &c.in, &d, gs);
            e = fmax(rel_err(y2, y1, ny), fmax(rel_err(st2, st1, ns * nc), rel_err(f2, f1, ns)));
        } else {
            m2_grad g2 = grad_dup(&g0);
            grid_ssd_bwd(&g2.g, dy, st1, &c.in, &d, gs);
            e = grads_err(&g2, &g1, &d, B, T);
            free(g2.buf);
        }
        snprintf(what, sizeof what, "%s GEMM step %d, lda - 1", fwd ? "fwd" : "bwd", g_bad_step);
        g_bad_step = 0;
        printf("  %-52s rel err %.2e (must exceed 1e-2)\n", what, e);
        CHECK(e > 1e-2, "%s changed the results by only %.3g: that GEMM's indexing is unseen",
              what, e);
    }
    g_bad_lds = 0; // lda - 1 may break cuBLAS's rule on purpose
    free(seg), free(c.xbc), free(c.dt), free(c.params), free(init), free(dy), free(y1), free(y2);
    free(st1), free(st2), free(f1), free(f2), free(gs), free(g0.buf), free(g1.buf);
}

// ============================================================================ MOHAWK matrix

static void test_mat(kd_mamba2_dims d, int B, int T, int with_seg) {
    int32_t *seg = with_seg ? make_seg(B, T) : NULL;
    m2_case c = make_case(&d, B, T, seg);
    const size_t nm = (size_t)B * d.H * T * T;
    float *M1 = frand(nm, -9, 9), *M2 = fdup(M1, nm);
    kd_scratch ws = host_scratch(kd_cpu_mamba2_mat_scratch(NULL, &d, B, T));
    void *gs = kd_malloc(kd_m2g_mat_scratch(&d, B, T));
    printf("mat H=%d n_kv=%d N=%d B=%d T=%d seg=%d\n", d.H, d.n_kv, d.N, B, T, with_seg);
    grid_mat_fwd(M1, &c.in, &d, gs);
    kd_cpu_mamba2_mat_fwd(NULL, M2, &c.in, &d, ws);
    cmp("mat_fwd M", M1, M2, nm, 1e-5);

    float *dM = frand(nm, -1, 1);
    m2_grad g1 = make_grad(&d, B, T), g2 = grad_dup(&g1), g3 = grad_dup(&g1);
    grid_mat_bwd(&g1.g, dM, &c.in, &d, gs);
    kd_cpu_mamba2_mat_bwd(NULL, &g2.g, dM, &c.in, &d, ws);
    cmp_grads("mat_bwd", &g1, &g2, &d, B, T, 1); // g->dx is unused
    g_reverse = 1;
    grid_mat_fwd(M2, &c.in, &d, gs);
    grid_mat_bwd(&g3.g, dM, &c.in, &d, gs);
    g_reverse = 0;
    same("mat_fwd M, grid backwards", M2, M1, nm);
    same("mat_bwd every gradient, grid backwards", g3.buf, g1.buf, g1.n);
    free(g3.buf);
    free(seg), free(c.xbc), free(c.dt), free(c.params), free(M1), free(M2), free(ws.p), free(gs);
    free(dM), free(g1.buf), free(g2.buf);
}

// A CUDA build's table holds every Mamba-2 op (asked without a device).
static void test_cuda_table(void) {
#ifdef KD_HAVE_CUDA
    const kd_ops *t = kd_ops_cuda_table();
    int ok = t && kd_ops_supports(t, KD_CAP_MAMBA2);
    printf("cuda table: mamba2 sub-table %s\n", ok ? "complete" : "INCOMPLETE");
    CHECK(ok, "the CUDA table lacks Mamba-2 ops");
#else
    printf("cuda table: not built (KD_HAVE_CUDA unset), skipped\n");
#endif
}

int main(void) {
    test_cuda_table();
    test_conv(2, 37, 20, 4, 1, 1);
    test_conv(3, 5, 7, 4, 0, 0); // T < ... rows shorter than a few taps, no bias
    test_conv(1, 9, 12, 2, 1, 1);
    test_conv(2, 0, 5, 4, 0, 1); // empty rows: conv_state is all zeros

    test_gnorm(23, 32, 8);
    test_gnorm(5, 12, 12);

    const kd_mamba2_dims gqa = {4, 2, 8, 8, 4, 8}, mha = {3, 3, 4, 4, 4, 5};
    for (int v = 0; v < 4; v++) { // plain, init, seg, seg + init
        const int s = v >= 2, i = v & 1;
        test_ssd(gqa, 2, 37, s, i);
        test_ssd(mha, 2, 23, s, i);
    }
    kd_mamba2_dims q1 = gqa, q16 = gqa;
    q1.Q = 1, q16.Q = 16;
    test_ssd(q1, 1, 11, 1, 1);
    test_ssd(q16, 2, 64, 1, 1);
    test_ssd(q16, 1, 5, 0, 1); // one short chunk
    test_ssd(gqa, 2, 0, 0, 1); // no tokens: final_state = init_state
    test_ssd_bad_ld(gqa, 2, 37);

    test_mat(gqa, 2, 19, 0);
    test_mat(gqa, 2, 24, 1);
    test_mat(mha, 1, 13, 1);
    return check_done("test_mamba2_grid");
}
