// recipe_walk.c: applies a schema table (recipe_schema.c) to a YAML tree: fills defaults,
// converts and range-checks every value, rejects unknown and duplicate keys (with a
// did-you-mean), reports missing required keys, and records where each value was written.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config/recipe_schema.h"

#define PATH_LEN 512

// ---------------------------------------------------------------------------- positions

static void pm_add(kd_posmap *m, const char *path, const char *src, int line, int col) {
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        m->path = kd_realloc(m->path, (size_t)m->cap * sizeof *m->path);
        m->src = kd_realloc(m->src, (size_t)m->cap * sizeof *m->src);
        m->line = kd_realloc(m->line, (size_t)m->cap * sizeof *m->line);
        m->col = kd_realloc(m->col, (size_t)m->cap * sizeof *m->col);
    }
    m->path[m->n] = kd_strdup(path);
    m->src[m->n] = src;
    m->line[m->n] = line;
    m->col[m->n] = col;
    m->n++;
}

void kd_posmap_free(kd_posmap *m) {
    for (int i = 0; i < m->n; i++) free(m->path[i]);
    free(m->path);
    free(m->src);
    free(m->line);
    free(m->col);
    memset(m, 0, sizeof *m);
}

int kd_posmap_find(const kd_posmap *m, const char *path) {
    for (int i = m->n - 1; i >= 0; i--)
        if (strcmp(m->path[i], path) == 0) return i;
    return -1;
}

// ---------------------------------------------------------------------------- helpers

int kd_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static void join(char *out, const char *path, const char *key) {
    if (path[0])
        snprintf(out, PATH_LEN, "%s.%s", path, key);
    else
        snprintf(out, PATH_LEN, "%s", key);
}

// A short printable description of what a node holds, for "found ..." messages.
static void found(const kd_yaml_node *v, char *buf, size_t n) {
    if (v->kind == KD_YAML_SEQ) {
        if (!v->n)
            snprintf(buf, n, "an empty list");
        else
            snprintf(buf, n, "a list of %d item%s", v->n, v->n == 1 ? "" : "s");
        return;
    }
    if (v->kind == KD_YAML_MAP) {
        snprintf(buf, n, "a map");
        return;
    }
    char t[72];
    size_t k = 0;
    for (const char *p = v->text; *p && k < 64; p++) t[k++] = isprint((unsigned char)*p) ? *p : '?';
    t[k] = '\0';
    snprintf(buf, n, "'%s%s'", t, strlen(v->text) > 64 ? "..." : "");
}

static int fail_at(kd_error *err, const kd_yaml_node *v, const char *path, const char *expected) {
    char w[1100], f[96];
    kd_yaml_where(v->src, v->line, v->col, w, sizeof w);
    found(v, f, sizeof f);
    return kd_fail(err, KD_EINPUT, "%s: %s: expected %s, found %s", w, path, expected, f);
}

static void names_list(const char *const *names, char *buf, size_t n) {
    buf[0] = '\0';
    for (int i = 0; names[i]; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", i ? "|" : "", names[i]);
    }
}

static void range_text(const kd_field *f, const char *noun, char *buf, size_t n) {
    int has_lo = isfinite(f->lo) && !(f->lo == 0 && f->hi == 0);
    int has_hi = isfinite(f->hi) && f->hi < 1e9 && !(f->lo == 0 && f->hi == 0);
    if (has_lo && has_hi)
        snprintf(buf, n, "%s in %s%g, %g]", noun, (f->flags & KD_F_LO_OPEN) ? "(" : "[", f->lo,
                 f->hi);
    else if (has_lo)
        snprintf(buf, n, "%s %s %g", noun, (f->flags & KD_F_LO_OPEN) ? ">" : ">=", f->lo);
    else
        snprintf(buf, n, "%s", noun);
}

static int in_range(const kd_field *f, double x) {
    if (f->lo == 0 && f->hi == 0) return 1;
    if ((f->flags & KD_F_LO_OPEN) ? !(x > f->lo) : !(x >= f->lo)) return 0;
    return x <= f->hi;
}

static int parse_int(const kd_field *f, const kd_yaml_node *v, const char *path, int *out,
                     kd_error *err) {
    char want[128];
    range_text(f, "an integer", want, sizeof want);
    if (v->kind != KD_YAML_SCALAR) return fail_at(err, v, path, want);
    if ((f->flags & KD_F_AUTO0) && strcmp(v->text, "auto") == 0) {
        *out = 0;
        return KD_OK;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v->text, &end, 10);
    if (!v->text[0] || *end || errno || !in_range(f, (double)x)) return fail_at(err, v, path, want);
    *out = (int)x;
    return KD_OK;
}

static int parse_bool(const kd_yaml_node *v, const char *path, int *out, kd_error *err) {
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", NULL};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", NULL};
    if (v->kind == KD_YAML_SCALAR) {
        for (int i = 0; yes[i]; i++)
            if (!strcmp(v->text, yes[i])) {
                *out = 1;
                return KD_OK;
            }
        for (int i = 0; no[i]; i++)
            if (!strcmp(v->text, no[i])) {
                *out = 0;
                return KD_OK;
            }
    }
    return fail_at(err, v, path, "true or false");
}

static int parse_str(const kd_field *f, const kd_yaml_node *v, const char *path, char *out, int cap,
                     kd_error *err) {
    char want[160];
    if (f->names) {
        char l[128];
        names_list(f->names, l, sizeof l);
        snprintf(want, sizeof want, "one of %s", l);
    } else if (f->flags & KD_F_IDENT) {
        snprintf(want, sizeof want, "a name of 1 to %d characters [A-Za-z0-9_-]", cap - 1);
    } else {
        snprintf(want, sizeof want, "a %sstring of at most %d characters",
                 (f->flags & KD_F_NONEMPTY) ? "non-empty " : "", cap - 1);
    }
    if (v->kind != KD_YAML_SCALAR || strlen(v->text) >= (size_t)cap)
        return fail_at(err, v, path, want);
    if ((f->flags & (KD_F_NONEMPTY | KD_F_IDENT)) && !v->text[0])
        return fail_at(err, v, path, want);
    if (f->flags & KD_F_IDENT)
        for (const char *p = v->text; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                return fail_at(err, v, path, want);
    if (f->names) {
        int ok = 0;
        for (int i = 0; f->names[i]; i++) ok |= !strcmp(f->names[i], v->text);
        if (!ok) return fail_at(err, v, path, want);
    }
    memcpy(out, v->text, strlen(v->text) + 1);
    return KD_OK;
}

static int parse_from(const kd_field *f, const kd_yaml_node *v, const char *path, kd_from *out,
                      kd_posmap *pm, kd_error *err) {
    const char *want = (f->flags & KD_F_NO_PREV)
                           ? "a map with one key: stage|checkpoint|hf|random"
                           : "a map with one key: stage|checkpoint|hf|random|prev";
    if (v->kind != KD_YAML_MAP || v->n != 1) return fail_at(err, v, path, want);
    const kd_yaml_pair *p = &v->pairs[0];
    int kind = -1;
    for (int i = 0; kd_from_kind_keys[i]; i++)
        if (!strcmp(p->key, kd_from_kind_keys[i])) kind = i;
    if (kind < 0 || (kind == KD_FROM_PREV && (f->flags & KD_F_NO_PREV))) {
        kd_yaml_node k = {
            .kind = KD_YAML_SCALAR, .src = v->src, .line = p->line, .col = p->col, .text = p->key};
        return fail_at(err, &k, path, want);
    }
    char sub[PATH_LEN];
    join(sub, path, p->key);
    pm_add(pm, sub, p->val->src, p->val->line, p->val->col);
    out->kind = (kd_from_kind)kind;
    out->ref[0] = '\0';
    if (kind == KD_FROM_RANDOM || kind == KD_FROM_PREV) {
        int b = 0;
        if (parse_bool(p->val, sub, &b, err)) return err->code;
        if (!b) return fail_at(err, p->val, sub, "true (leave the key out for the default)");
        return KD_OK;
    }
    kd_field sf = {.flags = KD_F_NONEMPTY};
    if (kind == KD_FROM_STAGE) sf.flags |= KD_F_IDENT;
    return parse_str(&sf, p->val, sub, out->ref, kind == KD_FROM_STAGE ? KD_NAME_MAX : KD_PATH_MAX,
                     err);
}

// ---------------------------------------------------------------------------- fields

static void set_defaults(const kd_schema *s, char *base, unsigned kind_bit);

static void set_default(const kd_field *f, char *base) {
    char *p = base + f->off;
    switch (f->type) {
    case KD_F_INT:
    case KD_F_BOOL:
    case KD_F_ENUM:
        *(int *)p = (int)f->def;
        break;
    case KD_F_U64:
        *(uint64_t *)p = (uint64_t)f->def;
        break;
    case KD_F_FLOAT: {
        float x = (float)f->def;
        memcpy(p, &x, sizeof x);
    } break;
    case KD_F_STR:
        snprintf(p, (size_t)f->cap, "%s", f->sdef ? f->sdef : "");
        break;
    case KD_F_INTS:
    case KD_F_STRS:
    case KD_F_MAPS:
        *(int *)(base + f->count_off) = 0;
        break;
    case KD_F_FROM:
        ((kd_from *)p)->kind = (kd_from_kind)(int)f->def;
        ((kd_from *)p)->ref[0] = '\0';
        break;
    case KD_F_MAP:
        if (f->count_off) *(int *)(base + f->count_off) = 0;
        set_defaults(f->sub, p, 0);
        break;
    }
}

static int allowed(const kd_field *f, unsigned kind_bit) {
    return !f->kinds || (f->kinds & kind_bit);
}

// The selector field (already parsed) keeps its value.
static void set_defaults(const kd_schema *s, char *base, unsigned kind_bit) {
    for (int i = 0; i < s->n; i++) {
        const kd_field *f = &s->fields[i];
        if (s->selector && !strcmp(f->key, s->selector)) continue;
        if (allowed(f, kind_bit)) set_default(f, base);
    }
}

static int parse_list(const kd_field *f, char *base, const kd_yaml_node *v, const char *path,
                      kd_posmap *pm, kd_error *err) {
    char want[160], item_path[PATH_LEN];
    snprintf(want, sizeof want, "a list of at most %d %s", f->cap,
             f->type == KD_F_INTS ? "integers" : "strings");
    if (v->kind != KD_YAML_SEQ || v->n > f->cap) return fail_at(err, v, path, want);
    int *count = (int *)(base + f->count_off);
    for (int i = 0; i < v->n; i++) {
        snprintf(item_path, sizeof item_path, "%s[%d]", path, i);
        const kd_yaml_node *it = v->items[i];
        pm_add(pm, item_path, it->src, it->line, it->col);
        if (f->type == KD_F_INTS) {
            int *arr = (int *)(base + f->off);
            if (parse_int(f, it, item_path, &arr[i], err)) return err->code;
            for (int j = 0; j < i && (f->flags & KD_F_UNIQUE); j++)
                if (arr[j] == arr[i])
                    return fail_at(err, it, item_path, "no duplicates in the list");
        } else {
            kd_field sf = {.flags = f->flags};
            if (parse_str(&sf, it, item_path, base + f->off + (size_t)i * (size_t)f->item, f->item,
                          err))
                return err->code;
        }
    }
    *count = v->n;
    return KD_OK;
}

static int parse_field(const kd_field *f, char *base, const kd_yaml_node *v, const char *path,
                       kd_posmap *pm, kd_error *err) {
    char *p = base + f->off;
    char want[160];
    pm_add(pm, path, v->src, v->line, v->col);
    switch (f->type) {
    case KD_F_INT:
        return parse_int(f, v, path, (int *)p, err);
    case KD_F_BOOL:
        return parse_bool(v, path, (int *)p, err);
    case KD_F_U64: {
        char *end;
        errno = 0;
        if (v->kind != KD_YAML_SCALAR || !isdigit((unsigned char)v->text[0]))
            return fail_at(err, v, path, "an integer >= 0");
        unsigned long long x = strtoull(v->text, &end, 10);
        if (*end || errno) return fail_at(err, v, path, "an integer in [0, 2^64)");
        *(uint64_t *)p = (uint64_t)x;
        return KD_OK;
    }
    case KD_F_FLOAT: {
        range_text(f, "a number", want, sizeof want);
        if (v->kind != KD_YAML_SCALAR) return fail_at(err, v, path, want);
        char *end;
        errno = 0;
        double x = strtod(v->text, &end);
        if (!v->text[0] || *end || !isfinite(x) || fabs(x) > 3e38 || !in_range(f, x))
            return fail_at(err, v, path, want);
        float xf = (float)x;
        memcpy(p, &xf, sizeof xf); // fields are addressed by byte offset
        return KD_OK;
    }
    case KD_F_STR:
        return parse_str(f, v, path, p, f->cap, err);
    case KD_F_ENUM: {
        char l[128];
        names_list(f->names, l, sizeof l);
        snprintf(want, sizeof want, "one of %s", l);
        if (v->kind == KD_YAML_SCALAR)
            for (int i = 0; f->names[i]; i++)
                if (!strcmp(f->names[i], v->text)) {
                    *(int *)p = i;
                    return KD_OK;
                }
        return fail_at(err, v, path, want);
    }
    case KD_F_INTS:
    case KD_F_STRS:
        return parse_list(f, base, v, path, pm, err);
    case KD_F_FROM:
        return parse_from(f, v, path, (kd_from *)p, pm, err);
    case KD_F_MAP:
        if (f->count_off) *(int *)(base + f->count_off) = 1;
        return kd_schema_walk(f->sub, p, v, path, pm, err);
    case KD_F_MAPS: {
        snprintf(want, sizeof want, "a list of %g to %d maps", f->lo, f->cap);
        if (v->kind != KD_YAML_SEQ || v->n < (int)f->lo || v->n > f->cap)
            return fail_at(err, v, path, want);
        char ip[PATH_LEN];
        for (int i = 0; i < v->n; i++) {
            snprintf(ip, sizeof ip, "%s[%d]", path, i);
            pm_add(pm, ip, v->items[i]->src, v->items[i]->line, v->items[i]->col);
            if (kd_schema_walk(f->sub, p + (size_t)i * (size_t)f->item, v->items[i], ip, pm, err))
                return err->code;
        }
        *(int *)(base + f->count_off) = v->n;
        return KD_OK;
    }
    }
    return kd_fail(err, KD_EINTERNAL, "%s: unknown field type", path);
}

// ---------------------------------------------------------------------------- maps

static const kd_field *lookup(const kd_schema *s, const char *key, unsigned kind_bit) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->fields[i].key, key) && allowed(&s->fields[i], kind_bit))
            return &s->fields[i];
    return NULL;
}

const kd_field *kd_schema_field(const kd_schema *s, const char *key) {
    return lookup(s, key, ~0u);
}

static int unknown_key(const kd_schema *s, const kd_yaml_node *map, const kd_yaml_pair *p,
                       const char *path, unsigned kind_bit, kd_error *err) {
    char w[1100];
    kd_yaml_where(map->src, p->line, p->col, w, sizeof w);
    const kd_field *other = kind_bit ? lookup(s, p->key, ~0u) : NULL;
    if (other) {
        char kinds[160] = "";
        for (int k = 0; kd_stage_kind_names[k]; k++) {
            if (!lookup(s, p->key, 1u << k)) continue;
            size_t l = strlen(kinds);
            snprintf(kinds + l, sizeof kinds - l, "%s%s", l ? ", " : "", kd_stage_kind_names[k]);
        }
        int kind = 0;
        while (!(kind_bit & (1u << kind))) kind++;
        return kd_fail(err, KD_EINPUT, "%s: %s: key not allowed in a '%s' stage (only in: %s)", w,
                       path, kd_stage_kind_names[kind], kinds);
    }
    const char *best = NULL;
    int bd = 99;
    for (int i = 0; i < s->n; i++) {
        if (!allowed(&s->fields[i], kind_bit)) continue;
        int d = kd_edit_distance(p->key, s->fields[i].key);
        if (d < bd) {
            bd = d;
            best = s->fields[i].key;
        }
    }
    int close = best && bd <= 2 && bd < (int)strlen(p->key);
    return kd_fail(err, KD_EINPUT, "%s: %s: unknown key%s%s%s", w, path,
                   close ? " (did you mean '" : "", close ? best : "", close ? "'?)" : "");
}

// `at` is the map (or the null value standing for it); NULL when there is no node at all.
static int missing(const kd_yaml_node *at, const char *path, const char *key, kd_error *err) {
    char w[1100];
    if (at)
        kd_yaml_where(at->src, at->line, at->col, w, sizeof w);
    else
        snprintf(w, sizeof w, "(recipe)");
    return kd_fail(err, KD_EINPUT, "%s: %s: missing required key '%s'", w, path[0] ? path : "(top)",
                   key);
}

int kd_schema_walk(const kd_schema *s, void *vbase, const kd_yaml_node *node, const char *path,
                   kd_posmap *pm, kd_error *err) {
    char *base = vbase;
    char kp[PATH_LEN];
    const kd_yaml_node *at = node;
    if (kd_yaml_is_null(node)) node = NULL;
    if (node && node->kind != KD_YAML_MAP)
        return fail_at(err, node, path[0] ? path : "(top)", "a map");
    unsigned kind_bit = 0;
    if (node) {
        for (int j = 1; j < node->n; j++)
            for (int i = 0; i < j; i++)
                if (!strcmp(node->pairs[i].key, node->pairs[j].key)) {
                    char w[1100];
                    kd_yaml_where(node->src, node->pairs[j].line, node->pairs[j].col, w, sizeof w);
                    join(kp, path, node->pairs[j].key);
                    return kd_fail(err, KD_EINPUT, "%s: %s: duplicate key (first at line %d)", w,
                                   kp, node->pairs[i].line);
                }
    }
    if (s->selector) {
        const kd_field *sf = lookup(s, s->selector, 0);
        KD_ASSERT(sf && sf->type == KD_F_ENUM);
        const kd_yaml_node *v = kd_yaml_map_get(node, s->selector, NULL);
        if (!v || kd_yaml_is_null(v)) return missing(at, path, sf->key, err);
        join(kp, path, sf->key);
        if (parse_field(sf, base, v, kp, pm, err)) return err->code;
        kind_bit = 1u << *(int *)(base + sf->off);
    }
    set_defaults(s, base, kind_bit);
    for (int i = 0; node && i < node->n; i++) {
        const kd_yaml_pair *p = &node->pairs[i];
        if (s->x_keys && !strncmp(p->key, "x-", 2)) continue;
        join(kp, path, p->key);
        const kd_field *f = lookup(s, p->key, kind_bit);
        if (!f) return unknown_key(s, node, p, kp, kind_bit, err);
        if (kd_yaml_is_null(p->val)) continue; // null = the default
        if (parse_field(f, base, p->val, kp, pm, err)) return err->code;
    }
    for (int i = 0; i < s->n; i++) {
        const kd_field *f = &s->fields[i];
        if (!(f->flags & KD_F_REQUIRED) || !allowed(f, kind_bit)) continue;
        const kd_yaml_node *v = kd_yaml_map_get(node, f->key, NULL);
        if (!v || kd_yaml_is_null(v)) return missing(at, path, f->key, err);
    }
    return KD_OK;
}
