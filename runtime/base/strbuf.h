// strbuf.h: a growing string built by printf-style appends. Callers: the recipe printer
// and hashes (runtime/config), the sbatch script writer (runtime/run). Invariants: s is
// NULL until the first append, then always NUL-terminated with n bytes before the NUL;
// whoever builds it frees s with kd_strbuf_free (or takes it and frees it with free()).
#pragma once
#include <stddef.h>

typedef struct {
    char *s;
    size_t n, cap;
} kd_strbuf;

// Append printf(fmt, ...) to b, growing it as needed.
void kd_strbuf_printf(kd_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kd_strbuf_free(kd_strbuf *b);
