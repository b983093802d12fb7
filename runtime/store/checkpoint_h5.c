// checkpoint_h5.c: the HDF5 files of a checkpoint. model.h5 holds /params/<name>,
// optim.h5 /m/<name> and /v/<name>, all float32 little-endian, full tensor shapes, created
// in table order (link creation order is tracked so readers see that order). Rank 0 lays
// the file out with serial HDF5 (metadata only, contiguous datasets at fixed offsets), then
// writes the data with pwrite; optimizer shards reach it by a gather, a piece at a time.
// Why not HDF5 for the data: with parallel HDF5 a write error on one rank deadlocks the
// others in H5Fclose, and with serial HDF5 a failed H5Fclose (e.g. ENOSPC while flushing
// cached data) leaves a file object that crashes the process at exit. Writing the bulk
// ourselves keeps every I/O error an ordinary, reportable errno.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "data/h5util.h"
#include "runtime/store/checkpoint_internal.h"
#include "runtime/base/sha256.h"

// ---------------------------------------------------------------------------- helpers

// HDF5 prints its error stack by default; the checkpoint code reports its own errors.
typedef struct {
    H5E_auto2_t fn;
    void *data;
} quiet_h5;
static void quiet_begin(quiet_h5 *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void quiet_end(quiet_h5 *q) {
    H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
}

static const char *errno_text(int e) {
    return e ? strerror(e) : "HDF5 reported an error";
}

// H5Fopen of path (named `shown`) failed: say why, blaming the format only when the file
// is there and readable (a moved run's stale path must read as a missing file).
static int open_failed(const char *path, const char *shown, int code, kd_error *err) {
    if (access(path, F_OK) != 0 && errno == ENOENT) return kd_fail(err, code, "file is missing: %s", shown);
    if (access(path, R_OK) != 0) return kd_fail(err, code, "%s: cannot open: %s", shown, strerror(errno));
    return kd_fail(err, code, "%s: cannot open as HDF5", shown);
}

// Select flat (row-major) elements [a, b) of the sub-array whose leading d indices are
// start[0..d). Adds at most 2*ndim hyperslabs to `space` (OR-ed together).
static int select_flat_rec(hid_t space, int ndim, const hsize_t *dims, int d, hsize_t *start,
                           hsize_t a, hsize_t b, int *first) {
    hsize_t inner = 1;
    for (int k = d + 1; k < ndim; k++) inner *= dims[k];
    if (a % inner == 0 && b % inner == 0) { // whole rows [a/inner, b/inner) of dim d
        hsize_t st[8], cnt[8];
        for (int k = 0; k < ndim; k++) {
            st[k] = k < d ? start[k] : 0;
            cnt[k] = k < d ? 1 : dims[k];
        }
        st[d] = a / inner;
        cnt[d] = b / inner - a / inner;
        H5S_seloper_t op = *first ? H5S_SELECT_SET : H5S_SELECT_OR;
        *first = 0;
        return H5Sselect_hyperslab(space, op, st, NULL, cnt, NULL) < 0 ? -1 : 0;
    }
    hsize_t r0 = a / inner, r1 = (b - 1) / inner;
    if (r0 == r1) { // inside one row: descend
        start[d] = r0;
        return select_flat_rec(space, ndim, dims, d + 1, start, a - r0 * inner, b - r0 * inner,
                               first);
    }
    // head (partial row), middle (whole rows), tail (partial or whole row)
    if (select_flat_rec(space, ndim, dims, d, start, a, (r0 + 1) * inner, first) < 0) return -1;
    if (r1 > r0 + 1 &&
        select_flat_rec(space, ndim, dims, d, start, (r0 + 1) * inner, r1 * inner, first) < 0)
        return -1;
    return select_flat_rec(space, ndim, dims, d, start, r1 * inner, b, first);
}

// Select flat elements [a, b) (b > a) of a dataset with the given shape.
static int select_flat(hid_t space, int ndim, const hsize_t *dims, hsize_t a, hsize_t b) {
    if (ndim == 0) return H5Sselect_all(space) < 0 ? -1 : 0;
    hsize_t start[8] = {0};
    int first = 1;
    return select_flat_rec(space, ndim, dims, 0, start, a, b, &first);
}

static void dims_of(const kd_param_info *p, hsize_t *dims) {
    for (int k = 0; k < p->ndim; k++) dims[k] = (hsize_t)p->shape[k];
}

static int write_str_attr(hid_t obj, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, t, &value) < 0 ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

static int write_num_attr(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, mtype, v) < 0 ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return rc;
}

// ---------------------------------------------------------------------------- writing

// Rank 0 only: root attributes of a new file.
static int write_root_attrs(hid_t f, const char *path, const kd_ckpt_attr *attrs, int n_attrs,
                            int64_t step, kd_error *err) {
    if (write_str_attr(f, KD_CKPT_FORMAT_ATTR, KD_CKPT_FORMAT_NAME " 1") < 0 ||
        write_str_attr(f, KD_CKPT_VERSION_ATTR, KD_VERSION) < 0)
        return kd_fail(err, KD_ERUNTIME, "%s: cannot write format attributes", path);
    if (step >= 0 && write_num_attr(f, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &step) < 0)
        return kd_fail(err, KD_ERUNTIME, "%s: cannot write attribute step", path);
    for (int i = 0; i < n_attrs; i++) {
        const kd_ckpt_attr *at = &attrs[i];
        int r = at->type == KD_ATTR_INT
                    ? write_num_attr(f, at->name, H5T_STD_I64LE, H5T_NATIVE_INT64, &at->i)
                : at->type == KD_ATTR_FLOAT
                    ? write_num_attr(f, at->name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &at->f)
                    : write_str_attr(f, at->name, at->s);
        if (r < 0)
            return kd_fail(err, KD_ERUNTIME, "%s: cannot write attribute %s", path, at->name);
    }
    return KD_OK;
}

// Rank 0: the file's metadata: attributes, groups, and contiguous datasets allocated but
// not written (sparse). off[g*n+i] gets each dataset's byte offset in the file.
static int create_layout(const char *path, const kd_param_table *pt, const char *const *groups,
                         int ngroups, const kd_ckpt_attr *attrs, int n_attrs, int64_t step,
                         uint64_t *off, kd_error *err) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_attr_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    errno = 0;
    hid_t f = H5Fcreate(path, H5F_ACC_EXCL, fcpl, H5P_DEFAULT);
    int e = errno;
    H5Pclose(fcpl);
    if (f < 0) return kd_fail(err, KD_ERUNTIME, "%s: cannot create: %s", path, errno_text(e));
    int rc = write_root_attrs(f, path, attrs, n_attrs, step, err);
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_layout(dcpl, H5D_CONTIGUOUS);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY); // fixed offsets now, data written later
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    for (int g = 0; g < ngroups && rc == KD_OK; g++) {
        hid_t grp = H5Gcreate2(f, groups[g], H5P_DEFAULT, gcpl, H5P_DEFAULT);
        if (grp < 0) rc = kd_fail(err, KD_ERUNTIME, "%s: cannot create group /%s", path, groups[g]);
        for (int i = 0; i < pt->n && rc == KD_OK; i++) {
            const kd_param_info *p = &pt->t[i];
            hsize_t dims[4];
            dims_of(p, dims);
            hid_t fs = p->ndim ? H5Screate_simple(p->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
            hid_t ds = H5Dcreate2(grp, p->name, H5T_IEEE_F32LE, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            haddr_t at = ds >= 0 ? H5Dget_offset(ds) : HADDR_UNDEF;
            if (ds < 0 || (at == HADDR_UNDEF && p->numel > 0))
                rc =
                    kd_fail(err, KD_ERUNTIME, "%s: cannot create /%s/%s", path, groups[g], p->name);
            off[g * pt->n + i] = (uint64_t)at;
            if (ds >= 0) H5Dclose(ds);
            H5Sclose(fs);
        }
        if (grp >= 0) H5Gclose(grp);
    }
    H5Pclose(dcpl);
    H5Pclose(gcpl);
    errno = 0;
    // Only metadata is written here (small); a failing H5Fclose leaves HDF5 in a state that
    // crashes at exit, which is why the bulk data never goes through HDF5 (see below).
    if (H5Fclose(f) < 0 && rc == KD_OK) {
        e = errno;
        rc = kd_fail(err, KD_ERUNTIME, "%s: closing: %s", path, errno_text(e));
    }
    return rc;
}

// Test hook: KD_CKPT_FAIL_WRITE=<file name> makes the data writes to that file fail with
// ENOSPC, so the no-space path can be tested without filling a disk.
static int injected_failure(const char *path) {
    const char *want = getenv("KD_CKPT_FAIL_WRITE");
    return want && *want && kd_str_endswith(path, want);
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t at) {
    for (const char *p = buf; n;) {
        ssize_t w = pwrite(fd, p, n, (off_t)at);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno;
        if (w == 0) return EIO;
        p += w, n -= (size_t)w, at += (uint64_t)w;
    }
    return 0;
}

int kd_ckpt_h5_write(kd_comm *comm, const char *path, const kd_param_table *pt,
                     const char *const *groups, const float *const *data, int ngroups,
                     int replicated, const kd_ckpt_attr *attrs, int n_attrs, int64_t step,
                     kd_error *err) {
    int rank = kd_comm_rank(comm), world = kd_comm_size(comm), rc = KD_OK, fd = -1;
    uint64_t *off = kd_calloc((size_t)(ngroups * pt->n) + 1, sizeof(uint64_t));
    if (rank == 0) {
        const uint32_t one = 1;
        if (*(const uint8_t *)&one != 1)
            rc = kd_fail(err, KD_EINTERNAL, "%s: checkpoints need a little-endian host", path);
        quiet_h5 q;
        quiet_begin(&q);
        if (rc == KD_OK)
            rc = create_layout(path, pt, groups, ngroups, attrs, n_attrs, step, off, err);
        quiet_end(&q);
        if (rc == KD_OK && (fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
            rc = kd_fail(err, KD_ERUNTIME, "%s: cannot reopen: %s", path, strerror(errno));
    }
    // the other ranks only take part in the gathers: skip them if rank 0 cannot write at all
    int go = rc == KD_OK;
    kd_comm_bcast(comm, &go, sizeof go);
    // shard bounds of every rank (contiguous, in rank order) and a staging buffer on rank 0
    size_t *bound = kd_malloc((size_t)(world + 1) * sizeof(size_t)), big = 1;
    for (int r = 0; r < world; r++) kd_shard_range(pt->total, world, r, &bound[r], &bound[r + 1]);
    const size_t lo = bound[rank];
    for (int i = 0; i < pt->n; i++) big = pt->t[i].numel > big ? pt->t[i].numel : big;
    const size_t CH = (size_t)1 << 24; // elements per gather: bounds rank 0's extra memory
    float *stage =
        rank == 0 && !replicated ? kd_malloc((big < CH ? big : CH) * sizeof(float)) : NULL;
    int *counts = kd_calloc((size_t)world, sizeof(int)),
        *displs = kd_calloc((size_t)world, sizeof(int));
    for (int g = 0; g < ngroups && go; g++) {
        for (int i = 0; i < pt->n; i++) {
            const kd_param_info *p = &pt->t[i];
            for (size_t a = 0; a < p->numel; a += CH) {
                size_t b = a + CH < p->numel ? a + CH : p->numel;
                size_t s = p->offset + a, en = p->offset + b; // flat range of this piece
                const float *src = replicated ? data[g] + s : stage;
                if (!replicated) { // rank 0 collects [s, en) from the ranks that own it
                    for (int r = 0; r < world; r++) {
                        size_t x = bound[r] > s ? bound[r] : s,
                               y = bound[r + 1] < en ? bound[r + 1] : en;
                        counts[r] = y > x ? (int)(y - x) : 0;
                        displs[r] = y > x ? (int)(x - s) : 0;
                    }
                    size_t x = lo > s ? lo : s;
                    kd_comm_gatherv_f32(comm, counts[rank] ? data[g] + (x - lo) : NULL,
                                        counts[rank], stage, counts, displs);
                }
                if (rank != 0 || rc != KD_OK) continue; // after a failure: gathers only
                // row-major contiguous dataset: flat element k lives at offset + 4k
                int e = injected_failure(path) ? ENOSPC
                                               : pwrite_all(fd, src, (b - a) * sizeof(float),
                                                            off[g * pt->n + i] + a * sizeof(float));
                if (e)
                    rc = kd_fail(err, KD_ERUNTIME, "%s: writing /%s/%s: %s", path, groups[g],
                                 p->name, strerror(e));
            }
        }
    }
    if (fd >= 0 && close(fd) != 0 && rc == KD_OK)
        rc = kd_fail(err, KD_ERUNTIME, "%s: closing: %s", path, strerror(errno));
    free(stage), free(counts), free(displs), free(bound), free(off);
    return rc;
}

// ---------------------------------------------------------------------------- reading

typedef struct {
    kd_param_table *pt;
    int cap;
    hid_t grp;
    int bad;
} table_walk;

static herr_t table_visit(hid_t grp, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    table_walk *w = op;
    if (w->pt->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->pt->t = kd_realloc(w->pt->t, (size_t)w->cap * sizeof *w->pt->t);
    }
    kd_param_info *p = &w->pt->t[w->pt->n];
    memset(p, 0, sizeof *p);
    hid_t ds = H5Dopen2(grp, name, H5P_DEFAULT);
    if (ds < 0 || strlen(name) >= KD_PARAM_NAME_MAX) {
        if (ds >= 0) H5Dclose(ds);
        w->bad = 1;
        return -1;
    }
    hid_t fs = H5Dget_space(ds);
    int nd = H5Sget_simple_extent_ndims(fs);
    hsize_t dims[8];
    if (nd < 0 || nd > 4)
        w->bad = 1;
    else {
        H5Sget_simple_extent_dims(fs, dims, NULL);
        snprintf(p->name, sizeof p->name, "%s", name);
        p->ndim = nd;
        p->numel = 1;
        for (int k = 0; k < nd; k++) {
            p->shape[k] = (int)dims[k];
            p->numel *= dims[k];
        }
        p->offset = w->pt->total;
        w->pt->total += p->numel;
        w->pt->n++;
    }
    H5Sclose(fs);
    H5Dclose(ds);
    return w->bad ? -1 : 0;
}

// Names/shapes of /<group> in creation order (name order if creation order is untracked).
static int read_group_table(hid_t f, const char *path, const char *group, kd_param_table *pt,
                            kd_error *err) {
    memset(pt, 0, sizeof *pt);
    hid_t grp = H5Gopen2(f, group, H5P_DEFAULT);
    if (grp < 0) return kd_fail(err, KD_EINPUT, "%s: has no group /%s", path, group);
    table_walk w = {pt, 0, grp, 0};
    hsize_t idx = 0;
    herr_t r = H5Literate(grp, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, table_visit, &w);
    if (r < 0 && !w.bad && pt->n == 0) {
        idx = 0;
        r = H5Literate(grp, H5_INDEX_NAME, H5_ITER_INC, &idx, table_visit, &w);
    }
    H5Gclose(grp);
    if (r < 0 || w.bad) {
        free(pt->t);
        memset(pt, 0, sizeof *pt);
        return kd_fail(err, KD_EINPUT,
                       "%s: /%s holds an entry that is not a float tensor of rank <= 4", path,
                       group);
    }
    return KD_OK;
}

static void shape_str(const kd_param_info *p, char *out, size_t n) {
    size_t k = (size_t)snprintf(out, n, "(");
    for (int d = 0; d < p->ndim && k < n; d++)
        k += (size_t)snprintf(out + k, n - k, d ? ",%d" : "%d", p->shape[d]);
    if (k < n) snprintf(out + k, n - k, ")");
}

int kd_ckpt_h5_check(const char *path, const char *shown, const char *group,
                     const kd_param_table *pt, kd_error *err) {
    quiet_h5 q;
    quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        quiet_end(&q);
        return open_failed(path, shown, KD_EINPUT, err);
    }
    kd_param_table have;
    int rc = read_group_table(f, shown, group, &have, err);
    H5Fclose(f);
    quiet_end(&q);
    if (rc) return rc;
    char a[64], b[64];
    for (int i = 0; i < pt->n && rc == KD_OK; i++) {
        const kd_param_info *want = &pt->t[i];
        int j = 0;
        while (j < have.n && strcmp(have.t[j].name, want->name) != 0) j++;
        if (j == have.n) {
            rc = kd_fail(err, KD_EINPUT, "%s: has no tensor /%s/%s, which the recipe's model needs",
                         shown, group, want->name);
            break;
        }
        int same = have.t[j].ndim == want->ndim;
        for (int d = 0; same && d < want->ndim; d++) same = have.t[j].shape[d] == want->shape[d];
        if (!same) {
            shape_str(&have.t[j], a, sizeof a);
            shape_str(want, b, sizeof b);
            rc = kd_fail(err, KD_EINPUT, "%s: %s has shape %s, the recipe's model needs %s", shown,
                         want->name, a, b);
        }
    }
    if (rc == KD_OK && have.n != pt->n) { // same names present: something extra is stored
        for (int j = 0; j < have.n; j++) {
            int i = 0;
            while (i < pt->n && strcmp(have.t[j].name, pt->t[i].name) != 0) i++;
            if (i == pt->n) {
                rc = kd_fail(err, KD_EINPUT,
                             "%s: has tensor /%s/%s, which the recipe's model does not", shown,
                             group, have.t[j].name);
                break;
            }
        }
    }
    free(have.t);
    return rc;
}

// Read flat elements [a, b) of one open dataset of shape p into dst, as `mtype`.
static int read_part(hid_t ds, const kd_param_info *p, size_t a, size_t b, hid_t mtype, void *dst) {
    hsize_t dims[4], cnt = b - a;
    dims_of(p, dims);
    hid_t fs = H5Dget_space(ds);
    hid_t ms = H5Screate_simple(1, &cnt, NULL);
    int rc = select_flat(fs, p->ndim, dims, a, b) < 0 ||
             H5Dread(ds, mtype, ms, fs, H5P_DEFAULT, dst) < 0;
    H5Sclose(ms);
    H5Sclose(fs);
    return rc ? -1 : 0;
}

int kd_ckpt_h5_read(const char *path, const char *group, const kd_param_table *pt, size_t lo,
                    size_t hi, float *dst, kd_error *err) {
    quiet_h5 q;
    quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int rc = KD_OK;
    if (f < 0) rc = open_failed(path, path, KD_ERUNTIME, err);
    hid_t grp = f >= 0 ? H5Gopen2(f, group, H5P_DEFAULT) : -1;
    if (f >= 0 && grp < 0) rc = kd_fail(err, KD_ERUNTIME, "%s: has no group /%s", path, group);
    for (int i = 0; i < pt->n && rc == KD_OK; i++) {
        const kd_param_info *p = &pt->t[i];
        size_t s = lo > p->offset ? lo : p->offset;
        size_t e = hi < p->offset + p->numel ? hi : p->offset + p->numel;
        if (e <= s) continue;
        hid_t ds = H5Dopen2(grp, p->name, H5P_DEFAULT);
        if (ds < 0 ||
            read_part(ds, p, s - p->offset, e - p->offset, H5T_NATIVE_FLOAT, dst + (s - lo)) < 0)
            rc = kd_fail(err, KD_ERUNTIME, "%s: cannot read /%s/%s", path, group, p->name);
        if (ds >= 0) H5Dclose(ds);
    }
    if (grp >= 0) H5Gclose(grp);
    if (f >= 0) H5Fclose(f);
    quiet_end(&q);
    return rc;
}

int kd_ckpt_h5_read_int_attr(const char *path, const char *name, int64_t *out, kd_error *err) {
    quiet_h5 q;
    quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t a = f >= 0 ? H5Aopen(f, name, H5P_DEFAULT) : -1;
    int rc = a < 0 || H5Aread(a, H5T_NATIVE_INT64, out) < 0;
    if (a >= 0) H5Aclose(a);
    if (f >= 0) H5Fclose(f);
    quiet_end(&q);
    return rc ? kd_fail(err, KD_EINPUT, "%s: has no integer attribute %s", path, name) : KD_OK;
}

// ---------------------------------------------------------------------------- public readers

typedef struct {
    kd_ckpt_attr *out;
    int max, n, overflow, bad;
} attr_walk;

static herr_t attr_visit(hid_t obj, const char *name, const H5A_info_t *info, void *op) {
    (void)info;
    attr_walk *w = op;
    if (strncmp(name, "kdtrain_", 8) == 0) return 0;
    if (w->n == w->max) {
        w->overflow = 1;
        return 1;
    }
    kd_ckpt_attr *at = &w->out[w->n];
    memset(at, 0, sizeof *at);
    snprintf(at->name, sizeof at->name, "%s", name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(t);
    int r = -1;
    if (cls == H5T_INTEGER) {
        at->type = KD_ATTR_INT;
        r = H5Aread(a, H5T_NATIVE_INT64, &at->i);
    } else if (cls == H5T_FLOAT) {
        at->type = KD_ATTR_FLOAT;
        r = H5Aread(a, H5T_NATIVE_DOUBLE, &at->f);
    } else if (cls == H5T_STRING) {
        at->type = KD_ATTR_STRING;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(t)); // HDF5 does not convert between character sets
        if (H5Tis_variable_str(t) > 0) {
            char *v = NULL;
            H5Tset_size(mt, H5T_VARIABLE);
            r = kd_h5_read_vlen_str(a, mt, &v);
            if (r >= 0 && v) snprintf(at->s, sizeof at->s, "%s", v);
            if (v) H5free_memory(v);
        } else {
            size_t n = H5Tget_size(t);
            char *v = kd_calloc(n + 1, 1);
            H5Tset_size(mt, n + 1); // room for the terminator
            r = H5Aread(a, mt, v);
            snprintf(at->s, sizeof at->s, "%s", v);
            free(v);
        }
        H5Tclose(mt);
    }
    H5Tclose(t);
    H5Aclose(a);
    if (r < 0) {
        w->bad = 1;
        return -1;
    }
    w->n++;
    return 0;
}

int kd_ckpt_read_attrs(const char *ckpt_dir, kd_ckpt_attr *out, int max, int *n_out,
                       kd_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.h5", ckpt_dir);
    quiet_h5 q;
    quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        quiet_end(&q);
        return open_failed(path, path, KD_EINPUT, err);
    }
    attr_walk w = {out, max, 0, 0, 0};
    hsize_t idx = 0;
    herr_t r = H5Aiterate2(f, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, attr_visit, &w);
    if (r < 0 && !w.bad && w.n == 0) { // file without tracked attribute order
        idx = 0;
        r = H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_visit, &w);
    }
    H5Fclose(f);
    quiet_end(&q);
    *n_out = w.n;
    if (w.overflow)
        return kd_fail(err, KD_EINPUT, "%s: has more than %d model attributes", path, max);
    if (r < 0 || w.bad)
        return kd_fail(err, KD_EINPUT, "%s: an attribute is not an int, float or string", path);
    return KD_OK;
}

int kd_ckpt_read_table(const char *ckpt_dir, kd_param_table *table, kd_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.h5", ckpt_dir);
    quiet_h5 q;
    quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int rc = f < 0 ? open_failed(path, path, KD_EINPUT, err)
                   : read_group_table(f, path, "params", table, err);
    if (f >= 0) H5Fclose(f);
    quiet_end(&q);
    return rc;
}

int kd_ckpt_digest(const char *ckpt_dir, char hex[65], kd_error *err) {
    kd_param_table pt;
    int rc = kd_ckpt_read_table(ckpt_dir, &pt, err);
    if (rc) return rc;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.h5", ckpt_dir);
    quiet_h5 q;
    quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t grp = f >= 0 ? H5Gopen2(f, "params", H5P_DEFAULT) : -1;
    if (grp < 0) rc = kd_fail(err, KD_EINPUT, "%s: cannot open /params", path);
    enum { CHUNK = 1 << 20 }; // elements per read: bounded memory for any tensor size
    float *buf = kd_malloc(CHUNK * sizeof(float));
    kd_sha256 c;
    kd_sha256_init(&c);
    for (int i = 0; i < pt.n && rc == KD_OK; i++) {
        hid_t ds = H5Dopen2(grp, pt.t[i].name, H5P_DEFAULT);
        for (size_t a = 0; a < pt.t[i].numel && rc == KD_OK; a += CHUNK) {
            size_t b = a + CHUNK < pt.t[i].numel ? a + CHUNK : pt.t[i].numel;
            // read as float32 little-endian so the digest is the same on any host
            if (ds < 0 || read_part(ds, &pt.t[i], a, b, H5T_IEEE_F32LE, buf) < 0)
                rc = kd_fail(err, KD_ERUNTIME, "%s: cannot read /params/%s", path, pt.t[i].name);
            else
                kd_sha256_update(&c, buf, (b - a) * sizeof(float));
        }
        if (ds >= 0) H5Dclose(ds);
    }
    free(buf);
    free(pt.t);
    if (grp >= 0) H5Gclose(grp);
    if (f >= 0) H5Fclose(f);
    quiet_end(&q);
    if (rc == KD_OK) {
        uint8_t d[32];
        kd_sha256_final(&c, d);
        kd_sha256_hex(d, hex);
    }
    return rc;
}
