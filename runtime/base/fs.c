// fs.c: mkdir -p, whole-file reads and atomic writes, file comparison and fsync (fs.h).
#include "runtime/base/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------- directories

// mkdir of one prefix; an existing entry must be a directory.
static int mkdir_one(const char *dir, unsigned mode) {
    if (mkdir(dir, (mode_t)mode) == 0) return 0;
    if (errno != EEXIST) return errno;
    struct stat st;
    if (stat(dir, &st) != 0) return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

int kd_mkdir_p(const char *path, unsigned mode, char *at, size_t at_len) {
    char buf[4096];
    int e = !path[0] ? ENOENT : strlen(path) >= sizeof buf ? ENAMETOOLONG : 0;
    if (e) {
        if (at && at_len) snprintf(at, at_len, "%s", path);
        return e;
    }
    snprintf(buf, sizeof buf, "%s", path);
    // every prefix ending before a '/' (except the root's), then the whole path
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char keep = *p;
        *p = '\0';
        e = mkdir_one(buf, mode);
        if (e) {
            if (at && at_len) snprintf(at, at_len, "%s", buf);
            return e;
        }
        *p = keep;
        if (!keep) return 0;
    }
}

int kd_mkdir_p_or_fail(const char *path, unsigned mode, int code, kd_error *err) {
    char at[4096];
    int e = kd_mkdir_p(path, mode, at, sizeof at);
    if (e == ENOTDIR) return kd_fail(err, code, "%s: exists and is not a directory", at);
    if (e) return kd_fail(err, code, "%s: cannot create directory: %s", at, strerror(e));
    return KD_OK;
}

// ---------------------------------------------------------------------------- reading

kd_read_status kd_read_file(const char *path, size_t limit, char **out, size_t *len, int *sys_err) {
    int ignored;
    if (!sys_err) sys_err = &ignored;
    *out = NULL;
    if (len) *len = 0;
    *sys_err = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *sys_err = errno;
        return KD_READ_EOPEN;
    }
    // never hold more than `limit` bytes: reaching it is already the refusal
    size_t cap = limit && limit < 65536 ? limit : 65536, n = 0;
    char *buf = kd_malloc(cap + 1);
    kd_read_status st = KD_READ_OK;
    for (;;) {
        size_t want = cap - n, got = fread(buf + n, 1, want, f);
        n += got;
        if (limit && n >= limit) {
            st = KD_READ_EBIG;
            *sys_err = EFBIG;
            break;
        }
        if (got < want) {
            if (ferror(f)) {
                st = KD_READ_EIO;
                *sys_err = errno ? errno : EIO;
            }
            break;
        }
        cap = limit && cap * 2 > limit ? limit : cap * 2;
        buf = kd_realloc(buf, cap + 1);
    }
    fclose(f);
    if (st != KD_READ_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return KD_READ_OK;
}

int kd_file_equals(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char *buf = kd_malloc(n + 1);
    size_t got = fread(buf, 1, n + 1, f); // one byte more: a longer file differs
    fclose(f);
    int eq = got == n && memcmp(buf, data, n) == 0;
    free(buf);
    return eq;
}

// ---------------------------------------------------------------------------- writing

int kd_fsync_path(const char *path, int is_dir) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
    if (fd < 0) return errno;
    int e = fsync(fd) != 0 ? errno : 0;
    close(fd);
    return e;
}

void kd_fsync_parent(const char *path) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0'; // "/file": the root
    else if (slash)
        *slash = '\0';
    (void)kd_fsync_path(slash ? dir : ".", 1);
}

int kd_write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno ? errno : EIO;
        if (w == 0) return EIO;
        p += w, n -= (size_t)w;
    }
    return 0;
}

int kd_write_file_atomic(const char *path, const void *data, size_t n, kd_error *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", tmp, strerror(errno));
    int saved = kd_write_all(fd, data, n), bad = saved != 0;
    if (fsync(fd) != 0 && !bad) bad = 1, saved = errno;
    if (close(fd) != 0 && !bad) bad = 1, saved = errno;
    if (!bad && rename(tmp, path) != 0) bad = 1, saved = errno;
    if (bad) {
        unlink(tmp);
        return kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", path,
                       strerror(saved ? saved : EIO));
    }
    kd_fsync_parent(path); // make the rename durable
    return KD_OK;
}
