// yaml_tree.c: builds the position-keeping YAML node tree from libyaml's event stream.
#include "runtime/base/yaml_tree.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

// Expanding aliases copies subtrees; this bound stops "billion laughs" style inputs.
#define KD_YAML_MAX_NODES 100000  // a recipe has hundreds; caps alias bombs early
// Recipes nest a handful of levels. Deeper input is refused as soon as it is seen: libyaml
// slows down quadratically with flow nesting, and freeing and copying trees recurse.
#define KD_YAML_MAX_DEPTH 64

// ---------------------------------------------------------------------------- nodes

kd_yaml_node *kd_yaml_new(kd_yaml_kind kind, const char *src, int line, int col) {
    kd_yaml_node *n = kd_calloc(1, sizeof *n);
    n->kind = kind;
    n->src = src;
    n->line = line;
    n->col = col;
    return n;
}

void kd_yaml_free(kd_yaml_node *n) {
    if (!n) return;
    free(n->text);
    for (int i = 0; i < n->n; i++) {
        if (n->kind == KD_YAML_SEQ) kd_yaml_free(n->items[i]);
        if (n->kind == KD_YAML_MAP) {
            free(n->pairs[i].key);
            kd_yaml_free(n->pairs[i].val);
        }
    }
    free(n->items);
    free(n->pairs);
    free(n);
}

static void grow(kd_yaml_node *n) {
    if (n->n < n->cap) return;
    n->cap = n->cap ? 2 * n->cap : 4;
    if (n->kind == KD_YAML_SEQ)
        n->items = kd_realloc(n->items, (size_t)n->cap * sizeof *n->items);
    else
        n->pairs = kd_realloc(n->pairs, (size_t)n->cap * sizeof *n->pairs);
}

static void seq_add(kd_yaml_node *seq, kd_yaml_node *v) {
    grow(seq);
    seq->items[seq->n++] = v;
}

void kd_yaml_map_add(kd_yaml_node *map, const char *key, int line, int col, kd_yaml_node *val) {
    grow(map);
    kd_yaml_pair *p = &map->pairs[map->n++];
    p->key = kd_strdup(key);
    p->line = line;
    p->col = col;
    p->val = val;
}

kd_yaml_node *kd_yaml_map_get(const kd_yaml_node *map, const char *key, int *index) {
    if (!map || map->kind != KD_YAML_MAP) return NULL;
    for (int i = 0; i < map->n; i++) {
        if (strcmp(map->pairs[i].key, key) == 0) {
            if (index) *index = i;
            return map->pairs[i].val;
        }
    }
    return NULL;
}

int kd_yaml_is_null(const kd_yaml_node *n) {
    if (!n || n->kind != KD_YAML_SCALAR || !n->plain) return 0;
    const char *t = n->text;
    return !t[0] || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
           !strcmp(t, "NULL");
}

void kd_yaml_where(const char *src, int line, int col, char *buf, size_t n) {
    if (line > 0)
        snprintf(buf, n, "%s:%d:%d", src, line, col);
    else
        snprintf(buf, n, "%s", src);
}

static kd_yaml_node *copy_tree(const kd_yaml_node *s, long *budget) {
    if (--*budget < 0) return NULL;
    kd_yaml_node *d = kd_yaml_new(s->kind, s->src, s->line, s->col);
    d->plain = s->plain;
    if (s->text) d->text = kd_strdup(s->text);
    for (int i = 0; i < s->n; i++) {
        if (s->kind == KD_YAML_SEQ) {
            kd_yaml_node *c = copy_tree(s->items[i], budget);
            if (!c) {
                kd_yaml_free(d);
                return NULL;
            }
            seq_add(d, c);
        } else {
            kd_yaml_node *c = copy_tree(s->pairs[i].val, budget);
            if (!c) {
                kd_yaml_free(d);
                return NULL;
            }
            kd_yaml_map_add(d, s->pairs[i].key, s->pairs[i].line, s->pairs[i].col, c);
        }
    }
    return d;
}

// ---------------------------------------------------------------------------- builder

// One open collection on the builder stack; for maps, `key` holds a key awaiting its value.
typedef struct {
    kd_yaml_node *node;
    char *anchor;
    kd_yaml_node *key;
} frame;

typedef struct {
    const char *src;
    int positions;
    frame *stack;
    int depth, cap;
    kd_yaml_node *root;
    int n_anchors;
    char **anchor_names;
    kd_yaml_node **anchor_nodes; // not owned: they live in the tree
    long budget;
} builder;

static void remember_anchor(builder *b, const char *name, kd_yaml_node *n) {
    b->anchor_names = kd_realloc(b->anchor_names, (size_t)(b->n_anchors + 1) * sizeof(char *));
    b->anchor_nodes = kd_realloc(b->anchor_nodes, (size_t)(b->n_anchors + 1) * sizeof(void *));
    b->anchor_names[b->n_anchors] = kd_strdup(name);
    b->anchor_nodes[b->n_anchors++] = n;
}

static kd_yaml_node *find_anchor(builder *b, const char *name) {
    for (int i = b->n_anchors - 1; i >= 0; i--)
        if (strcmp(b->anchor_names[i], name) == 0) return b->anchor_nodes[i];
    return NULL;
}

// Attach a finished node to the open collection (or make it the root). Returns KD_OK or
// KD_EINPUT for a non-scalar map key.
static int attach(builder *b, kd_yaml_node *n, kd_error *err) {
    if (b->depth == 0) {
        b->root = n;
        return KD_OK;
    }
    frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == KD_YAML_SEQ) {
        seq_add(f->node, n);
    } else if (!f->key) {
        if (n->kind != KD_YAML_SCALAR) {
            char w[1200];
            kd_yaml_where(b->src, n->line, n->col, w, sizeof w);
            kd_yaml_free(n);
            return kd_fail(err, KD_EINPUT, "%s: expected a plain map key, found a collection", w);
        }
        f->key = n;
    } else {
        kd_yaml_map_add(f->node, f->key->text, f->key->line, f->key->col, n);
        kd_yaml_free(f->key);
        f->key = NULL;
    }
    return KD_OK;
}

static void builder_free(builder *b) {
    for (int i = 0; i < b->depth; i++) {
        kd_yaml_free(b->stack[i].node);
        kd_yaml_free(b->stack[i].key);
        free(b->stack[i].anchor);
    }
    free(b->stack);
    for (int i = 0; i < b->n_anchors; i++) free(b->anchor_names[i]);
    free(b->anchor_names);
    free(b->anchor_nodes);
}

static int handle_event(builder *b, yaml_event_t *ev, kd_error *err) {
    int line = b->positions ? (int)ev->start_mark.line + 1 : 0;
    int col = b->positions ? (int)ev->start_mark.column + 1 : 0;
    char w[1200];
    kd_yaml_where(b->src, line, col, w, sizeof w);
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        kd_yaml_node *n = kd_yaml_new(KD_YAML_SCALAR, b->src, line, col);
        n->text = kd_malloc(ev->data.scalar.length + 1);
        memcpy(n->text, ev->data.scalar.value, ev->data.scalar.length);
        n->text[ev->data.scalar.length] = '\0';
        if (strlen(n->text) != ev->data.scalar.length) {
            kd_yaml_free(n);
            return kd_fail(err, KD_EINPUT, "%s: expected text, found a NUL character", w);
        }
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        // a key scalar is freed once its pair is stored, so only values may carry anchors
        int is_key = b->depth > 0 && b->stack[b->depth - 1].node->kind == KD_YAML_MAP &&
                     !b->stack[b->depth - 1].key;
        if (ev->data.scalar.anchor && !is_key)
            remember_anchor(b, (const char *)ev->data.scalar.anchor, n);
        b->budget--;
        return attach(b, n, err);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_seq = ev->type == YAML_SEQUENCE_START_EVENT;
        const yaml_char_t *anchor =
            is_seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
        if (b->depth >= KD_YAML_MAX_DEPTH)
            return kd_fail(err, KD_EINPUT,
                           "%s: expected at most %d nested lists and maps, found more", w,
                           KD_YAML_MAX_DEPTH);
        if (b->depth == b->cap) {
            b->cap = b->cap ? 2 * b->cap : 16;
            b->stack = kd_realloc(b->stack, (size_t)b->cap * sizeof *b->stack);
        }
        frame *f = &b->stack[b->depth++];
        f->node = kd_yaml_new(is_seq ? KD_YAML_SEQ : KD_YAML_MAP, b->src, line, col);
        f->anchor = anchor ? kd_strdup((const char *)anchor) : NULL;
        f->key = NULL;
        b->budget--;
        return KD_OK;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        frame f = b->stack[--b->depth];
        kd_yaml_free(f.key); // cannot be set at a balanced end; defensive
        if (f.anchor) {
            remember_anchor(b, f.anchor, f.node);
            free(f.anchor);
        }
        return attach(b, f.node, err);
    }
    case YAML_ALIAS_EVENT: {
        kd_yaml_node *target = find_anchor(b, (const char *)ev->data.alias.anchor);
        if (!target)
            return kd_fail(err, KD_EINPUT, "%s: expected a known anchor, found alias '*%s'", w,
                           (const char *)ev->data.alias.anchor);
        kd_yaml_node *c = copy_tree(target, &b->budget);
        if (!c)
            return kd_fail(err, KD_EINPUT, "%s: expected at most %d nodes after expanding aliases",
                           w, KD_YAML_MAX_NODES);
        return attach(b, c, err);
    }
    case YAML_DOCUMENT_START_EVENT:
        if (b->root)
            return kd_fail(err, KD_EINPUT, "%s: expected one YAML document, found a second", w);
        return KD_OK;
    default:
        return KD_OK;
    }
}

// The tree of the document parser p has as input (text or file). Deletes p.
static int parse(yaml_parser_t *p, const char *src, int positions, kd_yaml_node **out,
                 kd_error *err) {
    builder b = {.src = src, .positions = positions, .budget = KD_YAML_MAX_NODES};
    int rc = KD_OK, done = 0;
    while (!done && rc == KD_OK) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev)) {
            int line = positions ? (int)p->problem_mark.line + 1 : 0;
            int col = positions ? (int)p->problem_mark.column + 1 : 0;
            char w[1200];
            kd_yaml_where(src, line, col, w, sizeof w);
            rc = kd_fail(err, KD_EINPUT, "%s: YAML syntax error: %s%s%s", w,
                         p->problem ? p->problem : "unknown problem", p->context ? " " : "",
                         p->context ? p->context : "");
            break;
        }
        rc = handle_event(&b, &ev, err);
        if (rc == KD_OK && b.budget < 0) {
            rc = kd_fail(err, KD_EINPUT, "%s: expected at most %d YAML nodes", src,
                         KD_YAML_MAX_NODES);
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(p);
    builder_free(&b);
    if (rc != KD_OK) {
        kd_yaml_free(b.root);
        return rc;
    }
    *out = b.root;
    return KD_OK;
}

int kd_yaml_parse(const char *text, size_t len, const char *src, int positions, kd_yaml_node **out,
                  kd_error *err) {
    *out = NULL;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return kd_fail(err, KD_EINTERNAL, "%s: libyaml init failed", src);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    return parse(&p, src, positions, out, err);
}

int kd_yaml_parse_file(FILE *f, const char *src, kd_yaml_node **out, kd_error *err) {
    *out = NULL;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return kd_fail(err, KD_EINTERNAL, "%s: libyaml init failed", src);
    yaml_parser_set_input_file(&p, f);
    return parse(&p, src, 1, out, err);
}
