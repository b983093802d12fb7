// safetensors_write.c: writing safetensors files (safetensors.h): an F32 file with a
// padded JSON header, written atomically (PATH.tmp.<pid>, fsync, rename, fsync of the
// directory). Reading is in safetensors.c.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/base/fs.h"
#include "runtime/base/json.h"
#include "runtime/store/safetensors.h"

// Build the JSON header for t[0..n) and meta; returns a malloc'd buffer padded with spaces
// to a multiple of 8 bytes (so the data section starts aligned).
static char *build_header(const kd_safetensors_entry *t, size_t n, const char *const *meta,
                          size_t n_meta, size_t *len) {
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    KD_ASSERT(f);
    fputc('{', f);
    int first = 1;
    if (n_meta) {
        fputs("\"__metadata__\":{", f);
        for (size_t k = 0; k < n_meta; k++) {
            if (k) fputc(',', f);
            kd_json_write_string(f, meta[2 * k]);
            fputc(':', f);
            kd_json_write_string(f, meta[2 * k + 1]);
        }
        fputc('}', f);
        first = 0;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (uint64_t)t[i].shape[d];
        if (!first) fputc(',', f);
        first = 0;
        kd_json_write_string(f, t[i].name);
        fputs(":{\"dtype\":\"F32\",\"shape\":[", f);
        for (int d = 0; d < t[i].ndim; d++)
            fprintf(f, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        fprintf(f, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                (unsigned long long)(off + 4 * numel));
        off += 4 * numel;
    }
    fputc('}', f);
    while (ftell(f) % 8) fputc(' ', f);
    fclose(f);
    *len = sz;
    return buf;
}

int kd_safetensors_write_f32(const char *path, const kd_safetensors_entry *t, size_t n,
                             const char *const *meta, size_t n_meta, kd_error *err) {
    for (size_t i = 0; i < n; i++) {
        if (t[i].ndim < 0 || t[i].ndim > KD_SAFETENSORS_MAX_DIMS || !t[i].name ||
            strcmp(t[i].name, "__metadata__") == 0)
            return kd_fail(err, KD_EINTERNAL, "%s: tensor %zu: expected a name and 0..%d dims",
                           path, i, KD_SAFETENSORS_MAX_DIMS);
        for (int d = 0; d < t[i].ndim; d++)
            if (t[i].shape[d] < 0)
                return kd_fail(err, KD_EINTERNAL, "%s: tensor '%s': negative size", path,
                               t[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0)
                return kd_fail(err, KD_EINTERNAL, "%s: expected unique names, found '%s' twice",
                               path, t[i].name);
    }
    size_t hlen;
    char *hdr = build_header(t, n, meta, n_meta, &hlen);
    size_t tl = strlen(path) + 32;
    char *tmp = kd_malloc(tl);
    snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    int rc = KD_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = kd_fail(err, KD_ERUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad = kd_write_all(fd, lenbuf, 8) || kd_write_all(fd, hdr, hlen);
    for (size_t i = 0; i < n && !bad; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (uint64_t)t[i].shape[d];
        bad = numel && kd_write_all(fd, t[i].data, (size_t)numel * 4);
    }
    bad = bad || fsync(fd) != 0;
    bad = close(fd) != 0 || bad;
    if (bad || rename(tmp, path) != 0) {
        rc = kd_fail(err, KD_ERUNTIME, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    kd_fsync_parent(path); // make the rename itself durable
out:
    free(tmp);
    free(hdr);
    return rc;
}
