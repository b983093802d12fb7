// fs.h: the file-system helpers every layer shares: mkdir -p, reading a whole file,
// writing a whole file atomically, comparing a file with a buffer, fsync of a path.
// Callers: the run directory (runtime/run), checkpoints and model files (runtime/store),
// the recipe loader, stages that write caches, data tools. Invariants: an atomic write
// leaves either the old file or the complete new one (never a partial file, never its
// temporary); the helpers that return an errno let each caller keep its own message.
#pragma once
#include <stddef.h>

#include "runtime/base/common.h"

// Creates path and its missing parents (mkdir -p; `mode` as for mkdir(2) for the new
// ones). An existing directory is fine. Returns 0 or an errno: ENOTDIR when path or one of
// its parents exists but is not a directory. `at` (may be NULL) gets the prefix of path
// that failed, for messages.
int kd_mkdir_p(const char *path, unsigned mode, char *at, size_t at_len);

// kd_mkdir_p that fails with `code` and "PREFIX: exists and is not a directory" or
// "PREFIX: cannot create directory: REASON".
int kd_mkdir_p_or_fail(const char *path, unsigned mode, int code, kd_error *err);

// What kd_read_file could not do (the errno goes to *sys_err).
typedef enum {
    KD_READ_OK = 0,
    KD_READ_EOPEN, // fopen failed: missing, unreadable
    KD_READ_EIO,   // a read failed (e.g. the path is a directory)
    KD_READ_EBIG,  // the file holds `limit` bytes or more (*sys_err = EFBIG)
} kd_read_status;

// Reads all of path into a new NUL-terminated buffer (*out, caller frees; *len counts the
// bytes without the NUL). limit > 0 refuses files of limit bytes or more; 0: no limit.
// On failure *out is NULL and *sys_err (may be NULL) holds the errno.
kd_read_status kd_read_file(const char *path, size_t limit, char **out, size_t *len, int *sys_err);

// 1 if path can be read and holds exactly the n bytes of data, else 0.
int kd_file_equals(const char *path, const void *data, size_t n);

// Writes all n bytes of buf to fd (retrying short writes and EINTR). Returns 0 or an errno
// (EIO when write(2) makes no progress); errno is left as the failed write set it.
int kd_write_all(int fd, const void *buf, size_t n);

// Writes n bytes to path atomically: path.tmp-<pid>, fsync, rename, fsync of the
// directory. KD_ERUNTIME naming the path and strerror on failure (no file left behind).
int kd_write_file_atomic(const char *path, const void *data, size_t n, kd_error *err);

// fsync of a file (is_dir 0) or a directory (is_dir 1). Returns 0 or an errno.
int kd_fsync_path(const char *path, int is_dir);

// Best-effort fsync of the directory holding path, so that a rename into it is durable.
void kd_fsync_parent(const char *path);
