// writer.c: streaming, atomic writer of kdtrain token datasets (see writer.h).
#include "data/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/h5util.h"

// Chunk of /tokens and /loss_mask: 64 Ki tokens (256 KiB of uint32) - large enough for
// gzip to work well, small enough that a random window read decompresses little.
#define CHUNK ((hsize_t)1 << 16)
#define GZIP_LEVEL 4

struct kd_dataset_writer {
    char *path, *tmp;
    hid_t file, tokens, mask; // mask < 0 without a mask
    int vocab_size, failed;
    uint32_t *tbuf; // (CHUNK) tokens not yet written
    uint8_t *mbuf;  // (CHUNK) their mask values
    size_t nbuf;
    uint64_t n_written; // tokens already in the file
    uint64_t *offsets;  // (n_docs+1)
    size_t n_docs, cap_docs;
};

// An extendible, chunked, shuffled+gzipped 1-D dataset with no timestamps.
static hid_t create_stream(hid_t file, const char *name, hid_t type) {
    hsize_t dims = 0, maxd = H5S_UNLIMITED, chunk = CHUNK;
    hid_t s = H5Screate_simple(1, &dims, &maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_obj_track_times(dcpl, 0);
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, GZIP_LEVEL);
    }
    hid_t ds = H5Dcreate2(file, name, type, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(s);
    return ds;
}

// Append n elements of memory type mt to the end of a 1-D extendible dataset.
static int append(hid_t ds, hid_t mt, uint64_t at, const void *buf, size_t n) {
    hsize_t newsize = at + n;
    if (H5Dset_extent(ds, &newsize) < 0) return -1;
    return kd_h5_write_slab(ds, mt, at, n, buf);
}

static int flush_buf(kd_dataset_writer *w, kd_error *err) {
    if (w->nbuf == 0) return KD_OK;
    int bad = 0;
    H5E_BEGIN_TRY {
        bad =
            append(w->tokens, H5T_NATIVE_UINT32, w->n_written, w->tbuf, w->nbuf) < 0 ||
            (w->mask >= 0 && append(w->mask, H5T_NATIVE_UINT8, w->n_written, w->mbuf, w->nbuf) < 0);
    }
    H5E_END_TRY;
    if (bad) {
        w->failed = 1;
        return kd_fail(err, KD_ERUNTIME, "%s: HDF5 write of %zu tokens failed (disk full?)", w->tmp,
                       w->nbuf);
    }
    w->n_written += w->nbuf;
    w->nbuf = 0;
    return KD_OK;
}

static void free_writer(kd_dataset_writer *w) {
    H5E_BEGIN_TRY {
        if (w->mask >= 0) H5Dclose(w->mask);
        if (w->tokens >= 0) H5Dclose(w->tokens);
        if (w->file >= 0) H5Fclose(w->file);
    }
    H5E_END_TRY;
    free(w->path);
    free(w->tmp);
    free(w->tbuf);
    free(w->mbuf);
    free(w->offsets);
    free(w);
}

// ============================================================================ public

int kd_dataset_writer_open(kd_dataset_writer **out, const char *path, const char *kind,
                           int vocab_size, int bos, int eos, int pad, int with_mask,
                           const char *tokenizer, kd_error *err) {
    *out = NULL;
    if (strcmp(kind, "tokens") && strcmp(kind, "sft") && strcmp(kind, "preference") &&
        strcmp(kind, "kd"))
        return kd_fail(err, KD_EINPUT, "%s: dataset kind '%s', expected tokens|sft|preference|kd",
                       path, kind);
    if (vocab_size < 1)
        return kd_fail(err, KD_EINPUT, "%s: vocab_size %d, expected >= 1", path, vocab_size);
    int ids[3] = {bos, eos, pad};
    for (int i = 0; i < 3; i++)
        if (ids[i] < -1 || ids[i] >= vocab_size)
            return kd_fail(err, KD_EINPUT, "%s: special id %d, expected -1..%d", path, ids[i],
                           vocab_size - 1);
    if (strlen(tokenizer) >= 32 || strlen(tokenizer) == 0)
        return kd_fail(err, KD_EINPUT, "%s: tokenizer name '%s', expected 1..31 characters", path,
                       tokenizer);

    // a missing or read-only output directory is the user's mistake, not a runtime failure
    char *parent = kd_strdup(path), *slash = strrchr(parent, '/');
    if (slash) *slash = '\0';
    const char *pdir = !slash ? "." : slash == parent ? "/" : parent;
    if (access(pdir, W_OK | X_OK) != 0) {
        kd_fail(err, KD_EINPUT, "%s: cannot write into directory '%s': %s", path, pdir,
                strerror(errno));
        free(parent);
        return KD_EINPUT;
    }
    free(parent);

    kd_dataset_writer *w = kd_calloc(1, sizeof *w);
    w->file = w->tokens = w->mask = -1;
    w->vocab_size = vocab_size;
    w->path = kd_strdup(path);
    size_t n = strlen(path) + 32;
    w->tmp = kd_malloc(n);
    snprintf(w->tmp, n, "%s.tmp-%ld", path, (long)getpid());
    w->tbuf = kd_malloc(CHUNK * sizeof *w->tbuf);
    w->mbuf = with_mask ? kd_malloc(CHUNK) : NULL;
    w->cap_docs = 1024;
    w->offsets = kd_malloc(w->cap_docs * sizeof *w->offsets);
    w->offsets[0] = 0;

    int bad = 0;
    H5E_BEGIN_TRY {
        // no timestamps on the root group either, so identical content = identical bytes
        hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
        H5Pset_obj_track_times(fcpl, 0);
        w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
        H5Pclose(fcpl);
        if (w->file >= 0) {
            w->tokens = create_stream(w->file, "/tokens", H5T_STD_U32LE);
            if (with_mask) w->mask = create_stream(w->file, "/loss_mask", H5T_STD_U8LE);
            bad = w->tokens < 0 || (with_mask && w->mask < 0) ||
                  kd_h5_write_str_attr(w->file, "kind", kind) < 0 ||
                  kd_h5_write_int_attr(w->file, "vocab_size", vocab_size) < 0 ||
                  kd_h5_write_int_attr(w->file, "bos_id", bos) < 0 ||
                  kd_h5_write_int_attr(w->file, "eos_id", eos) < 0 ||
                  kd_h5_write_int_attr(w->file, "pad_id", pad) < 0 ||
                  kd_h5_write_str_attr(w->file, "tokenizer", tokenizer) < 0;
        }
    }
    H5E_END_TRY;
    if (w->file < 0 || bad) {
        int e = errno;
        int created = w->file >= 0;
        kd_fail(err, KD_ERUNTIME, "%s: cannot create dataset file %s%s%s", path, w->tmp,
                created ? "" : ": ", created ? "" : strerror(e));
        kd_dataset_writer_close(w, 0, NULL); // closes handles, removes the tmp file
        return KD_ERUNTIME;
    }
    *out = w;
    return KD_OK;
}

int kd_dataset_writer_open_vocab(kd_dataset_writer **w, const char *path, const char *kind,
                                 const kd_vocab *v, int with_mask, kd_error *err) {
    int rc = kd_dataset_writer_open(w, path, kind, v->vocab_size, v->bos, v->eos, v->pad, with_mask,
                                    v->name, err);
    if (rc) return rc;
    int bad;
    H5E_BEGIN_TRY {
        bad = kd_vocab_write_attrs((*w)->file, v) < 0;
    }
    H5E_END_TRY;
    if (!bad) return KD_OK;
    kd_fail(err, KD_ERUNTIME, "%s: cannot write the tokenizer attributes into %s", path, (*w)->tmp);
    kd_dataset_writer_close(*w, 0, NULL);
    *w = NULL;
    return KD_ERUNTIME;
}

int kd_dataset_writer_add(kd_dataset_writer *w, const int32_t *tokens, const uint8_t *mask,
                          size_t n, kd_error *err) {
    if (w->failed) return kd_fail(err, KD_EINTERNAL, "%s: writer used after a failed add", w->path);
    if ((mask != NULL) != (w->mask >= 0))
        return kd_fail(err, KD_EINTERNAL, "%s: document %s a loss mask but the dataset %s one",
                       w->path, mask ? "has" : "lacks", mask ? "has no" : "has");
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= w->vocab_size) {
            w->failed = 1;
            return kd_fail(err, KD_EINPUT, "%s: document %zu token %zu = %d, expected 0..%d",
                           w->path, w->n_docs, i, (int)tokens[i], w->vocab_size - 1);
        }
        if (mask && mask[i] > 1) {
            w->failed = 1;
            return kd_fail(err, KD_EINPUT, "%s: document %zu mask %zu = %u, expected 0 or 1",
                           w->path, w->n_docs, i, (unsigned)mask[i]);
        }
    }
    for (size_t i = 0; i < n;) {
        size_t k = n - i < CHUNK - w->nbuf ? n - i : CHUNK - w->nbuf;
        for (size_t j = 0; j < k; j++) w->tbuf[w->nbuf + j] = (uint32_t)tokens[i + j];
        if (mask) memcpy(w->mbuf + w->nbuf, mask + i, k);
        w->nbuf += k;
        i += k;
        if (w->nbuf == CHUNK && flush_buf(w, err)) return err ? err->code : KD_ERUNTIME;
    }
    if (w->n_docs + 2 > w->cap_docs) {
        w->cap_docs *= 2;
        w->offsets = kd_realloc(w->offsets, w->cap_docs * sizeof *w->offsets);
    }
    w->offsets[w->n_docs + 1] = w->offsets[w->n_docs] + n;
    w->n_docs++;
    return KD_OK;
}

uint64_t kd_dataset_writer_n_tokens(const kd_dataset_writer *w) {
    return w->offsets[w->n_docs];
}

// Write /offsets, close the file, fsync it, rename into place.
static int commit(kd_dataset_writer *w, kd_error *err) {
    if (w->failed) return kd_fail(err, KD_EINTERNAL, "%s: commit after a failed add", w->path);
    if (w->offsets[w->n_docs] == 0)
        return kd_fail(err, KD_EINPUT,
                       "%s: no tokens were added, refusing to write an empty "
                       "dataset",
                       w->path);
    int rc = flush_buf(w, err);
    if (rc) return rc;
    int bad = 0;
    H5E_BEGIN_TRY {
        hsize_t m = w->n_docs + 1;
        hid_t s = H5Screate_simple(1, &m, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_obj_track_times(dcpl, 0);
        hid_t ds =
            H5Dcreate2(w->file, "/offsets", H5T_STD_U64LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        bad = ds < 0 ||
              H5Dwrite(ds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->offsets) < 0;
        if (ds >= 0) H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(s);
        if (w->mask >= 0) H5Dclose(w->mask);
        H5Dclose(w->tokens);
        w->mask = w->tokens = -1;
        if (H5Fclose(w->file) < 0) bad = 1;
        w->file = -1;
    }
    H5E_END_TRY;
    if (bad)
        return kd_fail(err, KD_ERUNTIME, "%s: HDF5 failed finishing the file (disk full?)", w->tmp);
    int fd = open(w->tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return kd_fail(err, KD_ERUNTIME, "%s: fsync failed: %s", w->tmp, strerror(e));
    }
    close(fd);
    if (rename(w->tmp, w->path) != 0)
        return kd_fail(err, KD_ERUNTIME, "%s: cannot rename %s into place: %s", w->path, w->tmp,
                       strerror(errno));
    return KD_OK;
}

int kd_dataset_writer_close(kd_dataset_writer *w, int do_commit, kd_error *err) {
    if (!w) return KD_OK;
    int rc = do_commit ? commit(w, err) : KD_OK;
    if (!do_commit || rc != KD_OK) {
        H5E_BEGIN_TRY {
            if (w->mask >= 0) H5Dclose(w->mask);
            if (w->tokens >= 0) H5Dclose(w->tokens);
            if (w->file >= 0) H5Fclose(w->file);
        }
        H5E_END_TRY;
        w->mask = w->tokens = w->file = -1;
        unlink(w->tmp);
    }
    free_writer(w);
    return rc;
}
