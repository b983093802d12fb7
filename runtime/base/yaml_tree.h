// yaml_tree.h: a small YAML node tree (scalar / sequence / map) built from libyaml events,
// keeping the source, line and column of every node and map key so that later checks can
// point at the exact spot. Used by the recipe loader (runtime/config/recipe*.c) and for
// chat template files (data/chat.c). Anchors and aliases are expanded by copying; map keys
// are scalars; duplicate keys are kept (the schema walk reports them with their key path).
// Lines and columns are 1-based; line 0 means the node came from a command-line override
// and `src` names it.
#pragma once
#include "runtime/base/common.h"

typedef enum { KD_YAML_SCALAR = 0, KD_YAML_SEQ, KD_YAML_MAP } kd_yaml_kind;

typedef struct kd_yaml_node kd_yaml_node;

typedef struct {
    char *key;
    int line, col; // position of the key
    kd_yaml_node *val;
} kd_yaml_pair;

struct kd_yaml_node {
    kd_yaml_kind kind;
    const char *src;      // file name or "--set EXPR"; not owned, outlives the tree
    int line, col;        // 1-based; 0 for override values
    char *text;           // KD_YAML_SCALAR: the value ("" for empty)
    int plain;            // KD_YAML_SCALAR: 1 if written unquoted
    int n, cap;           // items in seq / pairs in map
    kd_yaml_node **items; // KD_YAML_SEQ
    kd_yaml_pair *pairs;  // KD_YAML_MAP
};

// Parse a whole YAML text (one document) into *out. `src` names it in messages and must
// outlive the tree. positions=0 stores line 0 everywhere (override values). Syntax errors
// give "SRC:LINE:COL: YAML syntax error: PROBLEM". An empty document gives *out = NULL.
int kd_yaml_parse(const char *text, size_t len, const char *src, int positions, kd_yaml_node **out,
                  kd_error *err);
// The same for an open file (positions kept); `src` names it. Used by data/chat.c.
int kd_yaml_parse_file(FILE *f, const char *src, kd_yaml_node **out, kd_error *err);
void kd_yaml_free(kd_yaml_node *n);

kd_yaml_node *kd_yaml_new(kd_yaml_kind kind, const char *src, int line, int col);
void kd_yaml_map_add(kd_yaml_node *map, const char *key, int line, int col, kd_yaml_node *val);
// First value for `key` in map, or NULL. `*index` (if not NULL) gets the pair index.
kd_yaml_node *kd_yaml_map_get(const kd_yaml_node *map, const char *key, int *index);
// 1 if the scalar is YAML null (plain "", "~", "null", "Null", "NULL").
int kd_yaml_is_null(const kd_yaml_node *n);
// Write "SRC:LINE:COL" (or "SRC" for override nodes) into buf.
void kd_yaml_where(const char *src, int line, int col, char *buf, size_t n);
