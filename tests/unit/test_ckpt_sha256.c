// test_ckpt_sha256.c: runtime/sha256 against the FIPS 180-2 example vectors, fed whole
// and in awkward splits (1, 63, 64, 65 bytes), plus kd_sha256_file on a temp file.
// Exact comparison: a hash has no tolerance.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/base/sha256.h"

static int fails = 0;

static void check(const char *what, const char *got, const char *want) {
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "FAIL %s:\n  got  %s\n  want %s\n", what, got, want);
        fails++;
    }
}

// Hash msg (len n) feeding pieces of `step` bytes.
static void hash_split(const void *msg, size_t n, size_t step, char hex[65]) {
    kd_sha256 c;
    uint8_t d[32];
    kd_sha256_init(&c);
    for (size_t i = 0; i < n; i += step)
        kd_sha256_update(&c, (const char *)msg + i, n - i < step ? n - i : step);
    kd_sha256_final(&c, d);
    kd_sha256_hex(d, hex);
}

int main(void) {
    struct {
        const char *msg;
        const char *want;
    } v[] = {
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrl"
         "mnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    size_t steps[] = {1, 63, 64, 65, 1000};
    char hex[65], what[128];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            hash_split(v[i].msg, strlen(v[i].msg), steps[s], hex);
            snprintf(what, sizeof what, "vector %zu split %zu", i, steps[s]);
            check(what, hex, v[i].want);
        }
    // one million 'a' (FIPS 180-2 appendix B.3)
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    const char *want_a = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    hash_split(a, n, 4099, hex);
    check("1e6 x 'a' split 4099", hex, want_a);

    // kd_sha256_file: same bytes through a file
    char path[] = "/tmp/kd_sha256_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, a, n) != (ssize_t)n) {
        fprintf(stderr, "FAIL cannot write %s\n", path);
        return 1;
    }
    close(fd);
    uint64_t size = 0;
    int rc = kd_sha256_file(path, hex, &size);
    unlink(path);
    if (rc != 0 || size != n) {
        fprintf(stderr, "FAIL kd_sha256_file rc=%d size=%llu want %zu\n", rc,
                (unsigned long long)size, n);
        fails++;
    } else
        check("kd_sha256_file 1e6 x 'a'", hex, want_a);
    if (kd_sha256_file("/nonexistent/kd", hex, &size) == 0) {
        fprintf(stderr, "FAIL missing file hashed\n");
        fails++;
    }
    free(a);
    if (fails) return 1;
    printf("sha256: all FIPS 180-2 vectors match\n");
    return 0;
}
