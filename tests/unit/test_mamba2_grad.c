// test_mamba2_grad.c: the Mamba-2 layer backward (every parameter and the layer input,
// with and without document boundaries) against central finite differences of the float32
// forward, as directional derivatives: for a random direction v per tensor,
//   d/de L(theta + e v) at 0  vs  <grad, v>,  L = sum(out * R) accumulated in double.
// The difference quotient is the 4-point one (error O(h^4)) with h = 2% of the tensor's rms
// (0.1 for the per-head vectors).
// The error is measured relative to |grad|*|v| (the bound on <grad,v>). Float32 rounding
// of L (~1e-7 relative over ~10^3 terms) divided by h gives up to ~1e-4 of that; tolerance
// 2e-3 leaves margin, while a dropped or wrong term gives errors of order 1e-1 or more.
#include "test_mamba2_util.h"

typedef struct {
    const kd_ops *ops;
    test_layer *L;
    kd_mamba2_acts *a;
    kd_scratch ws;
    float *inp, *out, *R;
    const int32_t *seg;
    int B, T;
} grad_ctx;

static double loss(grad_ctx *c) {
    kd_mamba2_forward(c->ops, &c->L->cfg, &c->L->p, c->a, c->ws, c->out, c->inp, c->seg, c->B,
                      c->T);
    double s = 0;
    for (size_t i = 0; i < (size_t)c->B * c->T * c->L->cfg.d_model; i++)
        s += (double)c->out[i] * c->R[i];
    return s;
}

// Directional check of tensor x (n floats) whose analytic gradient is g.
static void check_dir(grad_ctx *c, const char *name, float *x, const float *g, size_t n) {
    float *v = kd_malloc(n * 4), *x0 = kd_malloc(n * 4);
    fill(v, n, -1.0f, 1.0f);
    memcpy(x0, x, n * 4);
    // step: 2% of the tensor's rms (at least 2e-3) so every tensor moves by a similar
    // relative amount; the per-head tensors (dt_bias, A_log, D) have tiny gradients, so
    // they take 0.1 to lift the difference above float32 noise (O(h^4) keeps it exact).
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)x0[i] * x0[i];
    const double h = n <= 8 ? 0.1 : fmax(0.02 * sqrt(ss / n), 2e-3);
    double Lv[4];
    const double steps[4] = {h, -h, 2 * h, -2 * h};
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; i < n; i++) x[i] = (float)(x0[i] + steps[k] * v[i]);
        Lv[k] = loss(c);
    }
    memcpy(x, x0, n * 4);
    double fd = (8.0 * (Lv[0] - Lv[1]) - (Lv[2] - Lv[3])) / (12.0 * h);
    double an = 0, gg = 0, vv = 0;
    for (size_t i = 0; i < n; i++)
        an += (double)g[i] * v[i], gg += (double)g[i] * g[i], vv += (double)v[i] * v[i];
    // error relative to |g||v|, the largest the directional derivative can be, so that a
    // direction nearly orthogonal to g does not turn float noise into a large ratio
    double rel = fabs(fd - an) / fmax(sqrt(gg * vv), 1e-12);
    CHECK(rel <= 2e-3,
          "%s (seg %s): directional derivative analytic %.9g vs finite-diff %.9g "
          "(relative %.2g > 2e-3)",
          name, c->seg ? "on" : "off", an, fd, rel);
    if (getenv("KD_TEST_VERBOSE"))
        printf("  %-16s seg=%d analytic %+.9g fd %+.9g rel %.2g\n", name, c->seg != NULL, an, fd,
               rel);
    free(v), free(x0);
}

static void run(int with_seg) {
    kd_ops ops = test_ops();
    kd_mamba2_cfg cfg = {16, {4, 2, 8, 8, 4, 8}, 1e-5f};
    test_layer L;
    layer_init(&L, cfg);
    const int B = 2, T = 21, C = cfg.d_model; // T not a multiple of Q
    const size_t n = (size_t)B * T * C;
    float *inp = kd_malloc(n * 4), *out = kd_malloc(n * 4), *R = kd_malloc(n * 4);
    float *dinp = kd_calloc(n, 4);
    fill(inp, n, -1.0f, 1.0f);
    fill(R, n, -1.0f, 1.0f);
    int32_t *seg = with_seg ? make_seg(B, T) : NULL;
    float *abuf = kd_calloc(kd_mamba2_acts_floats(&cfg, B, T), 4);
    kd_mamba2_acts a;
    kd_mamba2_acts_bind(&a, abuf, &cfg, B, T);
    kd_scratch ws = host_scratch(kd_mamba2_scratch_bytes(&ops, &cfg, B, T));
    grad_ctx c = {&ops, &L, &a, ws, inp, out, R, seg, B, T};
    loss(&c);
    // parameter gradients accumulate: start from a known non-zero value to test "+=" too;
    // dinp is overwritten: start it from garbage
    for (size_t i = 0; i < L.np; i++) L.gbuf[i] = 0.25f;
    for (size_t i = 0; i < n; i++) dinp[i] = 0.5f;
    kd_mamba2_backward(&ops, &cfg, &L.p, &L.g, &a, ws, dinp, R, inp, seg, B, T);
    for (size_t i = 0; i < L.np; i++) L.gbuf[i] -= 0.25f;
    float *pt[KD_MAMBA2_NPARAMS] = {L.p.in_proj_w, L.p.conv_w, L.p.conv_b, L.p.dt_bias,
                                    L.p.A_log,     L.p.D,      L.p.norm_w, L.p.out_proj_w};
    float *gt[KD_MAMBA2_NPARAMS] = {L.g.in_proj_w, L.g.conv_w, L.g.conv_b, L.g.dt_bias,
                                    L.g.A_log,     L.g.D,      L.g.norm_w, L.g.out_proj_w};
    for (int i = 0; i < KD_MAMBA2_NPARAMS; i++)
        check_dir(&c, L.info[i].name + strlen("layers.0.mixer."), pt[i], gt[i], L.info[i].numel);
    check_dir(&c, "input", inp, dinp, n);
    free(inp), free(out), free(R), free(dinp), free(seg), free(abuf), free(ws.p);
    layer_free(&L);
}

int main(void) {
    run(0);
    run(1);
    return check_done("test_mamba2_grad");
}
