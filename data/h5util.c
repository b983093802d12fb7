// h5util.c: typed HDF5 attribute helpers shared by the dataset reader and writer.
#include "data/h5util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

// ---------------------------------------------------------------------------- read guard

static char guard_msg[1400];
static size_t guard_len;

static void guard_fire(int sig) {
    (void)sig;
    ssize_t w = write(STDERR_FILENO, guard_msg, guard_len); // async-signal-safe
    (void)w;
    _exit(2);
}

int kd_h5_read_vlen_str(hid_t a, hid_t memtype, char **out) {
    *out = NULL;
    const char *env = getenv("KD_H5_ATTR_TIMEOUT_S");
    double limit = env && *env ? atof(env) : 20.0;
    struct itimerval cur;
    int busy = getitimer(ITIMER_REAL, &cur) == 0 && (cur.it_value.tv_sec || cur.it_value.tv_usec);
    if (!(limit > 0) || busy) // no limit, or the timer belongs to someone else (a fuzzer)
        return H5Aread(a, memtype, out) < 0 ? -1 : 0;
    char file[1024] = "?", name[128] = "?";
    if (H5Fget_name(a, file, sizeof file) < 0) snprintf(file, sizeof file, "?");
    if (H5Aget_name(a, sizeof name, name) < 0) snprintf(name, sizeof name, "?");
    int n = snprintf(guard_msg, sizeof guard_msg,
                     "kdtrain: error: %s: HDF5 did not finish reading string attribute '%s' "
                     "within %g s: the file is damaged (its global heap loops); recreate it\n",
                     file, name, limit);
    guard_len = n < 0 ? 0 : (size_t)n < sizeof guard_msg ? (size_t)n : sizeof guard_msg - 1;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = guard_fire;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    struct itimerval tv = {{0, 0}, {(time_t)limit, (suseconds_t)((limit - (double)(time_t)limit) * 1e6)}};
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &tv, NULL);
    herr_t e = H5Aread(a, memtype, out);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    return e < 0 ? -1 : 0;
}

// ---------------------------------------------------------------------------- attributes

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
        if (kd_h5_read_vlen_str(a, mt, &p) < 0) goto done;
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

static int slab_io(hid_t ds, hid_t mt, unsigned long long start, unsigned long long n, void *rbuf,
                   const void *wbuf) {
    hsize_t st = start, cnt = n;
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &cnt, NULL);
    herr_t e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &cnt, NULL);
    if (e >= 0)
        e = rbuf ? H5Dread(ds, mt, ms, fs, H5P_DEFAULT, rbuf)
                 : H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, wbuf);
    H5Sclose(ms);
    H5Sclose(fs);
    return e < 0 ? -1 : 0;
}

int kd_h5_read_slab(hid_t ds, hid_t mt, unsigned long long start, unsigned long long n, void *buf) {
    return slab_io(ds, mt, start, n, buf, NULL);
}

int kd_h5_write_slab(hid_t ds, hid_t mt, unsigned long long start, unsigned long long n,
                     const void *buf) {
    return slab_io(ds, mt, start, n, NULL, buf);
}
