// recipe_emit.c: prints a typed recipe back as canonical YAML (every key, defaults filled,
// schema order, strings double-quoted, floats in the shortest form that reads back to the
// same float), hashes it, writes it atomically, and computes the per-stage model hash.
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/recipe_schema.h"

// ---------------------------------------------------------------------------- strbuf

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

uint64_t kd_fnv1a64(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

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
    if (x == (float)(long long)x && fabsf(x) < 1e9f) { // whole numbers without exponent
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
    char tmp[KD_PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return kd_fail(err, KD_ERUNTIME, "%s: cannot create (%s)", tmp, strerror(errno));
    size_t n = strlen(r->resolved_yaml), done = 0;
    while (done < n) {
        ssize_t k = write(fd, r->resolved_yaml + done, n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return kd_fail(err, KD_ERUNTIME, "%s: write failed (%s)", tmp, strerror(e));
        }
        done += (size_t)k;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return kd_fail(err, KD_ERUNTIME, "%s: fsync/close failed (%s)", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return kd_fail(err, KD_ERUNTIME, "%s: rename to %s failed (%s)", tmp, path, strerror(e));
    }
    // make the rename itself durable
    char dir[KD_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int dfd = open(dir[0] ? dir : "/", O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return KD_OK;
}

// ---------------------------------------------------------------------------- model hash

static const kd_schema *sub_schema(const kd_schema *s, const char *key) {
    return kd_schema_field(s, key)->sub;
}

uint64_t kd_recipe_model_hash(const kd_recipe *r, int stage) {
    if (stage < 0 || stage >= r->n_stages) return 0;
    const kd_schema *model_s = sub_schema(&kd_recipe_schema, "model");
    const kd_schema *arch_s = sub_schema(model_s, "arch");
    const kd_schema *hyb_s = sub_schema(model_s, "hybrid");
    kd_strbuf b = {0};
    kd_strbuf_printf(&b, "seed: %llu\n", (unsigned long long)r->run.seed);
    if (r->has_teacher) {
        kd_strbuf_printf(&b, "teacher: ");
        emit_from(&b, &r->teacher.from);
        kd_strbuf_printf(&b, "\n");
    }
    // walk the chain of stages whose output this stage starts from, back to its origin
    int j = stage, guard = 0;
    while (j >= 0 && guard++ <= KD_MAX_STAGES) {
        const kd_stage_spec *s = &r->stages[j];
        kd_strbuf_printf(&b, "- stage %d: %s %s\n  data: ", j, s->name,
                         kd_stage_kind_name(s->kind));
        emit_str(&b, s->data);
        kd_strbuf_printf(&b, "\n  global: %d\n  seq_len: %d\n", s->batch.global, s->batch.seq_len);
        if (s->kind == KD_STAGE_INIT) {
            kd_strbuf_printf(&b, "  hybrid:\n");
            kd_schema_emit(&b, hyb_s, s->has_hybrid ? &s->hybrid : &r->model.hybrid, 4);
            // only a non-default conv init is hashed, so runs that never set it keep their hash
            if (s->init.conv != KD_INIT_CONV_IDENTITY)
                kd_strbuf_printf(&b, "  conv: %d\n", (int)s->init.conv);
        }
        if (s->kind == KD_STAGE_KD) {
            const kd_pseudo_labels *pl = &s->kd.pseudo_labels;
            kd_strbuf_printf(&b, "  pseudo_labels: %d ", pl->generate);
            emit_str(&b, pl->prompts);
            emit_str(&b, pl->out);
            kd_strbuf_printf(&b, "\n");
        }
        kd_from src = kd_recipe_stage_source(r, j);
        kd_strbuf_printf(&b, "  from: ");
        emit_from(&b, &src);
        kd_strbuf_printf(&b, "\n");
        j = src.kind == KD_FROM_STAGE ? kd_recipe_stage_index(r, src.ref) : -1;
        if (src.kind == KD_FROM_RANDOM) {
            kd_strbuf_printf(&b, "arch:\n");
            kd_schema_emit(&b, arch_s, &r->model.arch, 2);
        }
    }
    uint64_t h = kd_fnv1a64(b.s, b.n);
    free(b.s);
    return h;
}
