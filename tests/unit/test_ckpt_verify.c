// test_ckpt_verify.c: kd_ckpt_verify and kd_ckpt_find_latest on hand-made checkpoint
// directories (no MPI, no HDF5: verify only looks at the MANIFEST, sizes and SHA-256), so
// it also runs under valgrind. Cases: valid, truncated file, one flipped byte, missing
// MANIFEST, truncated MANIFEST, unknown format version, file not listed, leftover .tmp dir;
// find_latest must fall back to the newest valid one and warn naming each skipped path.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/store/checkpoint.h"
#include "runtime/base/sha256.h"

static int fails = 0;
static char root[256];
static char warnings[8192];

static void warn_collect(const char *msg) {
    strncat(warnings, msg, sizeof warnings - strlen(warnings) - 2);
    strcat(warnings, "\n");
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

// A checkpoint directory ROOT/NAME with model.h5 / state.json of arbitrary content and a
// correct MANIFEST (if manifest != 0).
static void make_ckpt(const char *name, int manifest) {
    char dir[512], p[600], hex[65], line[256], man[1024] = "kdtrain-checkpoint 1\n";
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    mkdir(dir, 0777);
    const char *files[] = {"model.h5", "state.json"};
    for (int i = 0; i < 2; i++) {
        uint64_t size;
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        write_file(p, i ? "{\"step\": 1}\n" : "pretend these are HDF5 bytes of a model");
        kd_sha256_file(p, hex, &size);
        snprintf(line, sizeof line, "%s  %llu  %s\n", hex, (unsigned long long)size, files[i]);
        strcat(man, line);
    }
    strcat(man, "end\n");
    snprintf(p, sizeof p, "%s/MANIFEST", dir);
    if (manifest) write_file(p, man);
}

// verify(dir) must give `want`, and if invalid, why must contain `needle`.
static void expect(const char *name, int want, const char *needle) {
    char dir[512], why[1024];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    int got = kd_ckpt_verify(dir, why, sizeof why);
    if (got != want || (needle && !strstr(why, needle))) {
        fprintf(stderr, "FAIL verify %s: got %d (why \"%s\"), want %d with \"%s\"\n", name, got,
                why, want, needle ? needle : "");
        fails++;
    } else if (!want) {
        printf("ok: %s invalid: %s\n", name, why);
    }
}

static void edit(const char *name, const char *file, long at, int truncate_to) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s/%s", root, name, file);
    if (truncate_to >= 0) {
        if (truncate(p, truncate_to)) perror(p);
        return;
    }
    FILE *f = fopen(p, "r+b");
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x01, f); // one flipped bit: size unchanged, only the hash can tell
    fclose(f);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/kd_ckpt_verify_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    char p[600], out[600];

    make_ckpt("step-00000010", 1);
    expect("step-00000010", 1, NULL);

    make_ckpt("step-00000020", 1);
    edit("step-00000020", "model.h5", 0, 10);
    expect("step-00000020", 0, "model.h5: has 10 bytes, MANIFEST lists 39");

    make_ckpt("step-00000030", 1);
    edit("step-00000030", "model.h5", 7, -1);
    expect("step-00000030", 0, "model.h5: SHA-256");

    make_ckpt("step-00000040", 0);
    expect("step-00000040", 0, "MANIFEST: No such file");

    make_ckpt("step-00000050", 1);
    edit("step-00000050", "MANIFEST", 0, 150); // cut mid-line: header + part of line 2
    expect("step-00000050", 0, "MANIFEST truncated");

    make_ckpt("step-00000060", 1);
    snprintf(p, sizeof p, "%s/step-00000060/MANIFEST", root);
    write_file(p, "kdtrain-checkpoint 2\nend\n");
    expect("step-00000060", 0, "format version 2, this kdtrain reads version 1");

    make_ckpt("step-00000070", 1);
    snprintf(p, sizeof p, "%s/step-00000070/MANIFEST", root);
    write_file(p, "kdtrain-checkpoint 1\nend\n");
    expect("step-00000070", 0, "does not list model.h5");

    make_ckpt("step-00000080", 1);
    snprintf(p, sizeof p, "%s/step-00000080/MANIFEST", root);
    write_file(p, "kdtrain-checkpoint 1\n0123  12  ../model.h5\nend\n");
    expect("step-00000080", 0, "MANIFEST:2: expected");

    make_ckpt(".tmp-step-00000090", 1); // complete files, but the rename never happened
    make_ckpt("step-00000005", 1);

    // newest valid is step 10; every newer step-* and the .tmp dir must be named in a warning
    int found = kd_ckpt_find_latest(root, out, sizeof out, warn_collect);
    snprintf(p, sizeof p, "%s/step-00000010", root);
    if (!found || strcmp(out, p) != 0) {
        fprintf(stderr, "FAIL find_latest: found=%d dir=%s, want %s\n", found, found ? out : "-",
                p);
        fails++;
    }
    const char *named[] = {"step-00000080", "step-00000070", "step-00000060", "step-00000050",
                           "step-00000040", "step-00000030", "step-00000020", ".tmp-step-00000090"};
    for (int i = 0; i < 8; i++) {
        char needle[600];
        snprintf(needle, sizeof needle, "skipping %s/%s", root, named[i]);
        if (!strstr(warnings, needle)) {
            fprintf(stderr, "FAIL no warning \"%s\" in:\n%s", needle, warnings);
            fails++;
        }
    }
    if (strstr(warnings, "step-00000005") || strstr(warnings, "step-00000010")) {
        fprintf(stderr, "FAIL warned about the chosen or an older checkpoint:\n%s", warnings);
        fails++;
    }
    printf("find_latest warnings:\n%s", warnings);

    // nothing valid at all, and a missing root: both "none"
    snprintf(p, sizeof p, "%s/empty", root);
    mkdir(p, 0777);
    if (kd_ckpt_find_latest(p, out, sizeof out, NULL) != 0 ||
        kd_ckpt_find_latest("/nonexistent/kd/ckpt", out, sizeof out, NULL) != 0) {
        fprintf(stderr, "FAIL find_latest found something in an empty/missing root\n");
        fails++;
    }
    // shard ranges: contiguous, in order, cover [0,total), sizes differ by at most one
    size_t totals[] = {0, 1, 3, 1675, 1000003};
    for (int t = 0; t < 5; t++)
        for (int w = 1; w <= 7; w++) {
            size_t prev = 0, mn = (size_t)-1, mx = 0;
            for (int r = 0; r < w; r++) {
                size_t lo, hi;
                kd_shard_range(totals[t], w, r, &lo, &hi);
                if (lo != prev || hi < lo) {
                    fprintf(stderr, "FAIL shard %zu/%d r%d: [%zu,%zu) after %zu\n", totals[t], w, r,
                            lo, hi, prev);
                    fails++;
                }
                prev = hi;
                mn = hi - lo < mn ? hi - lo : mn;
                mx = hi - lo > mx ? hi - lo : mx;
            }
            if (prev != totals[t] || mx - mn > 1) {
                fprintf(stderr, "FAIL shard %zu/%d: end %zu, sizes %zu..%zu\n", totals[t], w, prev,
                        mn, mx);
                fails++;
            }
        }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", root);
    if (fails) return 1;
    printf("verify/find_latest: all corruption cases detected\n");
    return 0;
}
