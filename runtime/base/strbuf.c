// strbuf.c: the growing string of strbuf.h.
#include "runtime/base/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/base/common.h"

void kd_strbuf_printf(kd_strbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->s && (size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        b->cap = b->cap * 2 + (size_t)k + 256;
        b->s = kd_realloc(b->s, b->cap);
    }
}

void kd_strbuf_free(kd_strbuf *b) {
    free(b->s);
    b->s = NULL;
    b->n = b->cap = 0;
}
