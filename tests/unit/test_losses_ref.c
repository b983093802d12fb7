// test_losses_ref.c: the loss kernels and the host preference losses against an
// independent PyTorch implementation (tests/reference/losses_ref.py, float64 autograd,
// written from the published formulas). This test draws the inputs, runs the kernels,
// writes the inputs to an HDF5 file (one group per case), runs the script on it, reads
// its outputs and compares losses and gradients within 1e-5 relative (the agreed bound;
// both sides compute in double from the same float inputs, the kernels round their
// outputs to float: ~6e-8). Relative to max(|want_i|, rms(want)) so that entries that
// cancel to ~0 do not demand impossible digits. Masked rows, tau != 1, several beta.
#include <hdf5.h>
#include <unistd.h>

#include "kernels/cpu/cpu_losses.h"
#include "runtime/train/losses.h"
#include "unit/test_kernels_util.h"

#define MAX_CASES 64
#define REL 1e-5

typedef struct {
    char name[64];
    int kind; // 0 full, 1 topk, 2 logp, 3 pref
    size_t nrow, ngrad;
    float *loss, *grad; // kernel outputs (kinds 0-2)
    kd_pref_out *pref;  // host outputs (kind 3)
} ref_case;

static ref_case g_cases[MAX_CASES];
static int g_ncases = 0;

// ============================================================================ HDF5 helpers

static void put(hid_t g, const char *name, hid_t type, int rank, hsize_t d0, hsize_t d1,
                const void *data) {
    hsize_t dims[2] = {d0, d1};
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0 || H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        check(0, "HDF5 write", 0, 0, 0);
    H5Dclose(ds);
    H5Sclose(sp);
}

static void attr(hid_t g, const char *name, double v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(g, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

// Reads dataset path of exactly n doubles into buf; 0 on success.
static int get(hid_t f, const char *path, double *buf, size_t n) {
    hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t sp = H5Dget_space(ds);
    int ok = (size_t)H5Sget_simple_extent_npoints(sp) == n &&
             H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
    H5Sclose(sp);
    H5Dclose(ds);
    return ok ? 0 : -1;
}

static ref_case *new_case(hid_t file, hid_t *grp, int kind, const char *fmt, double a, double b) {
    ref_case *c = &g_cases[g_ncases];
    snprintf(c->name, sizeof c->name, "c%02d_", g_ncases);
    size_t l = strlen(c->name);
    snprintf(c->name + l, sizeof c->name - l, fmt, a, b);
    g_ncases++;
    c->kind = kind;
    *grp = H5Gcreate2(file, c->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    attr(*grp, "kind", kind);
    return c;
}

// Weights with masked rows (every third) and non-unit values.
static void weights(float *w, int N) {
    for (int i = 0; i < N; i++) w[i] = i % 3 == 1 ? 0.0f : 0.5f + rng_uniform();
}

// ============================================================================ cases

static void add_full(hid_t file, int N, int V, kd_divergence div, float beta, float tau) {
    hid_t g;
    ref_case *c = new_case(file, &g, 0, "full_b%.2f_t%.2f", beta, tau);
    float *s = rand_tensor((size_t)N * V, 3.0f), *t = rand_tensor((size_t)N * V, 3.0f), w[16];
    weights(w, N);
    float dscale = 0.6f;
    c->nrow = N, c->ngrad = (size_t)N * V;
    c->loss = malloc(sizeof(float) * N), c->grad = malloc(sizeof(float) * N * V);
    kd_scratch ws = {NULL, kd_cpu_distill_full_scratch(NULL, N, V)};
    ws.p = malloc(ws.bytes);
    kd_cpu_distill_full(NULL, c->loss, c->grad, s, t, w, N, V, div, beta, tau, dscale, ws);
    free(ws.p);
    put(g, "s", H5T_NATIVE_FLOAT, 2, N, V, s);
    put(g, "t", H5T_NATIVE_FLOAT, 2, N, V, t);
    put(g, "w", H5T_NATIVE_FLOAT, 1, N, 0, w);
    attr(g, "div", div), attr(g, "beta", beta), attr(g, "tau", tau), attr(g, "dscale", dscale);
    H5Gclose(g);
    free(s);
    free(t);
}

static void add_topk(hid_t file, int N, int V, int K, kd_topk_mode mode, float tau) {
    hid_t g;
    ref_case *c = new_case(file, &g, 1, "topk_m%.0f_t%.2f", mode, tau);
    float *s = rand_tensor((size_t)N * V, 3.0f), *t = rand_tensor((size_t)N * V, 3.0f), w[16];
    int32_t *ids = malloc(sizeof(int32_t) * N * K);
    float *lp = malloc(sizeof(float) * N * K);
    weights(w, N);
    // the cache: the teacher's K largest logits and their log-softmax at tau = 1
    for (int i = 0; i < N; i++) {
        const float *x = t + (size_t)i * V;
        double mx = -INFINITY, z = 0.0;
        for (int j = 0; j < V; j++) mx = fmax(mx, x[j]);
        for (int j = 0; j < V; j++) z += exp(x[j] - mx);
        for (int k = 0; k < K; k++) {
            int best = -1;
            for (int j = 0; j < V; j++) {
                int used = 0;
                for (int k2 = 0; k2 < k; k2++) used |= ids[i * K + k2] == j;
                if (!used && (best < 0 || x[j] > x[best])) best = j;
            }
            ids[i * K + k] = best;
            lp[i * K + k] = (float)(x[best] - mx - log(z));
        }
    }
    check(kd_losses_check_topk(ids, lp, N, K, V, "test cache", NULL) == KD_OK,
          "generated top-k cache passes kd_losses_check_topk", 0, 0, 0);
    float dscale = 1.7f;
    c->nrow = N, c->ngrad = (size_t)N * V;
    c->loss = malloc(sizeof(float) * N), c->grad = malloc(sizeof(float) * N * V);
    kd_scratch ws = {NULL, kd_cpu_distill_topk_scratch(NULL, N, V, K)};
    ws.p = malloc(ws.bytes);
    kd_cpu_distill_topk(NULL, c->loss, c->grad, s, ids, lp, w, N, V, K, mode, tau, dscale, ws);
    free(ws.p);
    put(g, "s", H5T_NATIVE_FLOAT, 2, N, V, s);
    put(g, "ids", H5T_NATIVE_INT32, 2, N, K, ids);
    put(g, "lp", H5T_NATIVE_FLOAT, 2, N, K, lp);
    put(g, "w", H5T_NATIVE_FLOAT, 1, N, 0, w);
    attr(g, "mode", mode), attr(g, "tau", tau), attr(g, "dscale", dscale);
    H5Gclose(g);
    free(s), free(t), free(ids), free(lp);
}

static void add_logp(hid_t file, int N, int V) {
    hid_t g;
    ref_case *c = new_case(file, &g, 2, "logp_%.0f_%.0f", N, V);
    float *x = rand_tensor((size_t)N * V, 3.0f), *gr = rand_tensor(N, 1.0f);
    int32_t *tg = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++) tg[i] = i % 4 == 2 ? -1 : (int32_t)(rng_u32() % V);
    c->nrow = N, c->ngrad = (size_t)N * V;
    c->loss = malloc(sizeof(float) * N), c->grad = malloc(sizeof(float) * N * V);
    kd_cpu_token_logp_fwd(NULL, c->loss, x, tg, N, V);
    kd_cpu_token_logp_bwd(NULL, c->grad, gr, x, tg, N, V);
    put(g, "x", H5T_NATIVE_FLOAT, 2, N, V, x);
    put(g, "targets", H5T_NATIVE_INT32, 1, N, 0, tg);
    put(g, "g", H5T_NATIVE_FLOAT, 1, N, 0, gr);
    H5Gclose(g);
    free(x), free(gr), free(tg);
}

static void add_pref(hid_t file, kd_pref_type type, double beta, double eps, double alpha) {
    enum { P = 8 };
    hid_t g;
    ref_case *c = new_case(file, &g, 3, "pref_%.0f_b%.2f", type, beta);
    double pc[P], pr[P], rc[P], rr[P];
    int32_t nc[P], nr[P];
    kd_pref_pair pairs[P];
    for (int i = 0; i < P; i++) {
        nc[i] = 2 + (int)(rng_u32() % 60), nr[i] = 2 + (int)(rng_u32() % 60);
        pc[i] = -nc[i] * (0.2 + 2.5 * rng_uniform()), pr[i] = -nr[i] * (0.2 + 2.5 * rng_uniform());
        rc[i] = pc[i] + 3.0 * rng_normal(), rr[i] = pr[i] + 3.0 * rng_normal();
        pairs[i] = (kd_pref_pair){pc[i], pr[i], rc[i], rr[i], nc[i], nr[i]};
    }
    kd_pref_config cfg = {.type = type, .beta = beta, .label_smoothing = eps, .gamma = 0.5, .rpo_alpha = alpha};
    c->nrow = P;
    c->pref = malloc(sizeof(kd_pref_out) * P);
    kd_error err = {0};
    int rc_ = kd_losses_pref(&cfg, pairs, P, c->pref, NULL, &err);
    check(rc_ == KD_OK, err.msg[0] ? err.msg : "kd_losses_pref", rc_, KD_OK, 0);
    put(g, "logp_c", H5T_NATIVE_DOUBLE, 1, P, 0, pc);
    put(g, "logp_r", H5T_NATIVE_DOUBLE, 1, P, 0, pr);
    put(g, "ref_c", H5T_NATIVE_DOUBLE, 1, P, 0, rc);
    put(g, "ref_r", H5T_NATIVE_DOUBLE, 1, P, 0, rr);
    put(g, "n_c", H5T_NATIVE_INT32, 1, P, 0, nc);
    put(g, "n_r", H5T_NATIVE_INT32, 1, P, 0, nr);
    attr(g, "type", type), attr(g, "beta", beta), attr(g, "eps", eps), attr(g, "gamma", 0.5);
    attr(g, "rpo_alpha", alpha);
    H5Gclose(g);
}

// ============================================================================ comparison

static void compare_d(const char *what, const double *got, const double *want, size_t n) {
    // check_close takes float; the host outputs are double, so compare them here
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += want[i] * want[i];
    double rms = n ? sqrt(ss / n) : 0.0;
    for (size_t i = 0; i < n; i++) {
        double tol = REL * fmax(fabs(want[i]), rms);
        char buf[160];
        snprintf(buf, sizeof buf, "%s[%zu]", what, i);
        check(fabs(got[i] - want[i]) <= tol, buf, got[i], want[i], tol);
    }
}

static void compare(hid_t out) {
    for (int ci = 0; ci < g_ncases; ci++) {
        ref_case *c = &g_cases[ci];
        char path[128], what[160];
        size_t n = c->kind == 3 ? c->nrow : c->ngrad;
        double *want = malloc(sizeof(double) * (n > c->nrow ? n : c->nrow));
        snprintf(path, sizeof path, "%s/loss", c->name);
        snprintf(what, sizeof what, "%s loss vs torch", c->name);
        if (get(out, path, want, c->nrow)) {
            check(0, "reading the reference output", 0, 0, 0);
        } else if (c->kind < 3) {
            check_close(what, c->loss, want, c->nrow, REL);
            snprintf(path, sizeof path, "%s/grad", c->name);
            snprintf(what, sizeof what, "%s grad vs torch", c->name);
            if (get(out, path, want, c->ngrad) == 0)
                check_close(what, c->grad, want, c->ngrad, REL);
            else
                check(0, "reading the reference grad", 0, 0, 0);
        } else {
            const char *fields[5] = {"loss", "dlogp_c", "dlogp_r", "reward_c", "reward_r"};
            double got[64];
            for (int f = 0; f < 5; f++) {
                for (size_t i = 0; i < c->nrow; i++) {
                    const kd_pref_out *o = &c->pref[i];
                    const double v[5] = {o->loss, o->dlogp_c, o->dlogp_r, o->reward_c, o->reward_r};
                    got[i] = v[f];
                }
                snprintf(path, sizeof path, "%s/%s", c->name, fields[f]);
                snprintf(what, sizeof what, "%s %s vs torch", c->name, fields[f]);
                if (get(out, path, want, c->nrow) == 0)
                    compare_d(what, got, want, c->nrow);
                else
                    check(0, "reading the reference output", 0, 0, 0);
            }
        }
        free(want);
    }
}

int main(void) {
    rng_seed(424242);
    char dir[] = "/tmp/kd_losses_ref_XXXXXX", in[128], out[128], cmd[1024];
    if (!mkdtemp(dir)) return fprintf(stderr, "mkdtemp failed\n"), 1;
    snprintf(in, sizeof in, "%s/in.h5", dir);
    snprintf(out, sizeof out, "%s/out.h5", dir);
    hid_t f = H5Fcreate(in, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const float taus[3] = {1.0f, 0.5f, 2.5f}, betas[4] = {0.0f, 0.3f, 0.7f, 1.0f};
    for (int ti = 0; ti < 3; ti++) {
        add_full(f, 6, 50, KD_DIV_FORWARD_KL, 0.0f, taus[ti]);
        add_full(f, 6, 50, KD_DIV_REVERSE_KL, 0.0f, taus[ti]);
        for (int bi = 0; bi < 4; bi++) add_full(f, 6, 50, KD_DIV_JSD, betas[bi], taus[ti]);
        add_topk(f, 5, 64, 8, KD_TOPK_TAIL, taus[ti]);
        add_topk(f, 5, 64, 8, KD_TOPK_RENORM, taus[ti]);
    }
    add_full(f, 3, 1000, KD_DIV_JSD, 0.5f, 0.9f); // a wider row
    add_topk(f, 3, 1000, 20, KD_TOPK_TAIL, 0.9f);
    add_topk(f, 2, 700, 100, KD_TOPK_TAIL, 1.0f); // K > 64: the kernel sorts ids with qsort
    add_topk(f, 2, 700, 100, KD_TOPK_RENORM, 1.5f);
    add_logp(f, 9, 40);
    const double pbetas[3] = {0.1, 0.5, 2.0};
    for (int t = 0; t <= KD_PREF_ORPO; t++)
        for (int bi = 0; bi < 3; bi++) {
            int smooth = t == KD_PREF_SIGMOID || t == KD_PREF_SIMPO;
            add_pref(f, (kd_pref_type)t, pbetas[bi], smooth && bi == 1 ? 0.1 : 0.0, 0.0);
        }
    add_pref(f, KD_PREF_SIGMOID, 0.1, 0.0, 1.0); // RPO (TRL's recommended alpha 1)
    add_pref(f, KD_PREF_SIGMOID, 0.5, 0.1, 0.3);
    add_pref(f, KD_PREF_IPO, 0.5, 0.0, 0.7);
    H5Fclose(f);
    const char *py = getenv("KD_PYTHON") ? getenv("KD_PYTHON") : "/usr/bin/python3";
    const char *src = getenv("KD_SOURCE_DIR") ? getenv("KD_SOURCE_DIR") : ".";
    snprintf(cmd, sizeof cmd, "%s %s/tests/reference/losses_ref.py %s %s", py, src, in, out);
    int rc = system(cmd);
    check(rc == 0, "losses_ref.py ran (exit status)", rc, 0, 0);
    if (rc == 0) {
        hid_t o = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (o >= 0) {
            compare(o);
            H5Fclose(o);
        } else {
            check(0, "opening the reference output", 0, 0, 0);
        }
    }
    for (int ci = 0; ci < g_ncases; ci++)
        free(g_cases[ci].loss), free(g_cases[ci].grad), free(g_cases[ci].pref);
    unlink(in), unlink(out), rmdir(dir);
    printf("compared %d cases against torch\n", g_ncases);
    return check_done("test_losses_ref");
}
