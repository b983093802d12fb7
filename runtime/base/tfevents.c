// tfevents.c: TensorBoard event files (tfevents.h): CRC-32C, the TFRecord framing and the
// Event/Summary protobuf messages, encoded and (for the step only) decoded by hand.
//
// The messages, from TensorFlow's event.proto and summary.proto (field number, wire type):
//   Event   { double wall_time = 1 (fixed64); int64 step = 2 (varint);
//             string file_version = 3 (bytes); Summary summary = 5 (bytes) }
//   Summary { repeated Value value = 1 (bytes) }
//   Value   { string tag = 1 (bytes); float simple_value = 2 (fixed32) }
#include "runtime/base/tfevents.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KD_TFEVENTS_PATH_MAX 4096

// ----------------------------------------------------------------------------- CRC-32C

uint32_t kd_crc32c(const void *data, size_t n) {
    static uint32_t table[256];
    static int ready = 0;
    if (!ready) { // reflected Castagnoli polynomial 0x1EDC6F41
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

// TFRecord stores the CRC rotated right by 15 bits plus a constant.
uint32_t kd_crc32c_masked(const void *data, size_t n) {
    uint32_t c = kd_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

// ----------------------------------------------------------------------------- encoding

typedef struct {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = kd_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_varint(bytes *b, uint64_t v) {
    unsigned char tmp[10];
    int k = 0;
    do {
        tmp[k++] = (unsigned char)((v & 0x7F) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(b, tmp, (size_t)k);
}

static void put_le(bytes *b, uint64_t v, int nbytes) {
    unsigned char tmp[8];
    for (int i = 0; i < nbytes; i++) tmp[i] = (unsigned char)(v >> (8 * i));
    put(b, tmp, (size_t)nbytes);
}

// A length-delimited field: key (field << 3 | 2), length, bytes.
static void put_bytes_field(bytes *b, int field, const void *src, size_t n) {
    put_varint(b, (uint64_t)field << 3 | 2);
    put_varint(b, n);
    put(b, src, n);
}

// Event header: wall_time (field 1, fixed64) and step (field 2, varint).
static void put_event_head(bytes *b, int64_t step, double wall_time) {
    uint64_t bits;
    memcpy(&bits, &wall_time, sizeof bits);
    put_varint(b, 1 << 3 | 1);
    put_le(b, bits, 8);
    put_varint(b, 2 << 3 | 0);
    put_varint(b, (uint64_t)step); // int64: negative steps take 10 bytes, as in protobuf
}

// One TFRecord around the n bytes of rec; flushed so a kill tears at most this record.
static int write_record(FILE *f, const unsigned char *rec, size_t n) {
    unsigned char head[12];
    for (int i = 0; i < 8; i++) head[i] = (unsigned char)((uint64_t)n >> (8 * i));
    uint32_t lc = kd_crc32c_masked(head, 8), dc = kd_crc32c_masked(rec, n);
    for (int i = 0; i < 4; i++) head[8 + i] = (unsigned char)(lc >> (8 * i));
    unsigned char tail[4];
    for (int i = 0; i < 4; i++) tail[i] = (unsigned char)(dc >> (8 * i));
    int bad = fwrite(head, 1, 12, f) != 12 || fwrite(rec, 1, n, f) != n || fwrite(tail, 1, 4, f) != 4;
    return bad || fflush(f) != 0 ? -1 : 0;
}

// ----------------------------------------------------------------------------- writer

int kd_tfevents_open(kd_tfevents *w, const char *path, kd_error *err) {
    w->f = fopen(path, "ab");
    if (!w->f) return kd_fail(err, KD_ERUNTIME, "%s: cannot open for append: %s", path, strerror(errno));
    if (ftell(w->f) > 0) return KD_OK;
    bytes b = {0};
    put_event_head(&b, 0, (double)time(NULL));
    put_bytes_field(&b, 3, "brain.Event:2", 13);
    int bad = write_record(w->f, b.p, b.n);
    free(b.p);
    if (bad) {
        kd_tfevents_close(w);
        return kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", path, strerror(errno));
    }
    return KD_OK;
}

void kd_tfevents_scalars(kd_tfevents *w, int64_t step, double wall_time, const char *const *tags,
                         const float *vals, int n) {
    if (!w->f) return;
    bytes summary = {0}, value = {0}, ev = {0};
    for (int i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &vals[i], sizeof bits);
        value.n = 0;
        put_bytes_field(&value, 1, tags[i], strlen(tags[i]));
        put_varint(&value, 2 << 3 | 5);
        put_le(&value, bits, 4);
        put_bytes_field(&summary, 1, value.p, value.n);
    }
    put_event_head(&ev, step, wall_time);
    put_bytes_field(&ev, 5, summary.p, summary.n);
    write_record(w->f, ev.p, ev.n); // like metrics.jsonl, a failed log line does not stop training
    free(summary.p);
    free(value.p);
    free(ev.p);
}

void kd_tfevents_close(kd_tfevents *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
}

// ----------------------------------------------------------------------------- truncation

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        unsigned char c = *(*p)++;
        *v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) return 0;
    }
    return -1;
}

// The step field of an Event message (0 when absent, as in protobuf); -1 if malformed.
static int event_step(const unsigned char *p, size_t n, int64_t *step) {
    const unsigned char *end = p + n;
    *step = 0;
    while (p < end) {
        uint64_t key, v;
        if (get_varint(&p, end, &key)) return -1;
        int wire = (int)(key & 7);
        if (wire == 0) {
            if (get_varint(&p, end, &v)) return -1;
            if (key >> 3 == 2) *step = (int64_t)v;
        } else if (wire == 1 || wire == 5) {
            size_t k = wire == 1 ? 8 : 4;
            if ((size_t)(end - p) < k) return -1;
            p += k;
        } else if (wire == 2) {
            if (get_varint(&p, end, &v) || v > (uint64_t)(end - p)) return -1;
            p += v;
        } else {
            return -1;
        }
    }
    return 0;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// Copies the whole, valid records of f with step <= last_step to g; stops at the first
// torn or corrupt one (a kill mid-write).
static int copy_records(FILE *f, FILE *g, int64_t last_step) {
    unsigned char head[12], tail[4];
    unsigned char *rec = NULL;
    int bad = 0;
    while (!bad && fread(head, 1, 12, f) == 12) {
        uint64_t n = 0;
        for (int i = 0; i < 8; i++) n |= (uint64_t)head[i] << (8 * i);
        if (le32(head + 8) != kd_crc32c_masked(head, 8) || n > ((uint64_t)1 << 30)) break;
        rec = kd_realloc(rec, n ? n : 1);
        if (fread(rec, 1, n, f) != n || fread(tail, 1, 4, f) != 4) break;
        int64_t step;
        if (le32(tail) != kd_crc32c_masked(rec, n) || event_step(rec, n, &step)) break;
        if (step > last_step) continue;
        bad = fwrite(head, 1, 12, g) != 12 || fwrite(rec, 1, n, g) != n || fwrite(tail, 1, 4, g) != 4;
    }
    free(rec);
    return bad ? -1 : 0;
}

int kd_tfevents_truncate_after(const char *path, int64_t last_step, kd_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return KD_OK; // nothing written yet
    char tmp[KD_TFEVENTS_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *g = fopen(tmp, "wb");
    if (!g) {
        fclose(f);
        return kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", tmp, strerror(errno));
    }
    int bad = copy_records(f, g, last_step);
    fclose(f);
    bad |= fflush(g) != 0 || fsync(fileno(g)) != 0;
    bad |= fclose(g) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return kd_fail(err, KD_ERUNTIME, "%s: cannot rewrite: %s", path, strerror(errno));
    }
    return KD_OK;
}
