// fuzz_util.h: helpers shared by the libFuzzer harnesses in tests/fuzz/ (built only with
// -DKD_FUZZ=ON, see tests/fuzz/run.sh). The parsers under test read files by path, so each
// harness writes the fuzzed bytes to a scratch file in a per-process directory and reuses
// it. Invariant: a harness aborts only on its own I/O failure, never because of the input.
#pragma once
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// The per-process scratch directory "$TMPDIR/kd_fuzz_<pid>" (made on first use). The fuzz
// script points TMPDIR at a directory it deletes afterwards.
static inline const char *kd_fuzz_dir(void) {
    static char dir[512];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/kd_fuzz_%d", t && *t ? t : "/tmp", (int)getpid());
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            perror(dir);
            abort();
        }
    }
    return dir;
}

// "<scratch dir>/<name>" in a static buffer per call site's own array.
static inline void kd_fuzz_path(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", kd_fuzz_dir(), name);
}

// Write n bytes to path (truncating); aborts on I/O failure (a harness bug, not input).
static inline void kd_fuzz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}
