// test_bgemm.c: the batched GEMM descriptor of kernels/bgemm.h, which the chunked SSD's GEMM
// steps use on the GPU. Proves: (1) kd_bgemm_ptrs enumerates the (b, h, chunk) blocks as
// documented (entry (b*nh + h)*nc + c - c0, GQA heads reading block h/hdiv); (2) the naive
// row-major executor of tests/unit/bgemm_host.h computes alpha op(A) op(B) + beta C (checked
// against a double loop written from the definition, tolerance 1e-6: float vs double sums of
// 4 products of numbers in [-1,1]), beta = 0 never reads C (C pre-filled with NaN), and the
// entries run last to first give bitwise the same C; (3) kd_bgemm_colmajor, the translation
// kernels/cuda/mamba2_ssd.cu hands cublasSgemmBatched, run by a naive column-major gemm, gives
// bitwise the row-major result (same products, same summation order) and obeys BLAS's
// leading-dimension rule, for the four transpose pairs with m, n, k all different and padded
// leading dimensions; (4) negative: the translation without the swap (operands and m, n left
// in place) differs by more than 1e-2, so (3) can fail.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgemm_host.h"
#include "check.h"

enum { NB = 2, NH = 4, HDIV = 2, NCT = 4, C0 = 1, NC = 3, M = 3, NN = 5, K = 4, SLACK = 64 };

static unsigned long long g_rng = 0x2545F4914F6CDD1Dull;
static float urand_pm1(void) { // uniform [-1,1)
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (2.0 / 16777216.0) - 1.0);
}

// One operand: NB x (NH/hdiv) x NCT blocks of rows x ld floats, laid out b, head, chunk.
typedef struct {
    float *buf;
    size_t n;
    kd_bgemm_op op;
} operand;

static operand make_operand(int rows, int ld, int hdiv, float fillv, int random) {
    operand o;
    memset(&o, 0, sizeof o);
    o.op.ld = ld, o.op.hdiv = hdiv;
    o.op.sc = (size_t)rows * ld, o.op.sh = o.op.sc * NCT, o.op.sb = o.op.sh * (NH / hdiv);
    o.n = o.op.sb * NB + SLACK; // slack: the wrong mapping below may read or write past
    o.buf = malloc(o.n * sizeof(float));
    for (size_t i = 0; i < o.n; i++) o.buf[i] = random ? urand_pm1() : fillv;
    return o;
}

// Norm-wise relative difference; elements NaN on both sides (never written) are skipped,
// NaN on one side only is an infinite difference.
static double rel_diff(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            if (isnan(a[i]) && isnan(b[i])) continue;
            return INFINITY;
        }
        const double d = (double)a[i] - b[i];
        num += d * d, den += (double)b[i] * b[i];
    }
    return sqrt(num) / (den > 0 ? sqrt(den) : 1e-300);
}

// Reference from the definition, in double, block addresses written out by hand.
static void reference(float *Cref, const operand *A, const operand *B, const float *C0v, int ta,
                      int tb, float alpha, float beta) {
    const int lda = A->op.ld, ldb = B->op.ld, ldc = NN + 3;
    for (int b = 0; b < NB; b++)
        for (int h = 0; h < NH; h++)
            for (int c = C0; c < C0 + NC; c++) {
                const float *a = A->buf + ((size_t)(b * NH + h) * NCT + c) * A->op.sc;
                const float *bb =
                    B->buf + ((size_t)(b * (NH / HDIV) + h / HDIV) * NCT + c) * B->op.sc;
                const size_t oc = ((size_t)(b * NH + h) * NCT + c) * M * ldc;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < NN; j++) {
                        double s = 0;
                        for (int l = 0; l < K; l++)
                            s += (double)(ta ? a[l * lda + i] : a[i * lda + l]) *
                                 (tb ? bb[j * ldb + l] : bb[l * ldb + j]);
                        const double c0 = beta != 0.0f ? beta * (double)C0v[oc + i * ldc + j] : 0;
                        Cref[oc + i * ldc + j] = (float)(alpha * s + c0);
                    }
            }
}

static void test_pair(int ta, int tb, float alpha, float beta) {
    const int lda = (ta ? M : K) + 2, ldb = (tb ? K : NN) + 1, ldc = NN + 3;
    operand A = make_operand(ta ? K : M, lda, 1, 0, 1),
            B = make_operand(tb ? NN : K, ldb, HDIV, 0, 1);
    operand C = make_operand(M, ldc, 1, beta == 0.0f ? NAN : 0, beta != 0.0f);
    const size_t ne = (size_t)NB * NH * NC;
    const float **pa = malloc(ne * sizeof *pa), **pb = malloc(ne * sizeof *pb);
    float **pc = malloc(ne * sizeof *pc);
    float *c0 = malloc(C.n * sizeof(float)), *crm = malloc(C.n * sizeof(float));
    float *ref = malloc(C.n * sizeof(float));
    memcpy(c0, C.buf, C.n * sizeof(float));
    memcpy(ref, C.buf, C.n * sizeof(float));
    kd_bgemm g;
    memset(&g, 0, sizeof g);
    g.ta = ta, g.tb = tb, g.m = M, g.n = NN, g.k = K, g.alpha = alpha, g.beta = beta;
    g.nb = NB, g.nh = NH, g.nc = NC, g.c0 = C0;
    g.A = A.op, g.A.in = A.buf, g.B = B.op, g.B.in = B.buf, g.C = C.op, g.C.out = C.buf;
    g.pa = pa, g.pb = pb, g.pc = pc;
    printf("ta=%d tb=%d m=%d n=%d k=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g\n", ta, tb, M, NN, K,
           lda, ldb, ldc, alpha, beta);

    g_colmajor = 0;
    host_bgemm(&g);
    int ptr_ok = 1;
    for (int b = 0; b < NB; b++)
        for (int h = 0; h < NH; h++)
            for (int c = C0; c < C0 + NC; c++) {
                const size_t e = ((size_t)b * NH + h) * NC + (c - C0);
                ptr_ok &= pa[e] == A.buf + ((size_t)(b * NH + h) * NCT + c) * A.op.sc;
                ptr_ok &=
                    pb[e] == B.buf + ((size_t)(b * (NH / HDIV) + h / HDIV) * NCT + c) * B.op.sc;
                ptr_ok &= pc[e] == C.buf + ((size_t)(b * NH + h) * NCT + c) * C.op.sc;
            }
    printf("  %-50s %s\n", "block pointers (entry order, GQA, c0)",
           ptr_ok ? "as documented" : "FAIL");
    CHECK(ptr_ok, "kd_bgemm_ptrs: a block pointer differs from b*sb + (h/hdiv)*sh + c*sc");
    reference(ref, &A, &B, c0, ta, tb, alpha, beta);
    double e = rel_diff(C.buf, ref, C.n);
    printf("  %-50s rel err %.2e (tol 1e-6)\n", "row-major executor vs definition", e);
    CHECK(e <= 1e-6, "row-major executor: relative error %.3g > 1e-6", e);
    memcpy(crm, C.buf, C.n * sizeof(float));

    memcpy(C.buf, c0, C.n * sizeof(float));
    g_reverse = 1; // pointers and entries last to first: no entry depends on another
    host_bgemm(&g);
    g_reverse = 0;
    const int rev = memcmp(C.buf, crm, C.n * sizeof(float)) == 0;
    printf("  %-50s %s\n", "entries run backwards", rev ? "bitwise equal" : "DIFFER  FAIL");
    CHECK(rev, "entries run backwards: rel err %.3g", rel_diff(C.buf, crm, C.n));

    const kd_bgemm_cm cm = kd_bgemm_colmajor(&g);
    CHECK(kd_bgemm_cm_valid(&cm),
          "the column-major form breaks BLAS's ld rule (ld1 %d ld2 %d ldc %d)", cm.ld1, cm.ld2,
          cm.ldc);
    memcpy(C.buf, c0, C.n * sizeof(float));
    g_colmajor = 1;
    host_bgemm(&g);
    g_colmajor = 0;
    const int eq = memcmp(C.buf, crm, C.n * sizeof(float)) == 0;
    printf("  %-50s %s\n", "kd_bgemm_colmajor run column-major",
           eq ? "bitwise equal" : "DIFFER  FAIL");
    CHECK(eq, "column-major form: rel err %.3g vs the row-major product",
          rel_diff(C.buf, crm, C.n));

    // Negative: the same call with the operands and m, n left in place.
    memcpy(C.buf, c0, C.n * sizeof(float));
    for (size_t k = 0; k < ne; k++)
        naive_gemm_cm(ta, tb, M, NN, K, alpha, pa[k], lda, pb[k], ldb, beta, pc[k], ldc);
    e = rel_diff(C.buf, crm, C.n - SLACK);
    printf("  %-50s rel err %.2e (must exceed 1e-2)\n", "unswapped column-major call (negative)",
           e);
    CHECK(e > 1e-2, "the unswapped call is within %.3g of the product: the check is blind", e);
    free(A.buf), free(B.buf), free(C.buf), free(c0), free(crm), free(ref);
    free(pa), free(pb), free(pc);
}

int main(void) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            test_pair(ta, tb, 1.0f, 0.0f);
            test_pair(ta, tb, 0.5f, 0.75f);
        }
    return check_done("test_bgemm");
}
