// test_safetensors.c: F32 write/read round trip (bitwise), half conversions, corrupt and
// hostile headers rejected with the file name in the message. With a directory argument
// it instead checks files written by tests/reference/make_safetensors.py (by hand, no
// safetensors package) against the expected float32 values listed in DIR/manifest.txt.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/store/safetensors.h"
#include "check.h"

static char dir[256];

// Compare n floats bitwise (exact: the format stores bits, and conversions are exact).
static void check_bits(const char *what, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], 4) != 0) {
            CHECK(0, "%s[%zu]: got %.9g want %.9g", what, i, got[i], want[i]);
            return;
        }
    }
}

// ------------------------------------------------------------------------ round trip

static void test_round_trip(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    float w[6] = {1.5f, -2.25f, 3e-38f, -0.0f, 1e30f, 7.0f}, b[3] = {0.1f, 0.2f, 0.3f}, s = 42.0f;
    int64_t sw[2] = {2, 3}, sb[1] = {3}, se[2] = {0, 5};
    kd_safetensors_entry e[] = {{"layers.0.mixer.q_proj.weight", 2, sw, w},
                                {"bias \"quoted\"", 1, sb, b},
                                {"scalar", 0, NULL, &s},
                                {"empty", 2, se, NULL}};
    const char *meta[] = {"format", "pt", "recipe", "line1\nline2 \"q\" caf\xc3\xa9"};
    kd_error err = {0};
    int rc = kd_safetensors_write_f32(path, e, 4, meta, 2, &err);
    CHECK(rc == KD_OK, "write: %s", err.msg);
    char tmp[340];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "temporary file %s left behind", tmp);

    // Header length is a multiple of 8 (data section aligned).
    FILE *f = fopen(path, "rb");
    unsigned char lb[8] = {0};
    CHECK(f && fread(lb, 1, 8, f) == 8, "cannot reread %s", path);
    if (f) fclose(f);
    CHECK(lb[0] % 8 == 0, "header length %u not a multiple of 8", lb[0]);

    kd_safetensors *st = NULL;
    rc = kd_safetensors_open(path, &st, &err);
    CHECK(rc == KD_OK, "open: %s", err.msg);
    if (rc) return;
    CHECK(kd_safetensors_count(st) == 4, "count %zu", kd_safetensors_count(st));
    const kd_safetensors_tensor *t = kd_safetensors_find(st, "layers.0.mixer.q_proj.weight");
    CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6 &&
              strcmp(t->dtype, "F32") == 0,
          "q_proj entry wrong");
    t = kd_safetensors_find(st, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1, "scalar entry wrong");
    t = kd_safetensors_find(st, "empty");
    CHECK(t && t->numel == 0, "empty entry wrong");
    CHECK(kd_safetensors_find(st, "nope") == NULL, "found a missing name");
    CHECK(kd_safetensors_at(st, 4) == NULL, "at(4) not NULL");
    float got[6];
    CHECK(kd_safetensors_read_f32(st, "layers.0.mixer.q_proj.weight", got, 6, &err) == 0, "%s",
          err.msg);
    check_bits("w", got, w, 6);
    CHECK(kd_safetensors_read_f32(st, "bias \"quoted\"", got, 3, &err) == 0, "%s", err.msg);
    check_bits("b", got, b, 3);
    CHECK(kd_safetensors_read_f32(st, "scalar", got, 1, &err) == 0, "%s", err.msg);
    check_bits("s", got, &s, 1);
    CHECK(kd_safetensors_read_f32(st, "empty", got, 0, &err) == 0, "%s", err.msg);
    const char *m = kd_safetensors_metadata(st, "recipe");
    CHECK(m && strcmp(m, meta[3]) == 0, "metadata recipe = %s", m ? m : "(null)");
    CHECK(kd_safetensors_metadata(st, "absent") == NULL, "absent metadata found");

    // Caller mistakes: wrong element count, unknown name.
    kd_error_clear(&err);
    rc = kd_safetensors_read_f32(st, "bias \"quoted\"", got, 4, &err);
    CHECK(rc == KD_EINPUT && strstr(err.msg, "expected 4 elements, found 3"), "rc %d %s", rc,
          err.msg);
    kd_error_clear(&err);
    rc = kd_safetensors_read_f32(st, "nope", got, 1, &err);
    CHECK(rc == KD_EINPUT && strstr(err.msg, "rt.safetensors"), "rc %d %s", rc, err.msg);
    kd_safetensors_close(st);

    // Duplicate names are refused by the writer.
    kd_safetensors_entry dup[] = {{"x", 1, sb, b}, {"x", 1, sb, b}};
    kd_error_clear(&err);
    rc = kd_safetensors_write_f32(path, dup, 2, NULL, 0, &err);
    CHECK(rc != KD_OK && strstr(err.msg, "'x' twice"), "rc %d %s", rc, err.msg);
}

// ------------------------------------------------------------------------ halves

static void test_halves(void) {
    struct {
        uint16_t h;
        float f;
    } f16[] = {{0x0000, 0.0f},
               {0x8000, -0.0f},
               {0x3C00, 1.0f},
               {0xC100, -2.5f},
               {0x7BFF, 65504.0f},
               {0x0001, 5.9604644775390625e-8f},
               {0x03FF, 6.0975551605224609375e-5f},
               {0x0400, 6.103515625e-5f},
               {0x7C00, INFINITY},
               {0xFC00, -INFINITY},
               {0x3555, 0.333251953125f}};
    for (size_t i = 0; i < sizeof f16 / sizeof f16[0]; i++) {
        float g = kd_f16_to_f32(f16[i].h);
        CHECK(memcmp(&g, &f16[i].f, 4) == 0, "f16 0x%04x -> %.10g want %.10g", f16[i].h, g,
              f16[i].f);
    }
    CHECK(isnan(kd_f16_to_f32(0x7E00)), "f16 nan");
    CHECK(kd_bf16_to_f32(0x3F80) == 1.0f && kd_bf16_to_f32(0xC049) == -3.140625f, "bf16 %g %g",
          kd_bf16_to_f32(0x3F80), kd_bf16_to_f32(0xC049));
}

// ------------------------------------------------------------------------ corrupt files

// Write an 8-byte length (hlen, or the header's size when hlen is ~0) + header + pad bytes.
static void write_raw(const char *path, uint64_t hlen, const char *hdr, size_t data_bytes) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    uint64_t n = hlen == ~(uint64_t)0 ? strlen(hdr) : hlen;
    for (int i = 0; i < 8; i++) fputc((int)((n >> (8 * i)) & 0xFF), f);
    fwrite(hdr, 1, strlen(hdr), f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

static void expect_reject(const char *name, uint64_t hlen, const char *hdr, size_t data,
                          const char *want) {
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_raw(path, hlen, hdr, data);
    kd_safetensors *st = NULL;
    kd_error err = {0};
    int rc = kd_safetensors_open(path, &st, &err);
    CHECK(rc == KD_EINPUT && st == NULL, "%s accepted (rc %d)", name, rc);
    CHECK(strstr(err.msg, name) != NULL, "%s: message lacks the file name: %s", name, err.msg);
    CHECK(strstr(err.msg, want) != NULL, "%s: message <%s> lacks <%s>", name, err.msg, want);
    kd_safetensors_close(st);
}

static void test_corrupt(void) {
    const uint64_t H = ~(uint64_t)0;
    char path[300];
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (f) fputs("abc", f), fclose(f);
    kd_safetensors *st = NULL;
    kd_error err = {0};
    CHECK(kd_safetensors_open(path, &st, &err) == KD_EINPUT && strstr(err.msg, "8-byte header"),
          "short file: %s", err.msg);

    expect_reject("huge.st", (uint64_t)1 << 62, "{}", 0, "header length at most");
    expect_reject("pastend.st", 1000, "{}", 10, "header length at most");
    expect_reject("notjson.st", H, "{\"a\":", 0, "header: line 1 col 6: expected a value");
    expect_reject("array.st", H, "[1,2]", 0, "expected the header to be a JSON object");
    expect_reject("dtype.st", H, "{\"t\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                  4, "tensor 't': expected \"dtype\"");
    expect_reject("negshape.st", H,
                  "{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                  "shape[0] a non-negative integer");
    expect_reject("fracshape.st", H,
                  "{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                  "shape[0] a non-negative integer");
    expect_reject(
        "dims.st", H,
        "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
        "at most 8 sizes");
    expect_reject("order.st", H, "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}",
                  8, "0 <= begin <= end");
    expect_reject("count.st", H,
                  "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16,
                  "expected 16 bytes for F32 with 4 elements, found data_offsets spanning 12");
    // A shape whose product overflows 64 bits must not wrap around to a small byte count.
    expect_reject("overflow.st", H,
                  "{\"t\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904,"
                  "4],\"data_offsets\":[0,0]}}",
                  0, "expected fewer than 2^60 elements");
    expect_reject("trunc.st", H,
                  "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                  "within the 8-byte data section, found end 16");
    expect_reject("overlap.st", H,
                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  12, "not overlapping");
    expect_reject("dupname.st", H,
                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  8, "key \"a\" twice");
    expect_reject("meta.st", H, "{\"__metadata__\":{\"n\":1}}", 0,
                  "__metadata__.n: expected a string");
    expect_reject("entry.st", H, "{\"t\":[1]}", 0, "tensor 't': expected an object, found array");

    // Index files: path traversal and a name listed in the wrong shard.
    char sub[300];
    snprintf(sub, sizeof sub, "%s/shard-a.safetensors", dir);
    write_raw(sub, H, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    snprintf(sub, sizeof sub, "%s/shard-b.safetensors", dir);
    write_raw(sub, H, "{\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    struct {
        const char *body, *want;
    } idx[] = {
        {"{\"weight_map\":{\"x\":\"../etc/passwd\"}}", "inside the checkpoint directory"},
        {"{\"weight_map\":{\"x\":\"shard-b.safetensors\"}}", "expected the tensor in shard-b"},
        {"{\"weight_map\":{\"z\":\"shard-a.safetensors\"}}", "found it in no shard"},
        {"{\"metadata\":{}}", "expected an object \"weight_map\""},
        {"{\"weight_map\":{\"x\":\"missing.safetensors\"}}", "missing.safetensors"}};
    for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++) {
        snprintf(path, sizeof path, "%s/bad.index.json", dir);
        f = fopen(path, "w");
        if (f) fputs(idx[i].body, f), fclose(f);
        kd_error_clear(&err);
        st = NULL;
        int rc = kd_safetensors_open(path, &st, &err);
        CHECK(rc == KD_EINPUT && strstr(err.msg, idx[i].want), "index %zu: rc %d msg %s", i, rc,
              err.msg);
        kd_safetensors_close(st);
    }
}

// ------------------------------------------------------------------------ python files

static int check_python_dir(const char *d) {
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.txt", d);
    FILE *mf = fopen(path, "r");
    if (!mf) {
        fprintf(stderr, "FAIL: cannot open %s\n", path);
        return 1;
    }
    char line[1024];
    int checked = 0;
    while (fgets(line, sizeof line, mf)) {
        line[strcspn(line, "\n")] = '\0';
        char kind[16], file[256], name[256], rest[512] = "";
        if (sscanf(line, "%15s %255s %255s %511[^\n]", kind, file, name, rest) < 3) continue;
        snprintf(path, sizeof path, "%s/%s", d, file);
        kd_safetensors *st = NULL;
        kd_error err = {0};
        if (kd_safetensors_open(path, &st, &err)) {
            CHECK(0, "open %s: %s", path, err.msg);
            continue;
        }
        if (strcmp(kind, "ok") == 0) {
            char expf[256];
            long long numel = 0;
            int consumed = 0;
            sscanf(rest, "%255s %lld %n", expf, &numel, &consumed);
            const kd_safetensors_tensor *t = kd_safetensors_find(st, name);
            CHECK(t && t->numel == numel, "%s/%s: numel %lld want %lld", file, name,
                  t ? (long long)t->numel : -1LL, numel);
            // Shape from the manifest, one size per remaining field.
            const char *p = rest + consumed;
            for (int k = 0; t && *p; k++) {
                long long s = strtoll(p, (char **)&p, 10);
                CHECK(k < t->ndim && t->shape[k] == s, "%s/%s: shape[%d] mismatch", file, name, k);
                while (*p == ' ') p++;
            }
            float *want = kd_calloc((size_t)numel + 1, 4), *got = kd_calloc((size_t)numel + 1, 4);
            snprintf(path, sizeof path, "%s/%s", d, expf);
            FILE *ef = fopen(path, "rb");
            size_t rd = ef ? fread(want, 4, (size_t)numel, ef) : 0;
            if (ef) fclose(ef);
            CHECK(rd == (size_t)numel, "%s: read %zu of %lld", path, rd, numel);
            int rc = kd_safetensors_read_f32(st, name, got, (size_t)numel, &err);
            CHECK(rc == KD_OK, "read %s/%s: %s", file, name, err.msg);
            char what[600];
            snprintf(what, sizeof what, "%s/%s", file, name);
            check_bits(what, got, want, (size_t)numel);
            free(want);
            free(got);
            checked++;
        } else if (strcmp(kind, "readerr") == 0) {
            float buf[64];
            const kd_safetensors_tensor *t = kd_safetensors_find(st, name);
            int rc = t ? kd_safetensors_read_f32(st, name, buf, (size_t)t->numel, &err) : -1;
            CHECK(rc == KD_EINPUT && strstr(err.msg, rest), "%s/%s: rc %d msg <%s> want <%s>", file,
                  name, rc, err.msg, rest);
            checked++;
        } else if (strcmp(kind, "meta") == 0) {
            const char *v = kd_safetensors_metadata(st, name);
            CHECK(v && strcmp(v, rest) == 0, "%s: metadata %s = %s want %s", file, name,
                  v ? v : "(null)", rest);
            checked++;
        }
        kd_safetensors_close(st);
    }
    fclose(mf);
    CHECK(checked >= 10, "only %d manifest entries checked", checked);
    printf("test_safetensors: %d python-written entries read\n", checked);
    return check_done("test_safetensors (python files)");
}

int main(int argc, char **argv) {
    if (argc == 2) return check_python_dir(argv[1]);
    if (check_tmpdir(dir, sizeof dir, "st")) return 1;
    test_round_trip();
    test_halves();
    test_corrupt();
    if (check_failures)
        fprintf(stderr, "test_safetensors: files kept in %s\n", dir);
    else
        check_rmtree(dir);
    return check_done("test_safetensors");
}
