// test_mamba2_mat.c: MOHAWK's materialised Mamba-2 matrix. (1) Applied to x it reproduces
// the sequential scan output (before gate and norm), with and without document boundaries:
// tolerance 1e-5 norm-wise relative (float32 sums of <= T terms). (2) Its backward w.r.t.
// B, C, x (zero), dt_raw, dt_bias, A_log, D matches 4-point central finite differences of
// L = sum(M * R) as directional derivatives, error relative to |grad||v| <= 1e-3 (float32
// noise ~1e-5 at these steps; a wrong term gives errors of order 1e-1).
#include "test_mamba2_util.h"

typedef struct {
    kd_mamba2_dims d;
    int B, T, ld, lddt;
    float *xbc, *dt, *dt_bias, *A_log, *D, *M, *R;
    int32_t *seg;
    kd_mamba2_in in;
    kd_scratch ws; // for the matrix kernels and the sequential scan
} mat_case;

static void mat_case_init(mat_case *c, int with_seg) {
    kd_mamba2_dims d = {4, 2, 8, 8, 4, 8};
    c->d = d;
    c->B = 2, c->T = 23;
    const int dxb = d.n_kv * d.P, B = c->B, T = c->T, H = d.H;
    c->ld = 2 * dxb + H * d.N + 3;
    c->lddt = H + 2;
    c->xbc = kd_malloc((size_t)B * T * c->ld * 4);
    c->dt = kd_malloc((size_t)B * T * c->lddt * 4);
    c->dt_bias = kd_malloc(H * 4), c->A_log = kd_malloc(H * 4), c->D = kd_malloc(H * 4);
    fill(c->xbc, (size_t)B * T * c->ld, -1.0f, 1.0f);
    fill(c->dt, (size_t)B * T * c->lddt, -2.0f, 1.0f);
    fill(c->dt_bias, H, -1.0f, 0.5f);
    fill(c->A_log, H, 0.0f, 1.5f);
    fill(c->D, H, 0.5f, 1.5f);
    c->seg = with_seg ? make_seg(B, T) : NULL;
    c->M = kd_malloc((size_t)B * H * T * T * 4);
    c->R = kd_malloc((size_t)B * H * T * T * 4);
    fill(c->R, (size_t)B * H * T * T, -1.0f, 1.0f);
    kd_mamba2_in in = {c->xbc,  c->xbc + dxb, c->xbc + 2 * dxb, c->dt, c->ld,  c->ld, c->ld,
                       c->lddt, c->dt_bias,   c->A_log,         c->D,  c->seg, B,     T};
    c->in = in;
    size_t mat = kd_cpu_mamba2_mat_scratch(NULL, &c->d, B, T);
    size_t scan = kd_cpu_mamba2_ssd_scratch(NULL, &c->d, B, T);
    c->ws = host_scratch(mat > scan ? mat : scan);
}

static void mat_case_free(mat_case *c) {
    free(c->xbc), free(c->dt), free(c->dt_bias), free(c->A_log), free(c->D);
    free(c->seg), free(c->M), free(c->R), free(c->ws.p);
}

static void test_apply(int with_seg) {
    mat_case c;
    mat_case_init(&c, with_seg);
    const int B = c.B, T = c.T, H = c.d.H, P = c.d.P, rep = H / c.d.n_kv;
    float *y = kd_malloc((size_t)B * T * H * P * 4), *ym = kd_calloc((size_t)B * T * H * P, 4);
    kd_cpu_mamba2_scan_ref(NULL, y, NULL, NULL, &c.in, &c.d, c.ws);
    kd_cpu_mamba2_mat_fwd(NULL, c.M, &c.in, &c.d, c.ws);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                for (int p = 0; p < P; p++) {
                    double acc = 0;
                    for (int s = 0; s < T; s++)
                        acc += (double)c.M[(((size_t)b * H + h) * T + t) * T + s] *
                               c.xbc[((size_t)b * T + s) * c.ld + (h / rep) * P + p];
                    ym[(((size_t)b * T + t) * H + h) * P + p] = (float)acc;
                }
    check_close(with_seg ? "M x vs scan (seg)" : "M x vs scan", ym, y, (size_t)B * T * H * P, 1e-5);
    // strictly upper triangle must be exactly zero
    for (size_t bh = 0; bh < (size_t)B * H; bh++)
        for (int t = 0; t < T; t++)
            for (int s = t + 1; s < T; s++)
                if (c.M[(bh * T + t) * T + s] != 0.0f) {
                    CHECK(0, "M[%zu,%d,%d] = %g above the diagonal", bh, t, s,
                          c.M[(bh * T + t) * T + s]);
                    t = T;
                    break;
                }
    free(y), free(ym);
    mat_case_free(&c);
}

static double mat_loss(mat_case *c) {
    kd_cpu_mamba2_mat_fwd(NULL, c->M, &c->in, &c->d, c->ws);
    double s = 0;
    for (size_t i = 0; i < (size_t)c->B * c->d.H * c->T * c->T; i++) s += (double)c->M[i] * c->R[i];
    return s;
}

static void check_dir(mat_case *c, const char *name, float *x, const float *g, size_t n, double h) {
    float *v = kd_malloc(n * 4), *x0 = kd_malloc(n * 4);
    fill(v, n, -1.0f, 1.0f);
    memcpy(x0, x, n * 4);
    const double steps[4] = {h, -h, 2 * h, -2 * h};
    double Lv[4];
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; i < n; i++) x[i] = (float)(x0[i] + steps[k] * v[i]);
        Lv[k] = mat_loss(c);
    }
    memcpy(x, x0, n * 4);
    double fd = (8.0 * (Lv[0] - Lv[1]) - (Lv[2] - Lv[3])) / (12.0 * h);
    double an = 0, gg = 0, vv = 0;
    for (size_t i = 0; i < n; i++)
        an += (double)g[i] * v[i], gg += (double)g[i] * g[i], vv += (double)v[i] * v[i];
    double rel = fabs(fd - an) / fmax(sqrt(gg * vv), 1e-12);
    CHECK(rel <= 1e-3, "matrix bwd %s (seg %s): analytic %.9g vs finite-diff %.9g (rel %.2g)", name,
          c->seg ? "on" : "off", an, fd, rel);
    if (getenv("KD_TEST_VERBOSE"))
        printf("  %-8s analytic %+.9g fd %+.9g rel %.2g\n", name, an, fd, rel);
    free(v), free(x0);
}

static void test_backward(int with_seg) {
    mat_case c;
    mat_case_init(&c, with_seg);
    const int B = c.B, T = c.T, H = c.d.H, dxb = c.d.n_kv * c.d.P;
    float *dxbc = kd_calloc((size_t)B * T * c.ld, 4), *ddt = kd_calloc((size_t)B * T * c.lddt, 4);
    float *dpar = kd_calloc(3 * H, 4);
    kd_mamba2_grad g = {NULL, dxbc + dxb, dxbc + 2 * dxb, ddt,      c.ld,        c.ld,
                        c.ld, c.lddt,     dpar,           dpar + H, dpar + 2 * H};
    kd_cpu_mamba2_mat_bwd(NULL, &g, c.R, &c.in, &c.d, c.ws);
    check_dir(&c, "x,B,C", c.xbc, dxbc, (size_t)B * T * c.ld, 1e-2);
    check_dir(&c, "dt", c.dt, ddt, (size_t)B * T * c.lddt, 1e-2);
    check_dir(&c, "dt_bias", c.dt_bias, dpar, H, 0.05);
    check_dir(&c, "A_log", c.A_log, dpar + H, H, 0.05);
    check_dir(&c, "D", c.D, dpar + 2 * H, H, 0.05);
    free(dxbc), free(ddt), free(dpar);
    mat_case_free(&c);
}

int main(void) {
    test_apply(0);
    test_apply(1);
    test_backward(0);
    test_backward(1);
    return check_done("test_mamba2_mat");
}
