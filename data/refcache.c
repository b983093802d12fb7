// refcache.c: reader and writer of the dpo stage's reference log-prob cache (refcache.h).
#include "data/refcache.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int kd_refcache_read(const char *path, const char *fp, uint64_t count, double *ref) {
    if (access(path, R_OK) != 0) return 0;
    int ok = 0;
    H5E_BEGIN_TRY {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f >= 0) {
            char have[80] = "";
            hid_t a = H5Aopen(f, "fingerprint", H5P_DEFAULT);
            if (a >= 0) {
                hid_t ty = H5Tcopy(H5T_C_S1);
                H5Tset_size(ty, 65);
                if (H5Aread(a, ty, have) >= 0) have[64] = '\0';
                H5Tclose(ty), H5Aclose(a);
            }
            hid_t d = H5Dopen2(f, "ref_logp", H5P_DEFAULT);
            if (d >= 0 && strcmp(have, fp) == 0) {
                hid_t sp = H5Dget_space(d);
                hsize_t dims[2] = {0, 0};
                if (H5Sget_simple_extent_ndims(sp) == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
                if (dims[0] == count && dims[1] == 2)
                    ok = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, ref) >= 0;
                H5Sclose(sp);
            }
            if (d >= 0) H5Dclose(d);
            H5Fclose(f);
        }
    }
    H5E_END_TRY;
    return ok;
}

int kd_refcache_write(const char *path, const char *fp, uint64_t count, const double *ref,
                      kd_error *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int ok = 0, e = 0; // e: the first system error (disk full, read-only directory)
    H5E_BEGIN_TRY {
        errno = 0;
        hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        if (f < 0) e = errno;
        if (f >= 0) {
            hsize_t dims[2] = {count, 2};
            hid_t sp = H5Screate_simple(2, dims, NULL);
            hid_t d = H5Dcreate2(f, "ref_logp", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                                 H5P_DEFAULT);
            ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, ref) >= 0;
            if (!ok) e = errno;
            hid_t as = H5Screate(H5S_SCALAR), ty = H5Tcopy(H5T_C_S1);
            H5Tset_size(ty, 65);
            hid_t a = H5Acreate2(f, "fingerprint", ty, as, H5P_DEFAULT, H5P_DEFAULT);
            ok = ok && a >= 0 && H5Awrite(a, ty, fp) >= 0;
            if (a >= 0) H5Aclose(a);
            H5Tclose(ty), H5Sclose(as);
            if (d >= 0) H5Dclose(d);
            H5Sclose(sp);
            int closed = H5Fclose(f) >= 0;
            if (!closed && !e) e = errno;
            ok = closed && ok;
        }
    }
    H5E_END_TRY;
    if (ok && rename(tmp, path) != 0) ok = 0, e = errno;
    if (!ok) {
        unlink(tmp);
        return kd_fail(err, KD_ERUNTIME,
                       "%s: cannot write the reference log-prob cache: %s; nothing was written (free "
                       "space or make the directory writable, then rerun)",
                       path, e ? strerror(e) : "HDF5 reported an error");
    }
    return KD_OK;
}
