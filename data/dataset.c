// dataset.c: opening, validating and reading kdtrain token datasets (see dataset.h).
#include "data/dataset.h"

#include <errno.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/h5util.h"
#include "data/vocab.h"

// Tokens are scanned at open in blocks of this many (8 MiB of int64 per block).
#define SCAN_BLOCK (1u << 20)
// Per-dataset chunk cache: enough for several gzip chunks so that nearby random windows
// do not decompress the same chunk again.
#define CHUNK_CACHE_BYTES (16u << 20)

struct kd_dataset {
    char *path;
    hid_t file, tokens, mask; // mask < 0 without /loss_mask
    uint64_t *offsets;        // (n_docs+1)
    kd_dataset_info info;
};

// ============================================================================ validation

// Open a 1-D integer dataset and return its length; fills err on any mismatch.
static int open_int_1d(kd_dataset *d, const char *name, hid_t *out, uint64_t *len, kd_error *err) {
    *out = -1;
    if (H5Lexists(d->file, name, H5P_DEFAULT) <= 0)
        return kd_fail(err, KD_EINPUT, "%s: %s is missing, expected a 1-D integer dataset", d->path,
                       name);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(dapl, 521, CHUNK_CACHE_BYTES, 0.75);
    hid_t ds = H5Dopen2(d->file, name, dapl);
    H5Pclose(dapl);
    if (ds < 0)
        return kd_fail(err, KD_EINPUT, "%s: %s is not a dataset, expected a 1-D integer dataset",
                       d->path, name);
    *out = ds;
    hid_t t = H5Dget_type(ds), s = H5Dget_space(ds);
    H5T_class_t cls = H5Tget_class(t);
    int rank = H5Sget_simple_extent_ndims(s);
    hsize_t dims[8] = {0};
    if (rank >= 1 && rank <= 8) H5Sget_simple_extent_dims(s, dims, NULL);
    H5Tclose(t);
    H5Sclose(s);
    if (cls != H5T_INTEGER)
        return kd_fail(err, KD_EINPUT,
                       "%s: %s has a %s dtype, expected an integer dtype "
                       "(uint32 for tokens)",
                       d->path, name,
                       cls == H5T_FLOAT    ? "floating-point"
                       : cls == H5T_STRING ? "string"
                                           : "non-integer");
    if (rank != 1)
        return kd_fail(err, KD_EINPUT, "%s: %s has rank %d, expected a 1-D dataset", d->path, name,
                       rank);
    *len = dims[0];
    return KD_OK;
}

static int read_attrs(kd_dataset *d, kd_error *err) {
    kd_dataset_info *in = &d->info;
    if (kd_h5_read_str_attr(d->file, "kind", in->kind, sizeof in->kind) < 0)
        return kd_fail(err, KD_EINPUT,
                       "%s: attribute 'kind' is missing or not a string, "
                       "expected tokens|sft|preference|kd",
                       d->path);
    if (strcmp(in->kind, "tokens") && strcmp(in->kind, "sft") && strcmp(in->kind, "preference") &&
        strcmp(in->kind, "kd"))
        return kd_fail(err, KD_EINPUT,
                       "%s: attribute kind = '%s', expected tokens|sft|"
                       "preference|kd",
                       d->path, in->kind);
    if (kd_h5_read_str_attr(d->file, "tokenizer", in->tokenizer, sizeof in->tokenizer) < 0)
        return kd_fail(err, KD_EINPUT,
                       "%s: attribute 'tokenizer' is missing or not a string, "
                       "expected a tokenizer name such as \"bytes\"",
                       d->path);
    const char *names[4] = {"vocab_size", "bos_id", "eos_id", "pad_id"};
    int *dst[4] = {&in->vocab_size, &in->bos_id, &in->eos_id, &in->pad_id};
    for (int i = 0; i < 4; i++) {
        long long v;
        if (kd_h5_read_int_attr(d->file, names[i], &v) < 0)
            return kd_fail(err, KD_EINPUT, "%s: attribute '%s' is missing or not an integer",
                           d->path, names[i]);
        long long lo = i == 0 ? 1 : -1, hi = i == 0 ? (1ll << 31) - 1 : in->vocab_size - 1;
        if (v < lo || v > hi)
            return kd_fail(err, KD_EINPUT, "%s: attribute %s = %lld, expected %lld..%lld%s",
                           d->path, names[i], v, lo, hi, i ? " (-1 = none)" : "");
        *dst[i] = (int)v;
    }
    kd_vocab v = {.vocab_size = in->vocab_size, .eos = in->eos_id};
    snprintf(v.name, sizeof v.name, "%s", in->tokenizer);
    int rc = kd_vocab_read_attrs(d->file, &v, d->path, err);
    memcpy(in->fingerprint, v.fingerprint, sizeof in->fingerprint);
    memcpy(in->stop_ids, v.stop, sizeof in->stop_ids);
    in->n_stop = v.n_stop;
    return rc;
}

// Offsets: 0 first, non-decreasing, n_tokens last. Kept in memory.
static int read_offsets(kd_dataset *d, kd_error *err) {
    hid_t ds;
    uint64_t m = 0;
    int rc = open_int_1d(d, "/offsets", &ds, &m, err);
    if (rc == KD_OK && m == 0)
        rc = kd_fail(err, KD_EINPUT, "%s: /offsets is empty, expected n_docs+1 >= 1 entries",
                     d->path);
    // a damaged header can declare any length: more documents than tokens is refused
    // before anything is allocated, and a failed allocation is an input error, not an abort
    if (rc == KD_OK && m > d->info.n_tokens + 1)
        rc = kd_fail(err, KD_EINPUT,
                     "%s: /offsets has %llu entries, expected at most n_tokens+1 = %llu "
                     "(damaged file?)",
                     d->path, (unsigned long long)m, (unsigned long long)d->info.n_tokens + 1);
    int64_t *o = NULL;
    if (rc == KD_OK && (m > SIZE_MAX / sizeof *o || !(o = malloc((size_t)m * sizeof *o))))
        rc = kd_fail(err, KD_EINPUT, "%s: cannot allocate %llu bytes for /offsets (damaged file?)",
                     d->path, (unsigned long long)m * sizeof *o);
    if (rc == KD_OK) {
        if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, o) < 0)
            rc = kd_fail(err, KD_EINPUT, "%s: cannot read /offsets", d->path);
        for (uint64_t i = 0; rc == KD_OK && i < m; i++) {
            if (i == 0 && o[0] != 0)
                rc = kd_fail(err, KD_EINPUT, "%s: /offsets[0] = %lld, expected 0", d->path,
                             (long long)o[0]);
            else if (i > 0 && o[i] < o[i - 1])
                rc = kd_fail(err, KD_EINPUT,
                             "%s: /offsets[%llu] = %lld < /offsets[%llu] = %lld, "
                             "expected non-decreasing offsets",
                             d->path, (unsigned long long)i, (long long)o[i],
                             (unsigned long long)(i - 1), (long long)o[i - 1]);
        }
        if (rc == KD_OK && (uint64_t)o[m - 1] != d->info.n_tokens)
            rc = kd_fail(err, KD_EINPUT,
                         "%s: /offsets[%llu] = %lld, expected the token count "
                         "%llu (last offset = length of /tokens)",
                         d->path, (unsigned long long)(m - 1), (long long)o[m - 1],
                         (unsigned long long)d->info.n_tokens);
        if (rc == KD_OK) {
            d->offsets = (uint64_t *)o; // same size; values checked >= 0 above
            for (uint64_t i = 0; i < m; i++) d->offsets[i] = (uint64_t)o[i];
            d->info.n_docs = m - 1;
        } else {
            free(o);
        }
    }
    if (ds >= 0) H5Dclose(ds);
    return rc;
}

// One pass over /tokens (and /loss_mask): every id in [0, vocab_size), mask values 0/1.
static int scan_tokens(kd_dataset *d, kd_error *err) {
    uint64_t n = d->info.n_tokens;
    int64_t *buf = kd_malloc((size_t)(n < SCAN_BLOCK ? n : SCAN_BLOCK) * sizeof *buf + 1);
    uint8_t *mb = d->mask >= 0 ? kd_malloc(n < SCAN_BLOCK ? n : SCAN_BLOCK) : NULL;
    int rc = KD_OK;
    for (uint64_t s = 0; rc == KD_OK && s < n; s += SCAN_BLOCK) {
        uint64_t k = n - s;
        if (k > SCAN_BLOCK) k = SCAN_BLOCK;
        if (kd_h5_read_slab(d->tokens, H5T_NATIVE_INT64, s, k, buf) < 0) {
            rc = kd_fail(err, KD_EINPUT, "%s: cannot read /tokens[%llu..%llu)", d->path,
                         (unsigned long long)s, (unsigned long long)(s + k));
            break;
        }
        for (uint64_t i = 0; i < k; i++)
            if (buf[i] < 0 || buf[i] >= d->info.vocab_size) {
                if (buf[i] < 0)
                    rc = kd_fail(err, KD_EINPUT,
                                 "%s: /tokens[%llu] = %lld < 0, expected a token "
                                 "id >= 0",
                                 d->path, (unsigned long long)(s + i), (long long)buf[i]);
                else
                    rc = kd_fail(err, KD_EINPUT, "%s: /tokens[%llu] = %lld >= vocab_size %d",
                                 d->path, (unsigned long long)(s + i), (long long)buf[i],
                                 d->info.vocab_size);
                break;
            }
        if (rc != KD_OK || !mb) continue;
        if (kd_h5_read_slab(d->mask, H5T_NATIVE_UINT8, s, k, mb) < 0) {
            rc = kd_fail(err, KD_EINPUT, "%s: cannot read /loss_mask[%llu..%llu)", d->path,
                         (unsigned long long)s, (unsigned long long)(s + k));
            break;
        }
        for (uint64_t i = 0; i < k; i++)
            if (mb[i] > 1) {
                rc = kd_fail(err, KD_EINPUT, "%s: /loss_mask[%llu] = %u, expected 0 or 1", d->path,
                             (unsigned long long)(s + i), (unsigned)mb[i]);
                break;
            }
    }
    free(buf);
    free(mb);
    return rc;
}

static int validate(kd_dataset *d, kd_error *err) {
    int rc = read_attrs(d, err);
    if (rc) return rc;
    uint64_t n = 0, nm = 0;
    if ((rc = open_int_1d(d, "/tokens", &d->tokens, &n, err))) return rc;
    if (n == 0)
        return kd_fail(err, KD_EINPUT, "%s: /tokens is empty, expected at least one token",
                       d->path);
    d->info.n_tokens = n;
    if ((rc = read_offsets(d, err))) return rc;
    if (H5Lexists(d->file, "/loss_mask", H5P_DEFAULT) > 0) {
        if ((rc = open_int_1d(d, "/loss_mask", &d->mask, &nm, err))) return rc;
        if (nm != n)
            return kd_fail(err, KD_EINPUT,
                           "%s: /loss_mask has %llu entries, expected %llu "
                           "(one per token)",
                           d->path, (unsigned long long)nm, (unsigned long long)n);
        d->info.has_loss_mask = 1;
    }
    return scan_tokens(d, err);
}

// ============================================================================ open / close

int kd_dataset_open(kd_dataset **out, const char *path, kd_error *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return kd_fail(err, KD_EINPUT, "%s: cannot open dataset: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return kd_fail(err, KD_EINPUT, "%s: not a regular file, expected an HDF5 dataset", path);
    if (st.st_size == 0)
        return kd_fail(err, KD_EINPUT, "%s: empty file (0 bytes), expected an HDF5 dataset", path);
    kd_dataset *d = kd_calloc(1, sizeof *d);
    d->path = kd_strdup(path);
    d->file = d->tokens = d->mask = -1;
    int rc = KD_OK;
    H5E_BEGIN_TRY {
        if (H5Fis_hdf5(path) <= 0)
            rc = kd_fail(err, KD_EINPUT,
                         "%s: not an HDF5 file (no HDF5 signature), expected a "
                         "token dataset (see docs/formats.md)",
                         path);
        else if ((d->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
            rc = kd_fail(err, KD_EINPUT, "%s: HDF5 cannot open the file (damaged or truncated?)",
                         path);
        else
            rc = validate(d, err);
    }
    H5E_END_TRY;
    if (rc != KD_OK) {
        kd_dataset_close(d);
        return rc;
    }
    *out = d;
    return KD_OK;
}

const kd_dataset_info *kd_dataset_get_info(const kd_dataset *d) {
    return &d->info;
}
void kd_dataset_info_vocab(const kd_dataset_info *in, kd_vocab *v) {
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", in->tokenizer);
    snprintf(v->fingerprint, sizeof v->fingerprint, "%s", in->fingerprint);
    v->vocab_size = in->vocab_size, v->bos = in->bos_id, v->eos = in->eos_id, v->pad = in->pad_id;
    v->n_stop = in->n_stop;
    memcpy(v->stop, in->stop_ids, sizeof v->stop);
}

const char *kd_dataset_path(const kd_dataset *d) {
    return d->path;
}
const uint64_t *kd_dataset_offsets(const kd_dataset *d) {
    return d->offsets;
}

void kd_dataset_close(kd_dataset *d) {
    if (!d) return;
    H5E_BEGIN_TRY {
        if (d->mask >= 0) H5Dclose(d->mask);
        if (d->tokens >= 0) H5Dclose(d->tokens);
        if (d->file >= 0) H5Fclose(d->file);
    }
    H5E_END_TRY;
    free(d->offsets);
    free(d->path);
    free(d);
}

// ============================================================================ reads

uint64_t kd_dataset_n_windows(const kd_dataset *d, int seq_len) {
    if (seq_len <= 0 || d->info.n_tokens < 2) return 0;
    return (d->info.n_tokens - 1) / (uint64_t)seq_len;
}

int kd_dataset_read_tokens(kd_dataset *d, uint64_t start, uint64_t n, int32_t *tokens,
                           uint8_t *mask, kd_error *err) {
    if (start > d->info.n_tokens || n > d->info.n_tokens - start)
        return kd_fail(err, KD_EINTERNAL, "%s: token range [%llu, %llu) is outside [0, %llu)",
                       d->path, (unsigned long long)start, (unsigned long long)(start + n),
                       (unsigned long long)d->info.n_tokens);
    if (n == 0) return KD_OK;
    int rc = KD_OK;
    H5E_BEGIN_TRY {
        // ids were checked to be < vocab_size <= INT32_MAX, so uint32 fits int32 exactly
        if (kd_h5_read_slab(d->tokens, H5T_NATIVE_UINT32, start, n, tokens) < 0)
            rc = kd_fail(err, KD_ERUNTIME, "%s: I/O error reading /tokens[%llu..%llu)", d->path,
                         (unsigned long long)start, (unsigned long long)(start + n));
        else if (mask && d->mask >= 0 && kd_h5_read_slab(d->mask, H5T_NATIVE_UINT8, start, n, mask) < 0)
            rc = kd_fail(err, KD_ERUNTIME, "%s: I/O error reading /loss_mask[%llu..%llu)", d->path,
                         (unsigned long long)start, (unsigned long long)(start + n));
    }
    H5E_END_TRY;
    if (rc == KD_OK && mask && d->mask < 0) memset(mask, 1, n);
    return rc;
}

int kd_dataset_read_windows(kd_dataset *d, const uint64_t *idx, int n, int seq_len, int32_t *tokens,
                            float *loss_w, kd_error *err) {
    uint64_t nw = kd_dataset_n_windows(d, seq_len);
    uint8_t *m = loss_w ? kd_malloc((size_t)seq_len + 1) : NULL;
    int rc = KD_OK;
    for (int i = 0; rc == KD_OK && i < n; i++) {
        if (idx[i] >= nw) {
            rc = kd_fail(err, KD_EINTERNAL,
                         "%s: window %llu requested, expected < %llu windows "
                         "of seq_len %d",
                         d->path, (unsigned long long)idx[i], (unsigned long long)nw, seq_len);
            break;
        }
        int32_t *tk = tokens + (size_t)i * (seq_len + 1); // (seq_len+1)
        rc = kd_dataset_read_tokens(d, idx[i] * (uint64_t)seq_len, (uint64_t)seq_len + 1, tk, m,
                                    err);
        if (rc == KD_OK && loss_w)
            for (int j = 0; j < seq_len; j++) loss_w[(size_t)i * seq_len + j] = (float)m[j + 1];
    }
    free(m);
    return rc;
}
