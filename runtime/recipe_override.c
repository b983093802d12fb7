// recipe_override.c: `--set KEY.PATH=VALUE` overrides, applied to the YAML tree before the
// schema walk so that override values are validated exactly like file values. Paths are
// dot-separated keys with optional [N] indices; inside a list of maps a plain key selects
// the element whose `name` equals it ("stages.kd.optim.lr" = "stages[3].optim.lr").
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/recipe_schema.h"

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

    kd_yaml_node *value = NULL;
    if (kd_yaml_parse(eq + 1, strlen(eq + 1), src, 0, &value, err)) return err->code;
    if (!value) {
        value = kd_yaml_new(KD_YAML_SCALAR, src, 0, 0);
        value->text = kd_strdup("");
        value->plain = 1;
    }

    if (!*root || kd_yaml_is_null(*root)) {
        kd_yaml_free(*root);
        *root = kd_yaml_new(KD_YAML_MAP, src, 0, 0);
    }
    kd_yaml_node **slot = root;
    char canon[600] = "";
    const char *p = keypath;
    while (*p) {
        // one segment: KEY or KEY[N][M]... (KEY may be empty only before an index)
        char seg[SEG_MAX];
        size_t n = strcspn(p, ".[");
        if (n >= sizeof seg) n = sizeof seg - 1;
        memcpy(seg, p, n);
        seg[n] = '\0';
        p += strcspn(p, ".[");
        kd_yaml_node *cur = *slot;
        if (seg[0]) {
            size_t cl = strlen(canon);
            if (cur->kind == KD_YAML_MAP) {
                snprintf(canon + cl, sizeof canon - cl, "%s%s", cl ? "." : "", seg);
                int idx = -1;
                if (!kd_yaml_map_get(cur, seg, &idx)) {
                    // a missing key: a map if more path follows, else the value itself
                    kd_yaml_node *fresh = *p ? kd_yaml_new(KD_YAML_MAP, src, 0, 0) : value;
                    if (!*p) value = NULL;
                    kd_yaml_map_add(cur, seg, 0, 0, fresh);
                    idx = cur->n - 1;
                }
                slot = &cur->pairs[idx].val;
            } else if (cur->kind == KD_YAML_SEQ) {
                int i = by_name(cur, seg);
                if (i < 0) {
                    char names[400];
                    names_of(cur, names, sizeof names);
                    kd_yaml_free(value);
                    return kd_fail(err, KD_EINPUT,
                                   "%s: %s: expected an index or a name (%s), found '%s'", src,
                                   canon, names[0] ? names : "none", seg);
                }
                snprintf(canon + cl, sizeof canon - cl, "[%d]", i);
                slot = &cur->items[i];
            } else {
                kd_yaml_free(value);
                return kd_fail(err, KD_EINPUT, "%s: %s: expected a map, found '%s'", src,
                               canon[0] ? canon : "(top)", cur->text);
            }
        }
        while (*p == '[') {
            char *end;
            long i = strtol(p + 1, &end, 10);
            cur = *slot;
            if (*end != ']' || !isdigit((unsigned char)p[1])) {
                kd_yaml_free(value);
                return kd_fail(err, KD_EINPUT, "%s: %s: expected [INDEX], found '%s'", src, canon,
                               p);
            }
            if (cur->kind != KD_YAML_SEQ || i >= cur->n) {
                kd_yaml_free(value);
                return kd_fail(err, KD_EINPUT, "%s: %s: expected a list with an element %ld", src,
                               canon, i);
            }
            size_t cl = strlen(canon);
            snprintf(canon + cl, sizeof canon - cl, "[%ld]", i);
            slot = &cur->items[i];
            p = end + 1;
        }
        if (*p == '.') {
            p++;
            if (!*p || *p == '.') {
                kd_yaml_free(value);
                return kd_fail(err, KD_EINPUT,
                               "%s: expected KEY.PATH=VALUE, found an empty key in '%s'", src,
                               keypath);
            }
            if (kd_yaml_is_null(*slot)) { // `key:` with no value: treat as an empty map
                kd_yaml_free(*slot);
                *slot = kd_yaml_new(KD_YAML_MAP, src, 0, 0);
            }
        } else if (*p) {
            kd_yaml_free(value);
            return kd_fail(err, KD_EINPUT, "%s: expected KEY.PATH=VALUE, found '%s'", src, keypath);
        }
    }
    if (value) { // the path named an existing node: replace it
        kd_yaml_free(*slot);
        *slot = value;
    }
    return KD_OK;
}
