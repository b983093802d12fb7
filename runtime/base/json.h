// json.h: a small strict JSON (RFC 8259) parser into a tree of kd_json nodes, and a string
// escaper for writers. Callers: the Hugging Face config.json loader, safetensors headers
// and index files, JSONL data and metrics. Invariants: a parsed tree owns all its memory
// (one kd_json_free on the root releases it); strings are valid UTF-8 and NUL-terminated,
// with `len` counting bytes (a string may hold \u0000); object keys are unique; nesting is
// at most KD_JSON_MAX_DEPTH and input at most KD_JSON_MAX_INPUT bytes, so hostile input
// gets an error message, never a crash.
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "runtime/base/common.h"

#define KD_JSON_MAX_DEPTH 256
#define KD_JSON_MAX_INPUT ((size_t)1 << 30) // 1 GiB

typedef enum {
    KD_JSON_NULL,
    KD_JSON_BOOL,
    KD_JSON_NUMBER,
    KD_JSON_STRING,
    KD_JSON_ARRAY,
    KD_JSON_OBJECT,
} kd_json_type;

typedef struct kd_json {
    kd_json_type type;
    char *key;             // member name when this node is an object member, else NULL
    size_t key_len;        // bytes in key
    int boolean;           // BOOL: 0 or 1
    double number;         // NUMBER: value as a double
    int is_int;            // NUMBER: 1 when the value is an integer held exactly in `integer`
    int64_t integer;       // NUMBER: exact value when is_int
    char *str;             // STRING: UTF-8 bytes plus a terminating NUL
    size_t len;            // STRING: bytes in str (without the NUL)
    struct kd_json *items; // ARRAY/OBJECT: n children, in document order
    size_t n;
} kd_json;

// Parse len bytes of buf as one JSON value (whitespace around it allowed). `where` names
// the source in messages ("config.json", "data.jsonl:17"); NULL means "json". On success
// *out is the root (free with kd_json_free); on failure *out is NULL and err holds
// "WHERE: line L col C: expected X, found Y" with code KD_EINPUT.
int kd_json_parse(const char *buf, size_t len, const char *where, kd_json **out, kd_error *err);

// The member named key of an object, or NULL (absent, or obj is not an object).
const kd_json *kd_json_get(const kd_json *obj, const char *key);
// Element i of an array or object, or NULL when out of range or not a container.
const kd_json *kd_json_at(const kd_json *v, size_t i);
// "null", "boolean", "number", "string", "array", "object".
const char *kd_json_type_name(kd_json_type t);
void kd_json_free(kd_json *v);

// Write s (n bytes) as a quoted JSON string: '"' and '\\' escaped, control characters as
// \n, \t, ... or \u00XX; other bytes pass through (callers hand in UTF-8). Returns 0, or -1
// on a write error.
int kd_json_write_stringn(FILE *f, const char *s, size_t n);
// Same for a NUL-terminated string.
int kd_json_write_string(FILE *f, const char *s);
