// safetensors.c: reading safetensors: headers (validated against file sizes), tensor reads
// with F16/BF16 -> F32 conversion, sharded index files. Writing: safetensors_write.c.
#include "runtime/store/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/base/fs.h"
#include "runtime/base/json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian data directly; port the byte swaps first"
#endif

typedef struct {
    char *path;
    int fd;
    uint64_t data_start, data_size; // data section: [data_start, data_start + data_size)
} shard;

struct kd_safetensors {
    shard *files;
    int nfiles;
    kd_safetensors_tensor *t;
    size_t n, cap;
    size_t *by_name; // indices into t sorted by name, for kd_safetensors_find
    char **meta;     // key, value, key, value, ...
    size_t n_meta;
};

// Known dtypes and their element sizes, so that any tensor's byte range can be checked
// even when it cannot be read as float.
static int dtype_size(const char *d) {
    static const struct {
        const char *name;
        int size;
    } tab[] = {{"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
               {"U64", 8}, {"I32", 4}, {"U32", 4},  {"I16", 2},     {"U16", 2},
               {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(tab[i].name, d) == 0) return tab[i].size;
    return 0;
}

// ------------------------------------------------------------------------------ halves

float kd_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13); // inf / nan
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13); // rebias 15 -> 127
    } else if (man == 0) {
        bits = sign; // signed zero
    } else {
        // Subnormal: shift the mantissa up until its leading 1 is the implicit bit.
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float kd_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// ------------------------------------------------------------------------------ reading

static int read_exact(int fd, void *buf, size_t n, uint64_t off) {
    char *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r, n -= (size_t)r, off += (uint64_t)r;
    }
    return 0;
}

static int cmp_range(const void *a, const void *b) {
    const kd_safetensors_tensor *x = *(const kd_safetensors_tensor *const *)a;
    const kd_safetensors_tensor *y = *(const kd_safetensors_tensor *const *)b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

// Parse one header entry (an object describing a tensor) into t; `fname` for messages.
static int parse_entry(const char *fname, const kd_json *e, uint64_t data_size,
                       kd_safetensors_tensor *t, kd_error *err) {
    const char *nm = e->key;
    if (e->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT, "%s: tensor '%s': expected an object, found %s", fname, nm,
                       kd_json_type_name(e->type));
    const kd_json *dt = kd_json_get(e, "dtype"), *sh = kd_json_get(e, "shape"),
                  *off = kd_json_get(e, "data_offsets");
    if (!dt || dt->type != KD_JSON_STRING || dt->len >= sizeof t->dtype || !dtype_size(dt->str))
        return kd_fail(err, KD_EINPUT,
                       "%s: tensor '%s': expected \"dtype\" one of F64 F32 F16 BF16 I64 U64 I32 "
                       "U32 I16 U16 I8 U8 BOOL F8_E4M3 F8_E5M2, found %s",
                       fname, nm, dt && dt->type == KD_JSON_STRING ? dt->str : "none");
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->str);
    if (!sh || sh->type != KD_JSON_ARRAY || sh->n > KD_SAFETENSORS_MAX_DIMS)
        return kd_fail(err, KD_EINPUT,
                       "%s: tensor '%s': expected \"shape\" an array of at most %d sizes, found %s",
                       fname, nm, KD_SAFETENSORS_MAX_DIMS,
                       sh ? kd_json_type_name(sh->type) : "none");
    t->ndim = (int)sh->n;
    // Refuse absurd shapes before the product can wrap around 64 bits.
    uint64_t numel = 1;
    for (size_t i = 0; i < sh->n; i++) {
        const kd_json *d = &sh->items[i];
        if (d->type != KD_JSON_NUMBER || !d->is_int || d->integer < 0)
            return kd_fail(err, KD_EINPUT,
                           "%s: tensor '%s': expected shape[%zu] a non-negative integer, found %s",
                           fname, nm, i, kd_json_type_name(d->type));
        t->shape[i] = d->integer;
        uint64_t s = (uint64_t)d->integer;
        if (s && numel > ((uint64_t)1 << 60) / s)
            return kd_fail(err, KD_EINPUT,
                           "%s: tensor '%s': expected fewer than 2^60 elements, found a shape "
                           "whose product is larger",
                           fname, nm);
        numel *= s;
    }
    if (!off || off->type != KD_JSON_ARRAY || off->n != 2 || off->items[0].type != KD_JSON_NUMBER ||
        off->items[1].type != KD_JSON_NUMBER || !off->items[0].is_int || !off->items[1].is_int ||
        off->items[0].integer < 0 || off->items[1].integer < off->items[0].integer)
        return kd_fail(err, KD_EINPUT,
                       "%s: tensor '%s': expected \"data_offsets\" [begin, end] with 0 <= begin "
                       "<= end, found something else",
                       fname, nm);
    t->begin = (uint64_t)off->items[0].integer;
    t->end = (uint64_t)off->items[1].integer;
    uint64_t want = numel * (uint64_t)dtype_size(t->dtype);
    if (t->end - t->begin != want)
        return kd_fail(err, KD_EINPUT,
                       "%s: tensor '%s': expected %llu bytes for %s with %llu elements, found "
                       "data_offsets spanning %llu",
                       fname, nm, (unsigned long long)want, t->dtype, (unsigned long long)numel,
                       (unsigned long long)(t->end - t->begin));
    if (t->end > data_size)
        return kd_fail(err, KD_EINPUT,
                       "%s: tensor '%s': expected data_offsets within the %llu-byte data section, "
                       "found end %llu (file truncated?)",
                       fname, nm, (unsigned long long)data_size, (unsigned long long)t->end);
    t->numel = (int64_t)numel;
    return KD_OK;
}

// Opens path as shard st->files[fi] (appended even on failure, so close frees it), checks
// the 8-byte header length against the file size and reads the header JSON (*hdr, hlen
// bytes, caller frees).
static int open_shard(kd_safetensors *st, const char *path, char **hdr, uint64_t *hlen,
                      kd_error *err) {
    int fi = st->nfiles;
    st->files = kd_realloc(st->files, (size_t)(fi + 1) * sizeof *st->files);
    shard *sh = &st->files[fi];
    sh->path = kd_strdup(path);
    sh->fd = open(path, O_RDONLY | O_CLOEXEC);
    st->nfiles++;
    if (sh->fd < 0)
        return kd_fail(err, KD_EINPUT, "%s: expected a readable safetensors file, found %s", path,
                       strerror(errno));
    struct stat sb;
    if (fstat(sh->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        return kd_fail(err, KD_EINPUT, "%s: expected a regular file, found something else", path);
    uint64_t fsize = (uint64_t)sb.st_size;
    unsigned char lenbuf[8];
    if (fsize < 8 || read_exact(sh->fd, lenbuf, 8, 0))
        return kd_fail(err, KD_EINPUT,
                       "%s: expected an 8-byte header length, found a %llu-byte file", path,
                       (unsigned long long)fsize);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | lenbuf[i];
    if (n > KD_SAFETENSORS_MAX_HEADER || n > fsize - 8)
        return kd_fail(err, KD_EINPUT,
                       "%s: expected a header length at most %llu (file size minus 8, limit 100 "
                       "MiB), found %llu",
                       path, (unsigned long long)(fsize - 8), (unsigned long long)n);
    sh->data_start = 8 + n;
    sh->data_size = fsize - 8 - n;
    *hdr = kd_malloc((size_t)n + 1);
    if (read_exact(sh->fd, *hdr, (size_t)n, 8)) {
        free(*hdr);
        *hdr = NULL;
        return kd_fail(err, KD_EINPUT, "%s: could not read the %llu-byte header", path,
                       (unsigned long long)n);
    }
    *hlen = n;
    return KD_OK;
}

// The "__metadata__" member e of shard fi: string values only; the first shard's describe
// the checkpoint and are kept.
static int read_metadata(kd_safetensors *st, int fi, const char *path, const kd_json *e,
                         kd_error *err) {
    if (e->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT, "%s: expected \"__metadata__\" an object, found %s", path,
                       kd_json_type_name(e->type));
    for (size_t k = 0; k < e->n; k++) {
        const kd_json *m = &e->items[k];
        if (m->type != KD_JSON_STRING)
            return kd_fail(err, KD_EINPUT, "%s: __metadata__.%s: expected a string value, found %s",
                           path, m->key, kd_json_type_name(m->type));
        if (fi == 0) {
            st->meta = kd_realloc(st->meta, (st->n_meta + 1) * 2 * sizeof *st->meta);
            st->meta[2 * st->n_meta] = kd_strdup(m->key);
            st->meta[2 * st->n_meta + 1] = kd_strdup(m->str);
            st->n_meta++;
        }
    }
    return KD_OK;
}

// Byte ranges of the tensors st->t[first..n) must not overlap (zero-size ones overlap
// nothing).
static int check_overlaps(const kd_safetensors *st, size_t first, const char *path,
                          kd_error *err) {
    size_t cnt = st->n - first;
    if (cnt < 2) return KD_OK;
    const kd_safetensors_tensor **idx = kd_malloc(cnt * sizeof *idx);
    for (size_t i = 0; i < cnt; i++) idx[i] = &st->t[first + i];
    qsort(idx, cnt, sizeof *idx, cmp_range);
    uint64_t hi = 0;
    const char *hi_name = NULL;
    int rc = KD_OK;
    for (size_t i = 0; i < cnt && !rc; i++) {
        if (idx[i]->begin == idx[i]->end) continue;
        if (hi_name && idx[i]->begin < hi)
            rc = kd_fail(err, KD_EINPUT,
                         "%s: tensor '%s': expected data_offsets not overlapping '%s', found "
                         "begin %llu < its end %llu",
                         path, idx[i]->name, hi_name, (unsigned long long)idx[i]->begin,
                         (unsigned long long)hi);
        hi = idx[i]->end, hi_name = idx[i]->name;
    }
    free(idx);
    return rc;
}

// Open one .safetensors file, validate its header and append its tensors to st.
static int load_file(kd_safetensors *st, const char *path, kd_error *err) {
    int fi = st->nfiles;
    char *hdr = NULL;
    uint64_t hlen = 0;
    int rc = open_shard(st, path, &hdr, &hlen, err);
    if (rc) return rc;
    // Writers pad the header with spaces to 8-byte alignment; JSON allows trailing spaces.
    char where[1200];
    snprintf(where, sizeof where, "%s: header", path);
    kd_json *root = NULL;
    rc = kd_json_parse(hdr, (size_t)hlen, where, &root, err);
    free(hdr);
    if (rc) return rc;
    if (root->type != KD_JSON_OBJECT)
        rc = kd_fail(err, KD_EINPUT, "%s: expected the header to be a JSON object, found %s", path,
                     kd_json_type_name(root->type));
    size_t first = st->n;
    for (size_t i = 0; rc == KD_OK && i < root->n; i++) {
        const kd_json *e = &root->items[i];
        if (strcmp(e->key, "__metadata__") == 0) {
            rc = read_metadata(st, fi, path, e, err);
            continue;
        }
        if (st->n == st->cap) {
            st->cap = st->cap ? 2 * st->cap : 64;
            st->t = kd_realloc(st->t, st->cap * sizeof *st->t);
        }
        kd_safetensors_tensor *t = &st->t[st->n];
        memset(t, 0, sizeof *t);
        rc = parse_entry(path, e, st->files[fi].data_size, t, err);
        if (rc) break;
        t->name = kd_strdup(e->key);
        t->file = fi;
        st->n++;
    }
    if (rc == KD_OK) rc = check_overlaps(st, first, path, err);
    kd_json_free(root);
    return rc;
}

static int cmp_name_idx(const void *a, const void *b, void *ctx) {
    const kd_safetensors *st = ctx;
    return strcmp(st->t[*(const size_t *)a].name, st->t[*(const size_t *)b].name);
}

// Read a whole small text file (index JSON) into a NUL-terminated buffer.
static int read_index_text(const char *path, char **out, size_t *len, kd_error *err) {
    int e;
    kd_read_status rs = kd_read_file(path, KD_JSON_MAX_INPUT, out, len, &e);
    if (rs == KD_READ_EOPEN) return kd_fail(err, KD_EINPUT, "%s: cannot open: %s", path, strerror(e));
    if (rs == KD_READ_EBIG)
        return kd_fail(err, KD_EINPUT, "%s: expected at most 1 GiB, found more", path);
    if (rs == KD_READ_EIO) return kd_fail(err, KD_EINPUT, "%s: read error", path);
    return KD_OK;
}

// A shard name from an index must stay inside the checkpoint directory.
static int safe_shard_name(const char *s) {
    if (!*s || s[0] == '/' || strchr(s, '\\')) return 0;
    for (const char *p = s; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p))
        if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0')) return 0;
    return 1;
}

static int load_index(kd_safetensors *st, const char *path, kd_error *err) {
    char *buf = NULL;
    size_t len = 0;
    int rc = read_index_text(path, &buf, &len, err);
    if (rc) return rc;
    kd_json *root = NULL;
    rc = kd_json_parse(buf, len, path, &root, err);
    free(buf);
    if (rc) return rc;
    const kd_json *wm = kd_json_get(root, "weight_map");
    if (!wm || wm->type != KD_JSON_OBJECT) {
        rc = kd_fail(err, KD_EINPUT, "%s: expected an object \"weight_map\", found %s", path,
                     wm ? kd_json_type_name(wm->type) : "none");
        goto done;
    }
    char *dcopy = kd_strdup(path);
    char *dir = kd_strdup(dirname(dcopy));
    free(dcopy);
    for (size_t i = 0; i < wm->n && !rc; i++) {
        const kd_json *e = &wm->items[i];
        if (e->type != KD_JSON_STRING || !safe_shard_name(e->str)) {
            rc = kd_fail(err, KD_EINPUT,
                         "%s: weight_map.%s: expected a shard file name inside the checkpoint "
                         "directory, found %s",
                         path, e->key,
                         e->type == KD_JSON_STRING ? e->str : kd_json_type_name(e->type));
            break;
        }
        int seen = 0; // open each shard once, in order of first mention
        size_t need = strlen(dir) + 1 + e->len + 1;
        char *full = kd_malloc(need);
        snprintf(full, need, "%s/%s", dir, e->str);
        for (int f = 0; f < st->nfiles; f++) seen |= strcmp(st->files[f].path, full) == 0;
        if (!seen) rc = load_file(st, full, err);
        free(full);
    }
    // Every name in the map must be a tensor of the shard the map names.
    for (size_t i = 0; i < wm->n && !rc; i++) {
        const kd_json *e = &wm->items[i];
        const kd_safetensors_tensor *t = NULL;
        for (size_t k = 0; k < st->n && !t; k++)
            if (strcmp(st->t[k].name, e->key) == 0) t = &st->t[k];
        size_t need = strlen(dir) + 1 + e->len + 1;
        char *full = kd_malloc(need);
        snprintf(full, need, "%s/%s", dir, e->str);
        if (!t || strcmp(st->files[t->file].path, full) != 0)
            rc = kd_fail(err, KD_EINPUT, "%s: weight_map.%s: expected the tensor in %s, found %s",
                         path, e->key, e->str, t ? st->files[t->file].path : "it in no shard");
        free(full);
    }
    free(dir);
done:
    kd_json_free(root);
    return rc;
}

int kd_safetensors_open(const char *path, kd_safetensors **out, kd_error *err) {
    *out = NULL;
    kd_safetensors *st = kd_calloc(1, sizeof *st);
    struct stat sb;
    int rc;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        size_t need = strlen(path) + 40;
        char *p = kd_malloc(need);
        snprintf(p, need, "%s/model.safetensors.index.json", path);
        if (access(p, F_OK) == 0) {
            rc = load_index(st, p, err);
        } else {
            snprintf(p, need, "%s/model.safetensors", path);
            rc = access(p, F_OK) == 0
                     ? load_file(st, p, err)
                     : kd_fail(err, KD_EINPUT,
                               "%s: expected model.safetensors.index.json or model.safetensors "
                               "in the directory, found neither",
                               path);
        }
        free(p);
    } else if (kd_str_endswith(path, ".json")) {
        rc = load_index(st, path, err);
    } else {
        rc = load_file(st, path, err);
    }
    if (!rc) {
        st->by_name = kd_malloc((st->n ? st->n : 1) * sizeof *st->by_name);
        for (size_t i = 0; i < st->n; i++) st->by_name[i] = i;
        qsort_r(st->by_name, st->n, sizeof *st->by_name, cmp_name_idx, st);
        for (size_t i = 1; i < st->n && !rc; i++) {
            const kd_safetensors_tensor *a = &st->t[st->by_name[i - 1]],
                                        *b = &st->t[st->by_name[i]];
            if (strcmp(a->name, b->name) == 0)
                rc = kd_fail(err, KD_EINPUT, "%s: expected tensor '%s' once, found it in %s and %s",
                             path, a->name, st->files[a->file].path, st->files[b->file].path);
        }
    }
    if (rc) {
        kd_safetensors_close(st);
        return rc;
    }
    *out = st;
    return KD_OK;
}

void kd_safetensors_close(kd_safetensors *st) {
    if (!st) return;
    for (int f = 0; f < st->nfiles; f++) {
        if (st->files[f].fd >= 0) close(st->files[f].fd);
        free(st->files[f].path);
    }
    for (size_t i = 0; i < st->n; i++) free((char *)st->t[i].name);
    for (size_t i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
    free(st->meta);
    free(st->files);
    free(st->t);
    free(st->by_name);
    free(st);
}

size_t kd_safetensors_count(const kd_safetensors *st) {
    return st->n;
}

const kd_safetensors_tensor *kd_safetensors_at(const kd_safetensors *st, size_t i) {
    return i < st->n ? &st->t[i] : NULL;
}

const kd_safetensors_tensor *kd_safetensors_find(const kd_safetensors *st, const char *name) {
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->t[st->by_name[mid]].name, name);
        if (c == 0) return &st->t[st->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *kd_safetensors_metadata(const kd_safetensors *st, const char *key) {
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

int kd_safetensors_read_f32(kd_safetensors *st, const char *name, float *dst, size_t n,
                            kd_error *err) {
    const kd_safetensors_tensor *t = kd_safetensors_find(st, name);
    const char *fname = st->nfiles ? st->files[0].path : "safetensors";
    if (!t) return kd_fail(err, KD_EINPUT, "%s: expected a tensor '%s', found none", fname, name);
    const shard *sh = &st->files[t->file];
    if ((uint64_t)n != (uint64_t)t->numel)
        return kd_fail(err, KD_EINPUT, "%s: tensor '%s': expected %zu elements, found %lld",
                       sh->path, name, n, (long long)t->numel);
    int is16 = strcmp(t->dtype, "F16") == 0, isbf = strcmp(t->dtype, "BF16") == 0;
    if (strcmp(t->dtype, "F32") != 0 && !is16 && !isbf)
        return kd_fail(err, KD_EINPUT, "%s: tensor '%s': expected dtype F32, F16 or BF16, found %s",
                       sh->path, name, t->dtype);
    uint64_t off = sh->data_start + t->begin;
    if (!is16 && !isbf) {
        if (n && read_exact(sh->fd, dst, n * 4, off))
            return kd_fail(err, KD_ERUNTIME, "%s: tensor '%s': read failed: %s", sh->path, name,
                           strerror(errno));
        return KD_OK;
    }
    // Convert halves through a bounded staging buffer rather than one of the tensor's size.
    enum { CHUNK = 1 << 18 };
    uint16_t *tmp = kd_malloc((n < CHUNK ? (n ? n : 1) : CHUNK) * sizeof *tmp);
    int rc = KD_OK;
    for (size_t i = 0; i < n && !rc; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        if (read_exact(sh->fd, tmp, m * 2, off + 2 * i)) {
            rc = kd_fail(err, KD_ERUNTIME, "%s: tensor '%s': read failed: %s", sh->path, name,
                         strerror(errno));
            break;
        }
        for (size_t k = 0; k < m; k++)
            dst[i + k] = is16 ? kd_f16_to_f32(tmp[k]) : kd_bf16_to_f32(tmp[k]);
    }
    free(tmp);
    return rc;
}
