// h5util.c: typed HDF5 attribute helpers shared by the dataset reader and writer.
#include "data/h5util.h"

#include <stdio.h>
#include <string.h>

int kd_h5_read_int_attr(hid_t obj, const char *name, long long *v) {
    int rc = -1;
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    if (t >= 0 && s >= 0 && H5Tget_class(t) == H5T_INTEGER &&
        H5Sget_simple_extent_npoints(s) == 1) {
        long long x = 0;
        if (H5Aread(a, H5T_NATIVE_LLONG, &x) >= 0) {
            *v = x;
            rc = 0;
        }
    }
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int kd_h5_read_str_attr(hid_t obj, const char *name, char *buf, size_t cap) {
    int rc = -1;
    if (cap == 0 || H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a), mt = -1;
    if (t < 0 || s < 0 || H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(s) != 1)
        goto done;
    mt = H5Tcopy(H5T_C_S1);
    if (H5Tis_variable_str(t) > 0) {
        // variable length: the library allocates, we copy and free
        char *p = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, &p) < 0) goto done;
        snprintf(buf, cap, "%s", p ? p : "");
        if (p) H5free_memory(p);
        rc = 0;
    } else {
        // fixed length: one byte more than stored so the last char survives
        size_t n = H5Tget_size(t);
        char tmp[512];
        if (n == 0 || n + 1 > sizeof tmp) goto done;
        H5Tset_size(mt, n + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        memset(tmp, 0, sizeof tmp);
        if (H5Aread(a, mt, tmp) < 0) goto done;
        snprintf(buf, cap, "%s", tmp);
        rc = 0;
    }
done:
    if (mt >= 0) H5Tclose(mt);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int kd_h5_write_int_attr(hid_t obj, const char *name, long long v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0) ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return rc;
}

int kd_h5_write_str_attr(hid_t obj, const char *name, const char *str) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a >= 0 && H5Awrite(a, t, &str) >= 0) ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Tclose(t);
    H5Sclose(s);
    return rc;
}
