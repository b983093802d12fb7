// prefs.c: preference datasets (see prefs.h): the in-memory atomic writer, the validating
// reader for the DPO stage, and the JSONL converter behind `kdtrain data prefs`.
#include "data/prefs.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/h5util.h"
#include "data/jsonl.h"
#include "data/tokenizer.h"

static const char *PART[3] = {"prompt", "chosen", "rejected"};

#define CHUNK ((hsize_t)1 << 16) // tokens per chunk, as in writer.c
#define SCAN_BLOCK ((hsize_t)1 << 20)

// ============================================================================ writer

typedef struct {
    uint32_t *tok;
    uint64_t *off; // (count+1)
    size_t n, cap, cap_off;
} part_buf;

struct kd_prefs_writer {
    char *path, *tmp, tokenizer[32];
    int vocab_size, bos, eos, pad;
    kd_vocab vocab; // fingerprint and stop ids (name "" when opened without an identity)
    part_buf part[3];
    uint64_t count;
};

int kd_prefs_writer_open(kd_prefs_writer **out, const char *path, int vocab_size, int bos, int eos,
                         int pad, const char *tokenizer, kd_error *err) {
    *out = NULL;
    if (vocab_size < 1 || strlen(tokenizer) == 0 || strlen(tokenizer) >= 32)
        return kd_fail(err, KD_EINPUT,
                       "%s: vocab_size %d / tokenizer '%s', expected >= 1 / 1..31 "
                       "characters",
                       path, vocab_size, tokenizer);
    int ids[3] = {bos, eos, pad};
    for (int i = 0; i < 3; i++)
        if (ids[i] < -1 || ids[i] >= vocab_size)
            return kd_fail(err, KD_EINPUT, "%s: special id %d, expected -1..%d", path, ids[i],
                           vocab_size - 1);
    char *parent = kd_strdup(path), *slash = strrchr(parent, '/');
    if (slash) *slash = '\0';
    const char *pdir = !slash ? "." : slash == parent ? "/" : parent;
    int ok = access(pdir, W_OK | X_OK) == 0;
    if (!ok)
        kd_fail(err, KD_EINPUT, "%s: cannot write into directory '%s': %s", path, pdir,
                strerror(errno));
    free(parent);
    if (!ok) return KD_EINPUT;
    kd_prefs_writer *w = kd_calloc(1, sizeof *w);
    w->path = kd_strdup(path);
    size_t n = strlen(path) + 32;
    w->tmp = kd_malloc(n);
    snprintf(w->tmp, n, "%s.tmp-%ld", path, (long)getpid());
    snprintf(w->tokenizer, sizeof w->tokenizer, "%s", tokenizer);
    w->vocab_size = vocab_size;
    w->bos = bos;
    w->eos = eos;
    w->pad = pad;
    for (int k = 0; k < 3; k++) {
        w->part[k].cap_off = 256;
        w->part[k].off = kd_calloc(w->part[k].cap_off, sizeof(uint64_t));
    }
    *out = w;
    return KD_OK;
}

static void part_add(part_buf *p, const int32_t *ids, size_t n, uint64_t count) {
    if (p->n + n > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->n + n) cap *= 2;
        p->tok = kd_realloc(p->tok, cap * sizeof *p->tok);
        p->cap = cap;
    }
    for (size_t i = 0; i < n; i++) p->tok[p->n + i] = (uint32_t)ids[i];
    p->n += n;
    if (count + 2 > p->cap_off) {
        p->cap_off *= 2;
        p->off = kd_realloc(p->off, p->cap_off * sizeof *p->off);
    }
    p->off[count + 1] = p->n;
}

int kd_prefs_writer_add(kd_prefs_writer *w, const int32_t *prompt, size_t np, const int32_t *chosen,
                        size_t nc, const int32_t *rejected, size_t nr, kd_error *err) {
    const int32_t *ids[3] = {prompt, chosen, rejected};
    size_t n[3] = {np, nc, nr};
    for (int k = 1; k < 3; k++)
        if (n[k] == 0)
            return kd_fail(err, KD_EINPUT,
                           "%s: example %llu: expected a non-empty %s, found 0 "
                           "tokens",
                           w->path, (unsigned long long)w->count, PART[k]);
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n[k]; i++)
            if (ids[k][i] < 0 || ids[k][i] >= w->vocab_size)
                return kd_fail(err, KD_EINPUT, "%s: example %llu %s token %zu = %d, expected 0..%d",
                               w->path, (unsigned long long)w->count, PART[k], i, (int)ids[k][i],
                               w->vocab_size - 1);
    for (int k = 0; k < 3; k++) part_add(&w->part[k], ids[k], n[k], w->count);
    w->count++;
    return KD_OK;
}

uint64_t kd_prefs_writer_count(const kd_prefs_writer *w) {
    return w->count;
}

// A 1-D dataset of n elements written in one call; chunked + gzip when `chunked`.
static int write_1d(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *buf,
                    hsize_t n, int chunked) {
    hid_t s = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    if (chunked && n > 0) {
        hsize_t c = n < CHUNK ? n : CHUNK;
        H5Pset_chunk(dcpl, 1, &c);
        if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
            H5Pset_shuffle(dcpl);
            H5Pset_deflate(dcpl, 4);
        }
    }
    hid_t ds = H5Dcreate2(loc, name, ftype, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = ds >= 0 && (n == 0 || H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0)
                 ? 0
                 : -1;
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(s);
    return rc;
}

static int write_file(kd_prefs_writer *w) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    H5Pset_obj_track_times(gcpl, 0);
    hid_t f = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    int bad = f < 0;
    if (!bad)
        bad = kd_h5_write_str_attr(f, "kind", "preference") < 0 ||
              kd_h5_write_int_attr(f, "vocab_size", w->vocab_size) < 0 ||
              kd_h5_write_int_attr(f, "bos_id", w->bos) < 0 ||
              kd_h5_write_int_attr(f, "eos_id", w->eos) < 0 ||
              kd_h5_write_int_attr(f, "pad_id", w->pad) < 0 ||
              kd_h5_write_str_attr(f, "tokenizer", w->tokenizer) < 0 ||
              (w->vocab.name[0] && kd_vocab_write_attrs(f, &w->vocab) < 0);
    for (int k = 0; !bad && k < 3; k++) {
        hid_t g = H5Gcreate2(f, PART[k], H5P_DEFAULT, gcpl, H5P_DEFAULT);
        bad = g < 0 ||
              write_1d(g, "tokens", H5T_STD_U32LE, H5T_NATIVE_UINT32, w->part[k].tok, w->part[k].n,
                       1) < 0 ||
              write_1d(g, "offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, w->part[k].off, w->count + 1,
                       0) < 0;
        if (g >= 0) H5Gclose(g);
    }
    if (f >= 0 && H5Fclose(f) < 0) bad = 1;
    H5Pclose(gcpl);
    H5Pclose(fcpl);
    return bad ? -1 : 0;
}

int kd_prefs_writer_open_vocab(kd_prefs_writer **w, const char *path, const kd_vocab *v,
                               kd_error *err) {
    int rc = kd_prefs_writer_open(w, path, v->vocab_size, v->bos, v->eos, v->pad, v->name, err);
    if (rc == KD_OK) (*w)->vocab = *v;
    return rc;
}

int kd_prefs_writer_close(kd_prefs_writer *w, int commit, kd_error *err) {
    if (!w) return KD_OK;
    int rc = KD_OK;
    if (commit && w->count == 0)
        rc = kd_fail(err, KD_EINPUT,
                     "%s: no examples were added, refusing to write an empty "
                     "dataset",
                     w->path);
    if (commit && rc == KD_OK) {
        int bad;
        H5E_BEGIN_TRY {
            bad = write_file(w);
        }
        H5E_END_TRY;
        int fd = bad ? -1 : open(w->tmp, O_RDONLY);
        if (bad)
            rc = kd_fail(err, KD_ERUNTIME, "%s: HDF5 failed writing the file (disk full?)", w->tmp);
        else if (fd < 0 || fsync(fd) != 0)
            rc = kd_fail(err, KD_ERUNTIME, "%s: fsync failed: %s", w->tmp, strerror(errno));
        else if (rename(w->tmp, w->path) != 0)
            rc = kd_fail(err, KD_ERUNTIME, "%s: cannot rename %s into place: %s", w->path, w->tmp,
                         strerror(errno));
        if (fd >= 0) close(fd);
    }
    if (!commit || rc) unlink(w->tmp);
    for (int k = 0; k < 3; k++) {
        free(w->part[k].tok);
        free(w->part[k].off);
    }
    free(w->path);
    free(w->tmp);
    free(w);
    return rc;
}

// ============================================================================ reader

struct kd_prefs {
    char *path;
    hid_t file, tokens[3];
    uint64_t *off[3]; // (count+1) each
    kd_prefs_info info;
};

void kd_prefs_close(kd_prefs *p) {
    if (!p) return;
    H5E_BEGIN_TRY {
        for (int k = 0; k < 3; k++)
            if (p->tokens[k] >= 0) H5Dclose(p->tokens[k]);
        if (p->file >= 0) H5Fclose(p->file);
    }
    H5E_END_TRY;
    for (int k = 0; k < 3; k++) free(p->off[k]);
    free(p->path);
    free(p);
}

// Open NAME as a 1-D integer dataset; *len = its length.
static int open_1d(kd_prefs *p, const char *name, hid_t *out, uint64_t *len, kd_error *err) {
    *out = -1;
    if (H5Lexists(p->file, name, H5P_DEFAULT) <= 0)
        return kd_fail(err, KD_EINPUT, "%s: %s is missing, expected a 1-D integer dataset", p->path,
                       name);
    hid_t ds = H5Dopen2(p->file, name, H5P_DEFAULT);
    if (ds < 0)
        return kd_fail(err, KD_EINPUT, "%s: %s is not a dataset, expected a 1-D integer dataset",
                       p->path, name);
    *out = ds;
    hid_t t = H5Dget_type(ds), s = H5Dget_space(ds);
    int is_int = H5Tget_class(t) == H5T_INTEGER, rank = H5Sget_simple_extent_ndims(s);
    hsize_t d = 0;
    if (rank == 1) H5Sget_simple_extent_dims(s, &d, NULL);
    H5Tclose(t);
    H5Sclose(s);
    if (!is_int || rank != 1)
        return kd_fail(err, KD_EINPUT, "%s: %s is %s, expected a 1-D integer dataset", p->path,
                       name, is_int ? "not 1-D" : "not integer");
    *len = d;
    return KD_OK;
}

// Read n int64 values of ds from start into buf.
static int read_range(hid_t ds, uint64_t start, uint64_t n, int64_t *buf) {
    return n == 0 ? 0 : kd_h5_read_slab(ds, H5T_NATIVE_INT64, start, n, buf);
}

static int open_part(kd_prefs *p, int k, kd_error *err) {
    char name[64];
    uint64_t n = 0, no = 0;
    snprintf(name, sizeof name, "/%s/tokens", PART[k]);
    int rc = open_1d(p, name, &p->tokens[k], &n, err);
    hid_t ods = -1;
    snprintf(name, sizeof name, "/%s/offsets", PART[k]);
    if (rc == KD_OK) rc = open_1d(p, name, &ods, &no, err);
    if (rc == KD_OK && no < 2)
        rc = kd_fail(err, KD_EINPUT, "%s: %s has %llu entries, expected count+1 >= 2", p->path,
                     name, (unsigned long long)no);
    if (rc == KD_OK && k > 0 && no != p->info.count + 1)
        rc = kd_fail(err, KD_EINPUT, "%s: %s has %llu entries, expected %llu (as /prompt/offsets)",
                     p->path, name, (unsigned long long)no, (unsigned long long)p->info.count + 1);
    // a damaged header can declare any length: refuse more entries than tokens + 1 and a
    // failed allocation before reading (an input error, not an abort)
    if (rc == KD_OK && no > n + 1)
        rc = kd_fail(err, KD_EINPUT, "%s: %s has %llu entries, expected at most %llu (tokens + 1; "
                     "damaged file?)", p->path, name, (unsigned long long)no, (unsigned long long)n + 1);
    int64_t *o = NULL;
    if (rc == KD_OK && (no > SIZE_MAX / sizeof *o || !(o = malloc((size_t)no * sizeof *o))))
        rc = kd_fail(err, KD_EINPUT, "%s: cannot allocate %s (%llu entries; damaged file?)", p->path,
                     name, (unsigned long long)no);
    if (rc == KD_OK && read_range(ods, 0, no, o) < 0)
        rc = kd_fail(err, KD_EINPUT, "%s: cannot read %s", p->path, name);
    for (uint64_t i = 0; rc == KD_OK && i < no; i++) {
        int64_t lo = i ? o[i - 1] : 0;
        if (o[i] < lo || (i == 0 && o[0] != 0) || (k > 0 && i > 0 && o[i] == lo) ||
            (uint64_t)o[i] > n)
            rc = kd_fail(err, KD_EINPUT, "%s: %s[%llu] = %lld, expected %s", p->path, name,
                         (unsigned long long)i, (long long)o[i],
                         i == 0               ? "0"
                         : (uint64_t)o[i] > n ? "<= the number of tokens"
                         : k > 0              ? "> the previous offset (completions are non-empty)"
                                              : ">= the previous offset");
    }
    if (rc == KD_OK && (uint64_t)o[no - 1] != n)
        rc = kd_fail(err, KD_EINPUT, "%s: %s[last] = %lld, expected the token count %llu", p->path,
                     name, (long long)o[no - 1], (unsigned long long)n);
    if (rc == KD_OK) {
        p->off[k] = kd_malloc(no * sizeof(uint64_t));
        for (uint64_t i = 0; i < no; i++) p->off[k][i] = (uint64_t)o[i];
        p->info.count = no - 1;
        p->info.n_tokens[k] = n;
    }
    free(o);
    if (ods >= 0) H5Dclose(ods);
    // every id in the vocabulary: scanned once here so reads cannot meet a bad one
    int64_t *blk = rc == KD_OK ? kd_malloc(SCAN_BLOCK * sizeof *blk) : NULL;
    for (uint64_t s = 0, m; rc == KD_OK && s < n; s += m) {
        m = n - s < SCAN_BLOCK ? n - s : SCAN_BLOCK; // >= 1 since s < n
        if (read_range(p->tokens[k], s, m, blk) < 0)
            rc = kd_fail(err, KD_EINPUT, "%s: cannot read /%s/tokens", p->path, PART[k]);
        for (uint64_t i = 0; rc == KD_OK && i < m; i++)
            if (blk[i] < 0 || blk[i] >= p->info.vocab_size)
                rc = kd_fail(err, KD_EINPUT, "%s: /%s/tokens[%llu] = %lld, expected 0..%d", p->path,
                             PART[k], (unsigned long long)(s + i), (long long)blk[i],
                             p->info.vocab_size - 1);
    }
    free(blk);
    return rc;
}

// The fingerprint and stop ids (data/vocab.h), after the other attributes.
static int read_vocab(kd_prefs *p, kd_error *err) {
    kd_vocab v = {.vocab_size = p->info.vocab_size, .eos = p->info.eos_id};
    snprintf(v.name, sizeof v.name, "%s", p->info.tokenizer);
    int rc = kd_vocab_read_attrs(p->file, &v, p->path, err);
    memcpy(p->info.fingerprint, v.fingerprint, sizeof p->info.fingerprint);
    memcpy(p->info.stop_ids, v.stop, sizeof p->info.stop_ids);
    p->info.n_stop = v.n_stop;
    return rc;
}

int kd_prefs_open(kd_prefs **out, const char *path, kd_error *err) {
    *out = NULL;
    if (access(path, R_OK) != 0)
        return kd_fail(err, KD_EINPUT, "%s: cannot read preference dataset: %s", path,
                       strerror(errno));
    kd_prefs *p = kd_calloc(1, sizeof *p);
    p->path = kd_strdup(path);
    p->file = p->tokens[0] = p->tokens[1] = p->tokens[2] = -1;
    int rc = KD_OK;
    H5E_BEGIN_TRY {
        char kind[32] = "";
        long long v[4];
        const char *ak[4] = {"vocab_size", "bos_id", "eos_id", "pad_id"};
        p->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (p->file < 0)
            rc = kd_fail(err, KD_EINPUT,
                         "%s: expected an HDF5 preference dataset, found a file "
                         "HDF5 cannot open",
                         path);
        else if (kd_h5_read_str_attr(p->file, "kind", kind, sizeof kind) < 0 ||
                 strcmp(kind, "preference"))
            rc = kd_fail(err, KD_EINPUT,
                         "%s: attribute kind: expected \"preference\", found "
                         "\"%s\"",
                         path, kind);
        for (int i = 0; rc == KD_OK && i < 4; i++)
            if (kd_h5_read_int_attr(p->file, ak[i], &v[i]) < 0 ||
                (i == 0 ? v[0] < 1 || v[0] > INT32_MAX : v[i] < -1 || v[i] >= v[0]))
                rc = kd_fail(err, KD_EINPUT, "%s: attribute %s: expected %s, found %s", path, ak[i],
                             i == 0 ? "an integer >= 1" : "an integer in -1..vocab_size-1",
                             kd_h5_read_int_attr(p->file, ak[i], &v[i]) < 0 ? "none or not int"
                                                                            : "a value outside");
        if (rc == KD_OK) {
            p->info.vocab_size = (int)v[0];
            p->info.bos_id = (int)v[1];
            p->info.eos_id = (int)v[2];
            p->info.pad_id = (int)v[3];
            if (kd_h5_read_str_attr(p->file, "tokenizer", p->info.tokenizer,
                                    sizeof p->info.tokenizer) < 0)
                rc = kd_fail(err, KD_EINPUT,
                             "%s: attribute tokenizer: expected a string, found "
                             "none",
                             path);
        }
        if (rc == KD_OK) rc = read_vocab(p, err);
        for (int k = 0; rc == KD_OK && k < 3; k++) rc = open_part(p, k, err);
    }
    H5E_END_TRY;
    if (rc) {
        kd_prefs_close(p);
        return rc;
    }
    *out = p;
    return KD_OK;
}

uint64_t kd_prefs_count(const kd_prefs *p) {
    return p->info.count;
}

const kd_prefs_info *kd_prefs_get_info(const kd_prefs *p) {
    return &p->info;
}

// Read n ids of part k from a into a new array (caller frees); NULL on an HDF5 error.
static int32_t *read_ids(kd_prefs *p, int k, uint64_t a, uint64_t n) {
    int64_t *tmp = kd_malloc((n ? n : 1) * sizeof *tmp);
    int bad;
    H5E_BEGIN_TRY {
        bad = read_range(p->tokens[k], a, n, tmp);
    }
    H5E_END_TRY;
    int32_t *ids = bad ? NULL : kd_malloc((n ? n : 1) * sizeof *ids);
    for (uint64_t j = 0; ids && j < n; j++) ids[j] = (int32_t)tmp[j]; // checked < vocab at open
    free(tmp);
    return ids;
}

int kd_prefs_read(kd_prefs *p, uint64_t i, int32_t **prompt, int *np, int32_t **chosen, int *nc,
                  int32_t **rejected, int *nr, kd_error *err) {
    int32_t *ids[3] = {NULL, NULL, NULL};
    int lens[3] = {0, 0, 0}, rc = KD_OK;
    if (i >= p->info.count)
        rc = kd_fail(err, KD_EINTERNAL, "%s: example %llu, expected < %llu", p->path,
                     (unsigned long long)i, (unsigned long long)p->info.count);
    for (int k = 0; rc == KD_OK && k < 3; k++) {
        uint64_t a = p->off[k][i], n = p->off[k][i + 1] - a;
        if (n > INT32_MAX)
            rc = kd_fail(err, KD_EINPUT, "%s: example %llu %s has %llu tokens, expected < 2^31",
                         p->path, (unsigned long long)i, PART[k], (unsigned long long)n);
        else if (!(ids[k] = read_ids(p, k, a, n)))
            rc = kd_fail(err, KD_ERUNTIME, "%s: reading example %llu /%s/tokens failed", p->path,
                         (unsigned long long)i, PART[k]);
        else
            lens[k] = (int)n;
    }
    if (rc) {
        for (int k = 0; k < 3; k++) {
            free(ids[k]);
            ids[k] = NULL;
            lens[k] = 0;
        }
    }
    *prompt = ids[0], *chosen = ids[1], *rejected = ids[2];
    *np = lens[0], *nc = lens[1], *nr = lens[2];
    return rc;
}

// ============================================================================ converter

// A prompt: a string (one user message) or a messages array ending with a user turn.
static int render_prompt(const kd_chat_template *t, const kd_json *v, const char *where,
                         kd_chat_buf *b, kd_error *err) {
    kd_chat_msg one, *m = &one;
    int n = 1, rc = KD_OK;
    if (v->type == KD_JSON_STRING) {
        one = (kd_chat_msg){KD_CHAT_USER, v->str, v->len};
    } else if ((rc = kd_chat_parse_messages(v, where, "prompt", &m, &n, err))) {
        return rc;
    } else if (m[n - 1].role != KD_CHAT_USER) {
        rc = kd_fail(err, KD_EINPUT,
                     "%s: prompt[%d].role: expected the prompt to end with a user "
                     "turn, found \"%s\"",
                     where, n - 1, kd_chat_role_name(m[n - 1].role));
    }
    if (rc == KD_OK && (rc = kd_chat_render(t, m, n, 1, b, NULL, err)))
        kd_error_prefix(err, "%s: prompt: ", where);
    if (m != &one) free(m);
    return rc;
}

// A completion: a string, or an array holding one assistant message; non-empty.
static int completion_text(const kd_json *v, const char *where, const char *key, const char **s,
                           size_t *len, kd_error *err) {
    const kd_json *c = v;
    if (v->type == KD_JSON_ARRAY) {
        const kd_json *role = v->n == 1 ? kd_json_get(&v->items[0], "role") : NULL;
        if (v->n != 1 || !role || role->type != KD_JSON_STRING || strcmp(role->str, "assistant"))
            return kd_fail(err, KD_EINPUT,
                           "%s: %s: expected one message with role \"assistant\", "
                           "found %zu message(s)%s",
                           where, key, v->n, v->n == 1 ? " of another role" : "");
        c = kd_json_get(&v->items[0], "content");
        if (!c || c->type != KD_JSON_STRING)
            return kd_fail(err, KD_EINPUT, "%s: %s[0].content: expected a string, found %s", where,
                           key, c ? kd_json_type_name(c->type) : "no \"content\" key");
    } else if (v->type != KD_JSON_STRING) {
        return kd_fail(err, KD_EINPUT, "%s: %s: expected a string or a messages array, found %s",
                       where, key, kd_json_type_name(v->type));
    }
    if (c->len == 0)
        return kd_fail(err, KD_EINPUT, "%s: %s: expected a non-empty completion, found \"\"", where,
                       key);
    *s = c->str;
    *len = c->len;
    return KD_OK;
}

// One JSONL line -> one example added to w; counts into st.
static int convert_line(const kd_chat_template *t, const kd_json *v, const char *where,
                        size_t max_len, size_t max_prompt, kd_chat_buf bufs[3], kd_prefs_writer *w,
                        kd_chat_stats *st, kd_error *err) {
    if (v->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT,
                       "%s: expected an object {\"prompt\", \"chosen\", "
                       "\"rejected\"}, found %s",
                       where, kd_json_type_name(v->type));
    const kd_json *f[3];
    for (int k = 0; k < 3; k++)
        if (!(f[k] = kd_json_get(v, PART[k])))
            return kd_fail(err, KD_EINPUT, "%s: expected a key \"%s\", found none", where, PART[k]);
    for (int k = 0; k < 3; k++) kd_chat_buf_reset(&bufs[k]);
    int rc = render_prompt(t, f[0], where, &bufs[0], err);
    for (int k = 1; rc == KD_OK && k < 3; k++) {
        const char *s = NULL;
        size_t len = 0;
        if ((rc = completion_text(f[k], where, PART[k], &s, &len, err)) == KD_OK &&
            (rc = kd_chat_render_completion(t, s, len, &bufs[k], err)))
            kd_error_prefix(err, "%s: %s: ", where, PART[k]);
    }
    if (rc) return rc;
    // 1. prompt from the left to max_prompt (keeping BOS and the assistant header)
    // (the default max_len/2 never cuts into BOS + assistant header; an explicit one must
    // leave room for them)
    size_t np = bufs[0].n, protect = t->header_ids[KD_CHAT_ASSISTANT].n;
    size_t floor = (size_t)t->bos + protect, mp = max_prompt;
    if (mp == 0 && max_len > 0) mp = max_len / 2 > floor ? max_len / 2 : floor;
    int pc = 0, cc = 0;
    rc = kd_chat_truncate(&bufs[0], &np, (size_t)t->bos, protect, mp, 0, &pc, &cc, err);
    if (rc) {
        kd_error_prefix(err, "%s: prompt: ", where);
        return rc;
    }
    // 2. completions from the right to max_len - prompt
    if (max_len > 0 && np >= max_len)
        return kd_fail(err, KD_EINPUT,
                       "%s: prompt: expected fewer than --max-len %zu tokens so "
                       "that some of the completion remains, found %zu after truncation",
                       where, max_len, np);
    for (int k = 1; k < 3; k++)
        if (max_len > 0 && bufs[k].n > max_len - np) {
            bufs[k].n = max_len - np;
            st->completion_truncated++;
        }
    st->prompt_truncated += (uint64_t)pc;
    rc = kd_prefs_writer_add(w, bufs[0].ids, bufs[0].n, bufs[1].ids, bufs[1].n, bufs[2].ids,
                             bufs[2].n, err);
    st->examples++;
    st->tokens += bufs[0].n + bufs[1].n + bufs[2].n;
    st->target_tokens += bufs[1].n + bufs[2].n;
    return rc;
}

int kd_prefs_convert_jsonl(const char *jsonl, const char *out, const char *template_name,
                           const char *tokenizer, size_t max_len, size_t max_prompt,
                           kd_chat_stats *stats, kd_error *err) {
    kd_chat_stats st = {0};
    kd_tokenizer *tok = NULL;
    kd_chat_template *t = NULL;
    kd_vocab voc;
    kd_jsonl *r = NULL;
    kd_prefs_writer *w = NULL;
    kd_chat_buf bufs[3] = {{0}};
    int rc = kd_tokenizer_open(&tok, tokenizer ? tokenizer : KD_TOK_BYTES_NAME, err);
    if (rc == KD_OK) rc = kd_chat_template_load_tok(&t, template_name, tok, err);
    if (rc == KD_OK) rc = kd_jsonl_open(&r, jsonl, err);
    if (rc == KD_OK) {
        kd_chat_template_vocab(t, &voc);
        rc = kd_prefs_writer_open_vocab(&w, out, &voc, err);
    }
    while (rc == KD_OK) {
        kd_json *v = NULL;
        if ((rc = kd_jsonl_next(r, &v, err)) || !v) break;
        char where[1100];
        snprintf(where, sizeof where, "%s:%ld", jsonl, kd_jsonl_line(r));
        rc = convert_line(t, v, where, max_len, max_prompt, bufs, w, &st, err);
        kd_json_free(v);
    }
    if (rc == KD_OK && st.examples == 0)
        rc = kd_fail(err, KD_EINPUT, "%s:1: expected one JSON object per line, found an empty file",
                     jsonl);
    int rc2 = w ? kd_prefs_writer_close(w, rc == KD_OK, err) : KD_OK;
    kd_jsonl_close(r);
    kd_chat_template_free(t);
    if (tok) kd_tokenizer_free(tok);
    for (int k = 0; k < 3; k++) kd_chat_buf_free(&bufs[k]);
    if (stats) *stats = st;
    return rc ? rc : rc2;
}
