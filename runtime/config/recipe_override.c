// recipe_override.c: `--set KEY.PATH=VALUE` overrides, applied to the YAML tree before the
// schema walk so that override values are validated exactly like file values. Paths are
// dot-separated keys with optional [N] indices; inside a list of maps a plain key selects
// the element whose `name` equals it ("stages.kd.optim.lr" = "stages[3].optim.lr").
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config/recipe_schema.h"

#define SEG_MAX 128

// Find the element of a list of maps whose `name` is `name`; -1 if none.
static int by_name(const kd_yaml_node *seq, const char *name) {
    for (int i = 0; i < seq->n; i++) {
        const kd_yaml_node *v = kd_yaml_map_get(seq->items[i], "name", NULL);
        if (v && v->kind == KD_YAML_SCALAR && !strcmp(v->text, name)) return i;
    }
    return -1;
}

static void names_of(const kd_yaml_node *seq, char *buf, size_t n) {
    buf[0] = '\0';
    for (int i = 0; i < seq->n; i++) {
        const kd_yaml_node *v = kd_yaml_map_get(seq->items[i], "name", NULL);
        size_t l = strlen(buf);
        if (v && v->kind == KD_YAML_SCALAR)
            snprintf(buf + l, n - l, "%s%s", l ? ", " : "", v->text);
    }
}

// One override being applied: its value until it is placed, and the canonical path walked
// so far ("stages[3].optim"), for messages.
typedef struct {
    const char *src;
    const char *keypath;
    kd_yaml_node *value; // NULL once placed as a new key
    char canon[600];
} override_walk;

// Step from *slot into key `seg`: in a map (a missing key is created: a map if more path
// follows, else the value itself), or in a list of maps (the element named seg).
static int step_key(override_walk *w, kd_yaml_node ***slot, const char *seg, int last,
                    kd_error *err) {
    kd_yaml_node *cur = **slot;
    size_t cl = strlen(w->canon);
    if (cur->kind == KD_YAML_MAP) {
        snprintf(w->canon + cl, sizeof w->canon - cl, "%s%s", cl ? "." : "", seg);
        int idx = -1;
        if (!kd_yaml_map_get(cur, seg, &idx)) {
            kd_yaml_node *fresh = last ? w->value : kd_yaml_new(KD_YAML_MAP, w->src, 0, 0);
            if (last) w->value = NULL;
            kd_yaml_map_add(cur, seg, 0, 0, fresh);
            idx = cur->n - 1;
        }
        *slot = &cur->pairs[idx].val;
        return KD_OK;
    }
    if (cur->kind == KD_YAML_SEQ) {
        int i = by_name(cur, seg);
        if (i < 0) {
            char names[400];
            names_of(cur, names, sizeof names);
            return kd_fail(err, KD_EINPUT, "%s: %s: expected an index or a name (%s), found '%s'",
                           w->src, w->canon, names[0] ? names : "none", seg);
        }
        snprintf(w->canon + cl, sizeof w->canon - cl, "[%d]", i);
        *slot = &cur->items[i];
        return KD_OK;
    }
    return kd_fail(err, KD_EINPUT, "%s: %s: expected a map, found '%s'", w->src,
                   w->canon[0] ? w->canon : "(top)", cur->text);
}

// Step through the [N][M]... indices at *p (into list elements).
static int step_indices(override_walk *w, kd_yaml_node ***slot, const char **p, kd_error *err) {
    while (**p == '[') {
        char *end;
        long i = strtol(*p + 1, &end, 10);
        kd_yaml_node *cur = **slot;
        if (*end != ']' || !isdigit((unsigned char)(*p)[1]))
            return kd_fail(err, KD_EINPUT, "%s: %s: expected [INDEX], found '%s'", w->src,
                           w->canon, *p);
        if (cur->kind != KD_YAML_SEQ || i >= cur->n)
            return kd_fail(err, KD_EINPUT, "%s: %s: expected a list with an element %ld", w->src,
                           w->canon, i);
        size_t cl = strlen(w->canon);
        snprintf(w->canon + cl, sizeof w->canon - cl, "[%ld]", i);
        *slot = &cur->items[i];
        *p = end + 1;
    }
    return KD_OK;
}

// After a segment: a '.' and a non-empty key follow (a null value on the way becomes an
// empty map), or the path ends.
static int step_dot(override_walk *w, kd_yaml_node **slot, const char **p, kd_error *err) {
    if (**p == '.') {
        (*p)++;
        if (!**p || **p == '.')
            return kd_fail(err, KD_EINPUT,
                           "%s: expected KEY.PATH=VALUE, found an empty key in '%s'", w->src,
                           w->keypath);
        if (kd_yaml_is_null(*slot)) { // `key:` with no value: treat as an empty map
            kd_yaml_free(*slot);
            *slot = kd_yaml_new(KD_YAML_MAP, w->src, 0, 0);
        }
    } else if (**p) {
        return kd_fail(err, KD_EINPUT, "%s: expected KEY.PATH=VALUE, found '%s'", w->src,
                       w->keypath);
    }
    return KD_OK;
}

int kd_recipe_apply_override(kd_yaml_node **root, const char *expr, const char *src,
                             kd_error *err) {
    const char *eq = strchr(expr, '=');
    if (!eq || eq == expr)
        return kd_fail(err, KD_EINPUT, "%s: expected KEY.PATH=VALUE, found '%s'", src, expr);
    char keypath[512];
    size_t kl = (size_t)(eq - expr);
    if (kl >= sizeof keypath)
        return kd_fail(err, KD_EINPUT, "%s: expected a shorter key path", src);
    memcpy(keypath, expr, kl);
    keypath[kl] = '\0';

    override_walk w = {.src = src, .keypath = keypath};
    if (kd_yaml_parse(eq + 1, strlen(eq + 1), src, 0, &w.value, err)) return err->code;
    if (!w.value) {
        w.value = kd_yaml_new(KD_YAML_SCALAR, src, 0, 0);
        w.value->text = kd_strdup("");
        w.value->plain = 1;
    }
    if (!*root || kd_yaml_is_null(*root)) {
        kd_yaml_free(*root);
        *root = kd_yaml_new(KD_YAML_MAP, src, 0, 0);
    }
    kd_yaml_node **slot = root;
    const char *p = keypath;
    int rc = KD_OK;
    while (*p && rc == KD_OK) {
        // one segment: KEY or KEY[N][M]... (KEY may be empty only before an index)
        char seg[SEG_MAX];
        size_t n = strcspn(p, ".[");
        if (n >= sizeof seg) n = sizeof seg - 1;
        memcpy(seg, p, n);
        seg[n] = '\0';
        p += strcspn(p, ".[");
        if (seg[0]) rc = step_key(&w, &slot, seg, !*p, err);
        if (rc == KD_OK) rc = step_indices(&w, &slot, &p, err);
        if (rc == KD_OK) rc = step_dot(&w, slot, &p, err);
    }
    if (rc != KD_OK) {
        kd_yaml_free(w.value);
        return rc;
    }
    if (w.value) { // the path named an existing node: replace it
        kd_yaml_free(*slot);
        *slot = w.value;
    }
    return KD_OK;
}
