// recipe_emit.c: prints a typed recipe back as canonical YAML (every key, defaults filled,
// schema order, strings double-quoted, floats in the shortest form that reads back to the
// same float) and writes it atomically; recipe_emit.h gives single values in the same text
// to the model hash (stages/kind.c).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/fs.h"
#include "runtime/config/recipe_emit.h"
#include "runtime/config/recipe_schema.h"

// ---------------------------------------------------------------------------- values

static void emit_str(kd_strbuf *b, const char *s) {
    kd_strbuf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            kd_strbuf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            kd_strbuf_printf(b, "\\x%02x", *p);
        else
            kd_strbuf_printf(b, "%c", *p);
    }
    kd_strbuf_printf(b, "\"");
}

// Shortest %g text that reads back to exactly x (at most 9 digits are ever needed).
static void emit_float(kd_strbuf *b, float x) {
    char t[48];
    // whole numbers without exponent (range first: a float past long long's range must not
    // be converted to it)
    if (fabsf(x) < 1e9f && x == (float)(long long)x) {
        kd_strbuf_printf(b, "%lld", (long long)x);
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, (double)x);
        if (strtof(t, NULL) == x) break;
    }
    kd_strbuf_printf(b, "%s", t);
}

static void emit_from(kd_strbuf *b, const kd_from *f) {
    kd_strbuf_printf(b, "{%s: ", kd_from_kind_keys[f->kind]);
    if (f->kind == KD_FROM_RANDOM || f->kind == KD_FROM_PREV)
        kd_strbuf_printf(b, "true");
    else
        emit_str(b, f->ref);
    kd_strbuf_printf(b, "}");
}

static int emitted(const kd_field *f, const void *base) {
    if (f->flags & (KD_F_HYB_SSM | KD_F_HYB_ATTN)) {
        int by_attn = ((const kd_hybrid *)base)->layers_by_attn;
        return (f->flags & KD_F_HYB_ATTN) ? by_attn : !by_attn;
    }
    if (f->type == KD_F_MAP && f->count_off)
        return *(const int *)((const char *)base + f->count_off);
    return 1;
}

void kd_schema_emit_field(kd_strbuf *b, const kd_field *f, const void *vbase, int indent) {
    const char *base = vbase;
    const char *p = base + f->off;
    if (!emitted(f, base)) return;
    kd_strbuf_printf(b, "%*s%s:", indent, "", f->key);
    switch (f->type) {
    case KD_F_INT:
        kd_strbuf_printf(b, " %d\n", *(const int *)p);
        break;
    case KD_F_U64:
        kd_strbuf_printf(b, " %llu\n", (unsigned long long)*(const uint64_t *)p);
        break;
    case KD_F_FLOAT:
        kd_strbuf_printf(b, " ");
        float x;
        memcpy(&x, p, sizeof x); // fields are addressed by byte offset
        emit_float(b, x);
        kd_strbuf_printf(b, "\n");
        break;
    case KD_F_BOOL:
        kd_strbuf_printf(b, " %s\n", *(const int *)p ? "true" : "false");
        break;
    case KD_F_ENUM:
        kd_strbuf_printf(b, " %s\n", f->names[*(const int *)p]);
        break;
    case KD_F_STR:
        kd_strbuf_printf(b, " ");
        emit_str(b, p);
        kd_strbuf_printf(b, "\n");
        break;
    case KD_F_INTS:
    case KD_F_STRS: {
        int n = *(const int *)(base + f->count_off);
        kd_strbuf_printf(b, " [");
        for (int i = 0; i < n; i++) {
            if (i) kd_strbuf_printf(b, ", ");
            if (f->type == KD_F_INTS)
                kd_strbuf_printf(b, "%d", ((const int *)p)[i]);
            else
                emit_str(b, p + (size_t)i * (size_t)f->item);
        }
        kd_strbuf_printf(b, "]\n");
        break;
    }
    case KD_F_FROM:
        kd_strbuf_printf(b, " ");
        emit_from(b, (const kd_from *)p);
        kd_strbuf_printf(b, "\n");
        break;
    case KD_F_MAP:
        kd_strbuf_printf(b, "\n");
        kd_schema_emit(b, f->sub, p, indent + 2);
        break;
    case KD_F_MAPS: {
        int n = *(const int *)(base + f->count_off);
        kd_strbuf_printf(b, "\n");
        for (int i = 0; i < n; i++) {
            // emit the element at indent+4, then turn its first indent+2 spaces into "- "
            size_t start = b->n;
            kd_schema_emit(b, f->sub, p + (size_t)i * (size_t)f->item, indent + 4);
            if (b->n >= start + (size_t)indent + 4) memcpy(b->s + start + indent + 2, "- ", 2);
        }
        break;
    }
    }
}

void kd_schema_emit(kd_strbuf *b, const kd_schema *s, const void *base, int indent) {
    unsigned kind_bit = ~0u;
    if (s->selector) {
        const kd_field *sf = kd_schema_field(s, s->selector);
        kind_bit = 1u << *(const int *)((const char *)base + sf->off);
    }
    for (int i = 0; i < s->n; i++) {
        const kd_field *f = &s->fields[i];
        if (!f->kinds || (f->kinds & kind_bit)) kd_schema_emit_field(b, f, base, indent);
    }
}

// ---------------------------------------------------------------------------- file

int kd_recipe_write_resolved(const kd_recipe *r, const char *path, kd_error *err) {
    if (!r->resolved_yaml)
        return kd_fail(err, KD_EINTERNAL, "%s: recipe has no resolved text", path);
    return kd_write_file_atomic(path, r->resolved_yaml, strlen(r->resolved_yaml), err);
}

// ---------------------------------------------------------------------------- values (recipe_emit.h)

void kd_recipe_emit_str(kd_strbuf *b, const char *s) {
    emit_str(b, s);
}

void kd_recipe_emit_from(kd_strbuf *b, const kd_from *f) {
    emit_from(b, f);
}

static const kd_schema *model_schema(const char *key) {
    return kd_schema_field(kd_schema_field(&kd_recipe_schema, "model")->sub, key)->sub;
}

void kd_recipe_emit_arch(kd_strbuf *b, const kd_arch *a, int indent) {
    kd_schema_emit(b, model_schema("arch"), a, indent);
}

void kd_recipe_emit_hybrid(kd_strbuf *b, const kd_hybrid *h, int indent) {
    kd_schema_emit(b, model_schema("hybrid"), h, indent);
}
