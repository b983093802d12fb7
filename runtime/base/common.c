// common.c: errors, checked allocation, clock and string helpers shared by all modules.
#include "runtime/base/common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// Messages are one line even when they quote input (a YAML key spanning lines, a file
// name with a newline): control characters become \n, \r, \t or \xHH, in place.
static void one_line(char *msg, size_t cap) {
    char out[sizeof((kd_error *)0)->msg];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p && o + 5 < sizeof out; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            out[o++] = (char)*p;
        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            out[o++] = '\\';
            out[o++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
        } else {
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", *p);
        }
    }
    out[o] = '\0';
    snprintf(msg, cap, "%s", out);
}

int kd_fail(kd_error *err, int code, const char *fmt, ...) {
    if (err && err->code == KD_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        one_line(err->msg, sizeof err->msg);
        err->code = code;
    }
    return code;
}

void kd_error_prefix(kd_error *err, const char *fmt, ...) {
    if (!err || err->code == KD_OK) return;
    char pre[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s%s", pre, old);
    one_line(err->msg, sizeof err->msg);
}

void kd_error_clear(kd_error *err) {
    if (!err) return;
    err->code = KD_OK;
    err->msg[0] = '\0';
}

_Noreturn void kd_panic(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kdtrain: %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    abort();
}

void *kd_malloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) kd_panic(file, line, "out of memory allocating %zu bytes", n);
    return p;
}

void *kd_calloc_at(size_t n, size_t sz, const char *file, int line) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) kd_panic(file, line, "out of memory allocating %zu x %zu bytes", n, sz);
    return p;
}

void *kd_realloc_at(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) kd_panic(file, line, "out of memory reallocating %zu bytes", n);
    return q;
}

char *kd_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = kd_malloc(n);
    memcpy(d, s, n);
    return d;
}

double kd_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int kd_str_endswith(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int kd_glob_match(const char *p, const char *s) {
    // iterative '*' matching with one backtrack point: linear in practice
    const char *star = NULL, *ss = NULL;
    while (*s) {
        if (*p == '?' || *p == *s) { p++; s++; }
        else if (*p == '*') { star = p++; ss = s; }
        else if (star) { p = star + 1; s = ++ss; }
        else return 0;
    }
    while (*p == '*') p++;
    return *p == '\0';
}
