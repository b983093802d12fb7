// h5_test_util.h: tiny HDF5 read/write helpers for tests that exchange arrays with the
// Python reference implementations (float32/int32 datasets, scalar attributes).
#pragma once
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static inline void h5t_write(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                             const void *data) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(loc, name, type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0 || H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        fprintf(stderr, "h5: cannot write %s\n", name);
        exit(1);
    }
    H5Dclose(ds), H5Sclose(sp), H5Pclose(lcpl);
}

static inline void h5t_attr_double(hid_t loc, const char *name, double v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a), H5Sclose(sp);
}

static inline void h5t_attr_int(hid_t loc, const char *name, long long v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_NATIVE_LLONG, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a), H5Sclose(sp);
}

// Read a dataset as doubles; returns element count (exits on failure). *out is malloc'd.
static inline size_t h5t_read_f64(hid_t loc, const char *name, double **out) {
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) {
        fprintf(stderr, "h5: missing %s\n", name);
        exit(1);
    }
    hid_t sp = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    *out = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out);
    H5Sclose(sp), H5Dclose(ds);
    return (size_t)n;
}

// Relative error ||a-b|| / ||b|| and max |a-b| / max |b|.
static inline double rel_err_f(const float *a, const double *b, size_t n, double *maxrel) {
    double num = 0, den = 0, maxd = 0, maxb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d, den += b[i] * b[i];
        if (fabs(d) > maxd) maxd = fabs(d);
        if (fabs(b[i]) > maxb) maxb = fabs(b[i]);
    }
    if (maxrel) *maxrel = maxb > 0 ? maxd / maxb : maxd;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
