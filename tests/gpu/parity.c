// parity.c (target gpu_parity): every op of every kd_ops sub-table on the CUDA backend
// against the CPU backend, on random inputs of several shapes. One table of cases; a case is
// a function that builds its random inputs from a seed, uploads them to the backend it is
// given, runs the op(s) and downloads the outputs. The harness runs each case twice with the
// same seed (CPU, then the backend under test), compares every output with the case's
// tolerance and prints op, shape, max abs / rel error and PASS/FAIL. Gradient buffers of
// _bwd ops start from the same random values on both sides, so accumulate-vs-overwrite
// mistakes show. A sub-table (or op) the CUDA table lacks prints "SKIP ..." and counts as a
// failure: the suite never passes with ops missing.
// Usage: gpu_parity [--self] [--quick] [--perturb] [--probe] [--drop S] [--only SUBSTR]
//   --self     run the CPU backend against itself (no device needed: tests the harness)
//   --quick    small shapes only (for compute-sanitizer runs)
//   --probe    only check that a CUDA device is usable (exit 0, or 77 with the reason)
//   --drop S   test hook: the table under test loses sub-table S (mamba2 or decode); the
//              run must then report "SKIP S" and fail
//   --perturb  shift one element of every output under test by 1% of the output's scale
//              and succeed only if EVERY comparison then fails (proves each check can fail)
// Exit: 0 all passed, 1 a case failed or ops are missing, 77 no usable CUDA device.
// Tolerances (per case, pass when max|a-b| <= atol + rtol * max|ref|): elementwise ops and
// copies agree to rounding (1e-6); reductions and cuBLAS sums differ in order (1e-5..1e-4);
// exp/log-heavy losses and the Mamba-2 scans 1e-4..1e-3 (sums over T and V in float).
#include "gpu/parity.h"

// ============================================================================ main

static const void *subtable(const kd_ops *o, kd_cap cap) {
    switch (cap) {
    case KD_CAP_MEM:
        return o->mem;
    case KD_CAP_VEC:
        return o->vec;
    case KD_CAP_NN:
        return o->nn;
    case KD_CAP_LOSSES:
        return o->losses;
    case KD_CAP_OPTIM:
        return o->optim;
    case KD_CAP_MAMBA2:
        return o->mamba2;
    case KD_CAP_DECODE:
        return o->decode;
    default:
        return NULL;
    }
}

static void shape_str(char *s, size_t n, const pcase *c) {
    size_t k = 0;
    int last = 7;
    while (last > 0 && c->d[last] == 0) last--;
    for (int i = 0; i <= last && k < n; i++)
        k += (size_t)snprintf(s + k, n - k, "%s%d", i ? "," : "", c->d[i]);
}

static void usage(void) {
    fprintf(
        stderr,
        "usage: gpu_parity [--self] [--quick] [--perturb] [--probe] [--drop S] [--only SUBSTR]\n"
        "  --self   CPU against CPU (no device: tests the harness)\n"
        "  --quick  small shapes only (for compute-sanitizer)\n"
        "  --probe  exit 0 when a CUDA device is usable, else 77 with the reason\n"
        "  --drop S  test hook: drop sub-table S (mamba2|decode) from the table under test\n"
        "  --perturb  every check must fail on a perturbed output\n"
        "  --only   run the cases whose sub-table or op name contains SUBSTR\n");
}

int main(int argc, char **argv) {
    int self = 0, quick = 0, perturb = 0, probe = 0;
    const char *only = NULL, *drop = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--self"))
            self = 1;
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--perturb"))
            perturb = 1;
        else if (!strcmp(argv[i], "--probe"))
            probe = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--drop") && i + 1 < argc)
            drop = argv[++i];
        else
            return usage(), 2;
    }
    const kd_ops *ref = kd_ops_cpu(), *dut = ref;
    if (!self) {
        char why[256] = "";
        dut = kd_ops_cuda(why, sizeof why);
        if (!dut) {
            printf("gpu_parity: skipped: %s\n", why);
            return 77;
        }
    }
    if (probe) { // only say whether a device answers, and what the CUDA table lacks
        char lacks[512] = "";
        int n = kd_ops_missing(dut, lacks, sizeof lacks);
        printf("gpu_parity: %s backend usable; %d ops missing%s%s\n", dut->name, n, n ? ": " : "",
               lacks);
        return 0;
    }
    static kd_ops dropped; // --drop: a copy of the table under test without one sub-table
    if (drop) {
        dropped = *dut;
        if (!strcmp(drop, "mamba2"))
            dropped.mamba2 = NULL;
        else if (!strcmp(drop, "decode"))
            dropped.decode = NULL;
        else
            return fprintf(stderr, "gpu_parity: --drop takes mamba2 or decode\n"), 2;
        dut = &dropped;
    }
    printf("gpu_parity: %s vs %s%s\n", dut->name, ref->name, quick ? " (quick shapes)" : "");
    int pass = 0, fail = 0, skipped[KD_CAP_COUNT] = {0};
    int ncases = g_ncases;
    for (int ci = 0; ci < ncases; ci++) {
        const pcase *c = &g_cases[ci];
        const char *cap = kd_cap_name(c->cap);
        if (quick && !c->quick) continue;
        if (only && !strstr(cap, only) && !strstr(c->op, only)) continue;
        if (!subtable(dut, c->cap)) {
            if (!skipped[c->cap]) printf("SKIP %s: not in the %s table\n", cap, dut->name), fail++;
            skipped[c->cap] = 1;
            continue;
        }
        char shape[96];
        shape_str(shape, sizeof shape, c);
        run a, b;
        memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
        a.o = ref, b.o = dut;
        a.rng = b.rng = 0x2545f4914f6cdd1dull + 7919ull * (uint64_t)ci;
        c->fn(&a, c);
        c->fn(&b, c);
        if (a.missing || b.missing) {
            printf("SKIP %s.%s: not in the %s table\n", cap, c->op,
                   a.missing ? ref->name : dut->name);
            fail++;
        } else if (a.nouts != b.nouts) {
            printf("FAIL %s.%s [%s]: %d outputs vs %d\n", cap, c->op, shape, a.nouts, b.nouts);
            fail++;
        } else {
            for (int k = 0; k < a.nouts; k++) {
                double mabs = 0, mref = 0;
                size_t worst = 0;
                if (perturb) {
                    for (size_t i = 0; i < a.nout[k]; i++)
                        if (fabs(a.out[k][i]) > mref) mref = fabs(a.out[k][i]);
                    b.out[k][0] = (float)(a.out[k][0] + 0.01 * (1.0 + mref));
                    mref = 0;
                }
                for (size_t i = 0; i < a.nout[k]; i++) {
                    double d = fabs((double)b.out[k][i] - a.out[k][i]);
                    if (d != d) d = INFINITY;
                    if (d > mabs) mabs = d, worst = i;
                    if (fabs(a.out[k][i]) > mref) mref = fabs(a.out[k][i]);
                }
                int ok = mabs <= c->atol + c->rtol * mref;
                printf("%s %-8s %-34s %-22s [%s] max abs %.2e rel %.2e (atol %.0e rtol %.0e)\n",
                       ok ? "PASS" : "FAIL", cap, c->op, a.name[k], shape, mabs,
                       mref > 0 ? mabs / mref : mabs, c->atol, c->rtol);
                if (!ok)
                    printf("     worst [%zu]: %s %.9g, %s %.9g\n", worst, dut->name,
                           b.out[k][worst], ref->name, a.out[k][worst]);
                ok ? pass++ : fail++;
            }
        }
        run_free(&a), run_free(&b);
    }
    printf("gpu_parity: %d passed, %d failed or missing\n", pass, fail);
    if (perturb) { // every comparison must have seen its perturbation
        printf("gpu_parity: --perturb: %s\n",
               pass == 0 && fail > 0 ? "every check failed as it must" : "SOME CHECKS ARE BLIND");
        return pass == 0 && fail > 0 ? 0 : 1;
    }
    return fail ? 1 : 0;
}
