// test_tfevents.c: the TensorBoard event writer's pieces. CRC-32C against the published
// check value (RFC 3720 B.4: "123456789" -> 0xE3069283) and its TFRecord mask; a file of a
// version event and scalar events whose records frame and checksum correctly and whose
// bytes match a hand-assembled Event; truncation keeps steps <= N, drops a torn tail, and a
// reopened file is appended to without a second version event. (TensorBoard's own reader
// is the integration test report/tb_resume.sh.)
#include <stdint.h>
#include <string.h>

#include "runtime/base/tfevents.h"
#include "check.h"

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// Reads the records of path: their count, and a copy of record `want` in rec (len *rn).
static int records(const char *path, int want, unsigned char *rec, size_t *rn) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "%s: cannot open", path);
    if (!f) return -1;
    unsigned char head[12], buf[4096], tail[4];
    int n = 0;
    while (fread(head, 1, 12, f) == 12) {
        uint64_t len = 0;
        for (int i = 0; i < 8; i++) len |= (uint64_t)head[i] << (8 * i);
        CHECK(le32(head + 8) == kd_crc32c_masked(head, 8), "record %d: length crc wrong", n);
        CHECK(len <= sizeof buf, "record %d: length %llu", n, (unsigned long long)len);
        if (len > sizeof buf || fread(buf, 1, len, f) != len || fread(tail, 1, 4, f) != 4) break;
        CHECK(le32(tail) == kd_crc32c_masked(buf, len), "record %d: data crc wrong", n);
        if (n == want) memcpy(rec, buf, len), *rn = len;
        n++;
    }
    fclose(f);
    return n;
}

int main(void) {
    uint32_t c = kd_crc32c("123456789", 9);
    CHECK(c == 0xE3069283u, "crc32c(123456789) = %08x, expected e3069283", c);
    uint32_t want_mask = ((c >> 15) | (c << 17)) + 0xA282EAD8u;
    CHECK(kd_crc32c_masked("123456789", 9) == want_mask, "masked %08x, expected %08x",
          kd_crc32c_masked("123456789", 9), want_mask);

    char dir[512], path[600];
    check_tmpdir(dir, sizeof dir, "tfevents");
    snprintf(path, sizeof path, "%s/%s", dir, KD_TFEVENTS_FILE);
    kd_tfevents w = {0};
    kd_error err = {0};
    CHECK(kd_tfevents_open(&w, path, &err) == KD_OK, "open: %s", err.msg);
    for (int s = 1; s <= 6; s++) {
        const char *tags[] = {"st/loss"};
        float v[] = {0.5f * (float)s};
        kd_tfevents_scalars(&w, s * 10, 1.5, tags, v, 1);
    }
    kd_tfevents_close(&w);
    unsigned char rec[4096];
    size_t rn = 0;
    int n = records(path, 1, rec, &rn);
    CHECK(n == 7, "%d records, expected 7 (version + 6 scalars)", n);
    // Event{wall_time 1.5, step 10, summary{value{tag "st/loss", simple_value 0.5}}}
    const unsigned char want[] = {0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x10, 10, 0x2A, 16, 0x0A, 14,
                                  0x0A, 7, 's', 't', '/', 'l', 'o', 's', 's', 0x15, 0, 0, 0, 0x3F};
    CHECK(rn == sizeof want && memcmp(rec, want, rn) == 0, "record 1: %zu bytes, not the hand-made Event", rn);

    // a torn record at the end, then truncation after step 30
    FILE *f = fopen(path, "ab");
    fwrite("\x40\0\0\0\0\0\0\0\x01\x02", 1, 10, f);
    fclose(f);
    CHECK(kd_tfevents_truncate_after(path, 30, &err) == KD_OK, "truncate: %s", err.msg);
    n = records(path, 3, rec, &rn);
    CHECK(n == 4, "%d records after truncating at step 30, expected 4", n);
    CHECK(rn > 10 && rec[9] == 0x10 && rec[10] == 30, "record 3 is not step 30");
    CHECK(kd_tfevents_open(&w, path, &err) == KD_OK, "reopen: %s", err.msg);
    const char *tags[] = {"st/loss", "st/lr"};
    float v[] = {1.0f, 2.0f};
    kd_tfevents_scalars(&w, 40, 2.0, tags, v, 2);
    kd_tfevents_close(&w);
    n = records(path, 0, rec, &rn);
    CHECK(n == 5, "%d records after appending, expected 5 (no second version event)", n);
    CHECK(kd_tfevents_truncate_after("/nonexistent/x", 3, &err) == KD_OK, "a missing file must be fine");
    check_rmtree(dir);
    return check_done("tfevents");
}
