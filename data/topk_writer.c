// topk_writer.c: writer (and whole-file reader) of the pseudo-label arrays of a kd dataset
// (topk.h): /prompt_index uint64 [docs], /topk_ids uint32 [n,K], /topk_logprobs float32
// [n,K], contiguous, without timestamps so that the same rows give the same file bytes.
#include <hdf5.h>
#include <stdlib.h>

#include "data/topk.h"

struct kd_topk_writer {
    hid_t file, dcpl, prompt_index, ids, lp; // ids, lp: -1 when k is 0
    uint64_t n_docs, n_tokens, doc, row;     // sizes, and what was written so far
    int k;
};

int kd_topk_writer_open(kd_topk_writer **out, const char *path, uint64_t n_docs, uint64_t n_tokens,
                        int k) {
    *out = NULL;
    kd_topk_writer *w = kd_calloc(1, sizeof *w);
    w->prompt_index = w->ids = w->lp = -1;
    w->n_docs = n_docs, w->n_tokens = n_tokens, w->k = k;
    int bad = 0;
    H5E_BEGIN_TRY {
        w->file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        w->dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_obj_track_times(w->dcpl, 0);
        bad = w->file < 0;
        hsize_t ndoc = n_docs, dims[2] = {n_tokens, (hsize_t)k};
        if (!bad) {
            hid_t s1 = H5Screate_simple(1, &ndoc, NULL);
            w->prompt_index = H5Dcreate2(w->file, "/prompt_index", H5T_STD_U64LE, s1, H5P_DEFAULT,
                                         w->dcpl, H5P_DEFAULT);
            H5Sclose(s1);
            bad = w->prompt_index < 0;
        }
        if (!bad && k) {
            hid_t s2 = H5Screate_simple(2, dims, NULL);
            w->ids = H5Dcreate2(w->file, "/topk_ids", H5T_STD_U32LE, s2, H5P_DEFAULT, w->dcpl,
                                H5P_DEFAULT);
            w->lp = H5Dcreate2(w->file, "/topk_logprobs", H5T_IEEE_F32LE, s2, H5P_DEFAULT, w->dcpl,
                               H5P_DEFAULT);
            H5Sclose(s2);
            bad = w->ids < 0 || w->lp < 0;
        }
    }
    H5E_END_TRY;
    if (bad) {
        kd_topk_writer_close(w);
        return -1;
    }
    *out = w;
    return 0;
}

// Write `count` (rows of cols; cols 0: 1-D) of mem (type mt) at row `at` of dataset ds.
static int write_rows(hid_t ds, hid_t mt, hsize_t at, hsize_t count, hsize_t cols,
                      const void *mem) {
    hsize_t st[2] = {at, 0}, cnt[2] = {count, cols};
    int rank = cols ? 2 : 1, bad;
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(rank, cnt, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, cnt, NULL);
    bad = H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, mem) < 0;
    H5Sclose(ms), H5Sclose(fs);
    return bad ? -1 : 0;
}

int kd_topk_writer_add(kd_topk_writer *w, const uint64_t *prompt_index, uint64_t n_docs,
                       const int32_t *ids, const float *lp, uint64_t n_rows) {
    if (w->doc + n_docs > w->n_docs || (w->k && w->row + n_rows > w->n_tokens)) return -1;
    int bad = 0;
    H5E_BEGIN_TRY {
        if (n_docs)
            bad = write_rows(w->prompt_index, H5T_NATIVE_UINT64, w->doc, n_docs, 0, prompt_index);
        if (!bad && w->k && n_rows)
            bad = write_rows(w->ids, H5T_NATIVE_INT32, w->row, n_rows, (hsize_t)w->k, ids) ||
                  write_rows(w->lp, H5T_NATIVE_FLOAT, w->row, n_rows, (hsize_t)w->k, lp);
    }
    H5E_END_TRY;
    w->doc += n_docs;
    if (w->k) w->row += n_rows;
    return bad ? -1 : 0;
}

int kd_topk_writer_close(kd_topk_writer *w) {
    if (!w) return -1;
    int bad = w->doc != w->n_docs || (w->k && w->row != w->n_tokens);
    H5E_BEGIN_TRY {
        if (w->prompt_index >= 0) H5Dclose(w->prompt_index);
        if (w->ids >= 0) H5Dclose(w->ids);
        if (w->lp >= 0) H5Dclose(w->lp);
        H5Pclose(w->dcpl);
        if (w->file >= 0 && H5Fclose(w->file) < 0) bad = 1;
        if (w->file < 0) bad = 1;
    }
    H5E_END_TRY;
    free(w);
    return bad ? -1 : 0;
}

// ---------------------------------------------------------------------------- reading back

// All of dataset `name` (elem bytes each, mem type mt) in a new buffer; *count gets elements.
static void *read_whole(hid_t f, const char *name, hid_t mt, size_t elem, uint64_t *count) {
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return NULL;
    hid_t s = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    H5Sclose(s);
    void *buf = n >= 0 ? kd_malloc((size_t)n * elem + 1) : NULL;
    if (buf && n > 0 && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf);
        buf = NULL;
    }
    H5Dclose(ds);
    *count = n >= 0 ? (uint64_t)n : 0;
    return buf;
}

int kd_topk_read_all(const char *path, int k, uint64_t **prompt_index, uint64_t *n_docs,
                     int32_t **ids, float **lp, uint64_t *n_rows) {
    uint64_t np = 0, ni = 0, nl = 0;
    uint64_t *p = NULL;
    int32_t *i = NULL;
    float *l = NULL;
    H5E_BEGIN_TRY {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f >= 0) {
            p = read_whole(f, "/prompt_index", H5T_NATIVE_UINT64, 8, &np);
            if (k) i = read_whole(f, "/topk_ids", H5T_NATIVE_INT32, 4, &ni);
            if (k) l = read_whole(f, "/topk_logprobs", H5T_NATIVE_FLOAT, 4, &nl);
            H5Fclose(f);
        }
    }
    H5E_END_TRY;
    if (!p || (k && (!i || !l || ni != nl || ni % (uint64_t)k))) {
        free(p), free(i), free(l);
        return -1;
    }
    *prompt_index = p, *ids = i, *lp = l;
    *n_docs = np, *n_rows = k ? ni / (uint64_t)k : 0;
    return 0;
}
