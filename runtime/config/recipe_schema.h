// recipe_schema.h (private to runtime/recipe*.c): the table-driven recipe schema. Each
// kd_field maps one YAML key to a struct field (type, offset, default, range, enum names,
// allowed stage kinds); recipe_schema.c holds the tables, recipe_walk.c applies them to a
// YAML tree, recipe_emit.c prints a struct back as canonical YAML from the same tables.
// Adding a recipe key = one line in a table (+ the struct field in recipe.h).
#pragma once
#include "runtime/config/recipe.h"
#include "runtime/base/strbuf.h"
#include "runtime/base/yaml_tree.h"

typedef enum {
    KD_F_INT = 0, // int
    KD_F_U64,     // uint64_t
    KD_F_FLOAT,   // float
    KD_F_BOOL,    // int 0/1
    KD_F_STR,     // char[cap]; optional choices in `names`
    KD_F_ENUM,    // int-sized enum; `names` indexed by value
    KD_F_INTS,    // int[cap] + int count at count_off
    KD_F_STRS,    // char[cap][item] + int count at count_off
    KD_F_FROM,    // kd_from: {stage|checkpoint|hf: S} or {random|prev: true}
    KD_F_MAP,     // nested struct described by `sub`; int has-flag at count_off if != 0
    KD_F_MAPS,    // list of structs of `item` bytes; count at count_off
} kd_ftype;

enum {
    KD_F_REQUIRED = 1u << 0, // must be present (for the kinds it applies to)
    KD_F_LO_OPEN = 1u << 1,  // value must be > lo rather than >= lo
    KD_F_AUTO0 = 1u << 2,    // the word `auto` is accepted and stored as 0
    KD_F_NONEMPTY = 1u << 3, // strings: "" is not allowed
    KD_F_IDENT = 1u << 4,    // strings: [A-Za-z0-9_-]+
    KD_F_UNIQUE = 1u << 5,   // int lists: no duplicates
    KD_F_NO_PREV = 1u << 6,  // from: {prev: true} not allowed here
    KD_F_HYB_SSM = 1u << 7,  // emitted only when the hybrid's layers_by_attn == 0
    KD_F_HYB_ATTN = 1u << 8, // emitted only when the hybrid's layers_by_attn == 1
};

typedef struct kd_schema kd_schema;

typedef struct {
    const char *key;
    kd_ftype type;
    size_t off;       // offset in the struct this table describes
    size_t count_off; // INTS/STRS/MAPS count; MAP has-flag (0: none)
    int cap;          // STR bytes; INTS/STRS/MAPS max items
    int item;         // STRS bytes per item; MAPS bytes per element
    double def;       // numeric default (INT/U64/FLOAT/BOOL/ENUM value)
    const char *sdef; // STR default
    double lo, hi;    // inclusive range unless KD_F_LO_OPEN; lo == hi == 0: none
    unsigned flags;
    const char *const *names; // ENUM names (NULL-terminated) or STR choices
    const kd_schema *sub;     // MAP / MAPS element
    unsigned kinds;           // bitmask over the selector's values; 0 = always allowed
} kd_field;

struct kd_schema {
    const kd_field *fields;
    int n;
    const char *selector; // key of an ENUM field whose value picks the allowed fields
    int x_keys;           // 1: keys starting with "x-" are ignored (homes for YAML anchors)
};

extern const kd_schema kd_recipe_schema; // the whole recipe document
extern const char *const kd_stage_kind_names[];
extern const char *const kd_from_kind_keys[];

// Where each walked key/value was written, by canonical key path ("stages[1].optim.lr").
typedef struct {
    int n, cap;
    char **path;
    const char **src;
    int *line, *col;
} kd_posmap;

void kd_posmap_free(kd_posmap *m);
// Index of `path` or -1.
int kd_posmap_find(const kd_posmap *m, const char *path);

// Fill `base` (described by s) with defaults, then with the values in `node` (a map, or
// NULL for "absent"). Records positions in pm. Errors are KD_EINPUT with "where: path: ...".
int kd_schema_walk(const kd_schema *s, void *base, const kd_yaml_node *node, const char *path,
                   kd_posmap *pm, kd_error *err);

// Append canonical YAML of `base` (described by s) at `indent` spaces. The string grows.
void kd_schema_emit(kd_strbuf *b, const kd_schema *s, const void *base, int indent);
// Emit a single field of `base` (key: value). Used by the model hash to pick fields.
void kd_schema_emit_field(kd_strbuf *b, const kd_field *f, const void *base, int indent);
const kd_field *kd_schema_field(const kd_schema *s, const char *key);
// Levenshtein distance, for did-you-mean.
int kd_edit_distance(const char *a, const char *b);

// Apply one "KEY.PATH=VALUE" override (recipe_override.c) to *root, creating missing maps
// and keys; VALUE is YAML (a scalar or a flow list/map). Nodes it creates carry `src`
// ("--set EXPR"), so later validation errors name the override.
int kd_recipe_apply_override(kd_yaml_node **root, const char *expr, const char *src, kd_error *err);
