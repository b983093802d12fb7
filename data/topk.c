// topk.c: reader of the cached top-K teacher arrays of a kd dataset (topk.h).
#include "data/topk.h"

#include <hdf5.h>
#include <stdlib.h>

struct kd_topk {
    hid_t file, ids, lp;
    int k;
    char path[1024];
};

int kd_topk_present(const char *path) {
    int ok = 0;
    H5E_BEGIN_TRY {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f >= 0) {
            ok = H5Lexists(f, "topk_ids", H5P_DEFAULT) > 0 && H5Lexists(f, "topk_logprobs", H5P_DEFAULT) > 0;
            H5Fclose(f);
        }
    }
    H5E_END_TRY;
    return ok;
}

static int dims2(hid_t d, hsize_t out[2]) {
    hid_t sp = H5Dget_space(d);
    int ok = H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, out, NULL) == 2;
    H5Sclose(sp);
    return ok;
}

int kd_topk_open(kd_topk **out, const char *path, uint64_t n_tokens, int *k, kd_error *err) {
    *out = NULL;
    kd_topk *t = kd_calloc(1, sizeof *t);
    snprintf(t->path, sizeof t->path, "%s", path);
    t->file = t->ids = t->lp = -1;
    int rc = KD_OK;
    H5E_BEGIN_TRY {
        t->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (t->file >= 0) {
            t->ids = H5Dopen2(t->file, "topk_ids", H5P_DEFAULT);
            t->lp = H5Dopen2(t->file, "topk_logprobs", H5P_DEFAULT);
        }
    }
    H5E_END_TRY;
    hsize_t a[2], b[2];
    if (t->file < 0 || t->ids < 0 || t->lp < 0)
        rc = kd_fail(err, KD_EINPUT, "%s: expected /topk_ids and /topk_logprobs (a kd dataset with a cached teacher)", path);
    else if (!dims2(t->ids, a) || !dims2(t->lp, b) || a[0] != b[0] || a[1] != b[1] || a[0] != n_tokens || a[1] < 1 ||
             a[1] > 4096)
        rc = kd_fail(err, KD_EINPUT, "%s: /topk_ids and /topk_logprobs must both be (n_tokens=%llu, K) with 1 <= K <= 4096",
                     path, (unsigned long long)n_tokens);
    if (rc) {
        kd_topk_close(t);
        return rc;
    }
    t->k = (int)a[1];
    *k = t->k;
    *out = t;
    return KD_OK;
}

int kd_topk_read(kd_topk *t, uint64_t start, uint64_t n, int32_t *ids, float *lp, kd_error *err) {
    hsize_t off[2] = {start, 0}, cnt[2] = {n, (hsize_t)t->k};
    int ok = 1;
    hid_t ms = H5Screate_simple(2, cnt, NULL);
    hid_t fs = H5Dget_space(t->ids);
    ok &= H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) >= 0;
    ok &= H5Dread(t->ids, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, ids) >= 0;
    H5Sclose(fs);
    fs = H5Dget_space(t->lp);
    ok &= H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) >= 0;
    ok &= H5Dread(t->lp, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, lp) >= 0;
    H5Sclose(fs);
    H5Sclose(ms);
    return ok ? KD_OK : kd_fail(err, KD_ERUNTIME, "%s: cannot read top-K rows %llu..%llu", t->path,
                                (unsigned long long)start, (unsigned long long)(start + n));
}

void kd_topk_close(kd_topk *t) {
    if (!t) return;
    if (t->ids >= 0) H5Dclose(t->ids);
    if (t->lp >= 0) H5Dclose(t->lp);
    if (t->file >= 0) H5Fclose(t->file);
    free(t);
}
