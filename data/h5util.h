// h5util.h: small HDF5 helpers shared by data/ and the checkpoint reader: typed scalar and
// string attributes that read what h5py writes (int64 or int32 ints; fixed-length or
// variable-length strings). All return 0 on success, -1 on failure, and never print
// (except the read guard of kd_h5_read_vlen_str, which exits): callers wrap them in
// H5E_BEGIN_TRY and write the user-facing message themselves.
#pragma once
#include <hdf5.h>
#include <stddef.h>

// Read an integer attribute (any integer type) of obj into *v. -1 if missing or not int.
int kd_h5_read_int_attr(hid_t obj, const char *name, long long *v);
// Read a string attribute (fixed or variable length) into buf (cap bytes, truncated,
// always NUL-terminated). -1 if missing or not a string.
int kd_h5_read_str_attr(hid_t obj, const char *name, char *buf, size_t cap);
// H5Aread of a variable-length string attribute a into *out (the library allocates; free
// with H5free_memory), under a time limit: HDF5 1.10 can loop forever following the
// global-heap pointer of a damaged file. Past KD_H5_ATTR_TIMEOUT_S seconds (default 20;
// 0 = no limit; none either while another ITIMER_REAL runs) the process prints "kdtrain: error: FILE: ..." and exits with status 2
// (bad input) from a SIGALRM handler: nothing is written before files are validated.
int kd_h5_read_vlen_str(hid_t a, hid_t memtype, char **out);
// Write a scalar int64 attribute / a variable-length UTF-8 string attribute.
int kd_h5_write_int_attr(hid_t obj, const char *name, long long v);
int kd_h5_write_str_attr(hid_t obj, const char *name, const char *s);
// Read / write elements [start, start+n) of a 1-D dataset, converted from / to memory
// type mt (the dataset must already hold start+n elements).
int kd_h5_read_slab(hid_t ds, hid_t mt, unsigned long long start, unsigned long long n, void *buf);
int kd_h5_write_slab(hid_t ds, hid_t mt, unsigned long long start, unsigned long long n,
                     const void *buf);
