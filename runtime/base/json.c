// json.c: strict RFC 8259 parser (recursive descent, depth-limited) and string escaper.
// Line and column of an error are recovered by rescanning the input, so the hot path
// only moves a pointer.
#include "runtime/base/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *start, *p, *end;
    const char *where;
    kd_error *err;
    int failed;
} parser;

// ------------------------------------------------------------------------------ errors

// Describe what sits at q for "found ...": a printable char, a byte, or end of input.
static void describe(const parser *ps, const unsigned char *q, char *buf, size_t n) {
    if (q >= ps->end) {
        snprintf(buf, n, "end of input");
    } else if (*q >= 0x20 && *q < 0x7f) {
        snprintf(buf, n, "'%c'", *q);
    } else if (*q == '\n') {
        snprintf(buf, n, "newline");
    } else {
        snprintf(buf, n, "byte 0x%02x", *q);
    }
}

// Report "expected X, found <what is at q>" at q's line and column (1-based, bytes).
static int fail_at(parser *ps, const unsigned char *q, const char *expected, const char *found) {
    if (ps->failed) return KD_EINPUT;
    ps->failed = 1;
    size_t line = 1, col = 1;
    for (const unsigned char *r = ps->start; r < q && r < ps->end; r++) {
        if (*r == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char what[64];
    if (!found) {
        describe(ps, q, what, sizeof what);
        found = what;
    }
    return kd_fail(ps->err, KD_EINPUT, "%s: line %zu col %zu: expected %s, found %s", ps->where,
                   line, col, expected, found);
}

// ------------------------------------------------------------------------------ tree

static void free_node(kd_json *v) {
    free(v->key);
    free(v->str);
    for (size_t i = 0; i < v->n; i++) free_node(&v->items[i]);
    free(v->items);
}

void kd_json_free(kd_json *v) {
    if (!v) return;
    free_node(v);
    free(v);
}

const kd_json *kd_json_get(const kd_json *obj, const char *key) {
    if (!obj || obj->type != KD_JSON_OBJECT || !key) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < obj->n; i++) {
        const kd_json *m = &obj->items[i];
        if (m->key_len == kl && memcmp(m->key, key, kl) == 0) return m;
    }
    return NULL;
}

const kd_json *kd_json_at(const kd_json *v, size_t i) {
    if (!v || (v->type != KD_JSON_ARRAY && v->type != KD_JSON_OBJECT) || i >= v->n) return NULL;
    return &v->items[i];
}

const char *kd_json_type_name(kd_json_type t) {
    switch (t) {
    case KD_JSON_NULL:
        return "null";
    case KD_JSON_BOOL:
        return "boolean";
    case KD_JSON_NUMBER:
        return "number";
    case KD_JSON_STRING:
        return "string";
    case KD_JSON_ARRAY:
        return "array";
    case KD_JSON_OBJECT:
        return "object";
    }
    return "?";
}

// ------------------------------------------------------------------------------ lexing

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    const unsigned char *q = ps->p;
    for (size_t i = 0; i < n; i++, q++) {
        if (q >= ps->end || *q != (unsigned char)word[i]) {
            char exp[32];
            snprintf(exp, sizeof exp, "'%s'", word);
            return fail_at(ps, q, exp, NULL);
        }
    }
    ps->p = q;
    return KD_OK;
}

static int is_digit(const unsigned char *q, const unsigned char *end) {
    return q < end && *q >= '0' && *q <= '9';
}

static int parse_number(parser *ps, kd_json *v) {
    const unsigned char *s = ps->p, *q = ps->p;
    int integral = 1;
    if (q < ps->end && *q == '-') q++;
    if (!is_digit(q, ps->end)) return fail_at(ps, q, "a digit", NULL);
    if (*q == '0') {
        q++;
        if (is_digit(q, ps->end))
            return fail_at(ps, q, "'.', 'e' or end of number after a leading 0", NULL);
    } else {
        while (is_digit(q, ps->end)) q++;
    }
    if (q < ps->end && *q == '.') {
        integral = 0;
        q++;
        if (!is_digit(q, ps->end)) return fail_at(ps, q, "a digit after '.'", NULL);
        while (is_digit(q, ps->end)) q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        integral = 0;
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (!is_digit(q, ps->end)) return fail_at(ps, q, "a digit in the exponent", NULL);
        while (is_digit(q, ps->end)) q++;
    }
    // strtod/strtoll need a NUL-terminated copy; the grammar above already validated it.
    size_t n = (size_t)(q - s);
    char small[64];
    char *tmp = n < sizeof small ? small : kd_malloc(n + 1);
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    double d = strtod(tmp, NULL);
    int range = errno == ERANGE && isinf(d);
    v->type = KD_JSON_NUMBER;
    v->number = d;
    if (integral) {
        errno = 0;
        long long ll = strtoll(tmp, NULL, 10);
        if (errno != ERANGE) {
            v->is_int = 1;
            v->integer = (int64_t)ll;
        }
    } else if (!range && d == floor(d) && fabs(d) <= 9007199254740992.0) {
        v->is_int = 1; // 1.0, 2e3: integral and exact in a double
        v->integer = (int64_t)d;
    }
    if (tmp != small) free(tmp);
    if (range) return fail_at(ps, s, "a number within double range", "an overflowing number");
    ps->p = q;
    return KD_OK;
}

static int hex4(parser *ps, const unsigned char *q, unsigned *out) {
    unsigned u = 0;
    for (int i = 0; i < 4; i++, q++) {
        if (q >= ps->end) return fail_at(ps, q, "4 hex digits after \\u", NULL);
        unsigned c = *q, d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return fail_at(ps, q, "4 hex digits after \\u", NULL);
        u = u * 16 + d;
    }
    *out = u;
    return KD_OK;
}

// Length of the valid UTF-8 sequence at q (1..4), or 0 when it is malformed (overlong,
// surrogate, beyond U+10FFFF, truncated).
static size_t utf8_len(const unsigned char *q, const unsigned char *end) {
    unsigned c = q[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c == 0xE0)
        n = 3, lo = 0xA0;
    else if (c == 0xED)
        n = 3, hi = 0x9F; // no UTF-16 surrogates
    else if (c >= 0xE1 && c <= 0xEF)
        n = 3;
    else if (c == 0xF0)
        n = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        n = 4;
    else if (c == 0xF4)
        n = 4, hi = 0x8F; // <= U+10FFFF
    else
        return 0;
    if ((size_t)(end - q) < n) return 0;
    if (q[1] < lo || q[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (q[i] < 0x80 || q[i] > 0xBF) return 0;
    return n;
}

static size_t put_utf8(unsigned cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// A \u escape at q (pointing at the 'u'), with its low surrogate when it is a high one, as
// UTF-8 appended to buf at *n. esc points at the backslash (for messages). Moves *qp past it.
static int parse_unicode_escape(parser *ps, const unsigned char *esc, const unsigned char **qp,
                                char *buf, size_t *n) {
    const unsigned char *q = *qp;
    unsigned cp = 0, lo = 0;
    if (hex4(ps, q + 1, &cp)) return KD_EINPUT;
    q += 5;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail_at(ps, esc, "a high surrogate before a low one", "a lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (q + 1 >= ps->end || q[0] != '\\' || q[1] != 'u')
            return fail_at(ps, q, "\\u low surrogate after a high surrogate", NULL);
        if (hex4(ps, q + 2, &lo)) return KD_EINPUT;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail_at(ps, q, "\\u low surrogate (DC00-DFFF)", "another code point");
        q += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    *n += put_utf8(cp, buf + *n);
    *qp = q;
    return KD_OK;
}

// The escape at *qp (pointing at the backslash), decoded into buf at *n; moves *qp past it.
static int parse_escape(parser *ps, const unsigned char **qp, char *buf, size_t *n) {
    const unsigned char *esc = *qp, *q = esc + 1;
    if (q >= ps->end) return fail_at(ps, q, "an escape character after '\\'", NULL);
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *k = *q ? strchr(from, *q) : NULL;
    if (k) {
        buf[(*n)++] = to[k - from];
        *qp = q + 1;
        return KD_OK;
    }
    if (*q == 'u') {
        *qp = q;
        return parse_unicode_escape(ps, esc, qp, buf, n);
    }
    return fail_at(ps, q, "one of \" \\ / b f n r t u after '\\'", NULL);
}

// Parse a string at ps->p (which is '"') into a fresh buffer. The decoded form is never
// longer than the source (an escape of 6 or 12 bytes yields at most 4), so one buffer of
// the remaining input's size bounds it; it is sized to the closing quote first.
static int parse_string(parser *ps, char **out, size_t *out_len) {
    const unsigned char *q = ps->p + 1;
    const unsigned char *close = q;
    while (close < ps->end && *close != '"')
        close += (*close == '\\' && close + 1 < ps->end) ? 2 : 1;
    char *buf = kd_malloc((size_t)(close - q) + 1);
    size_t n = 0;
    int rc = KD_OK;
    while (rc == KD_OK) {
        if (q >= ps->end) {
            rc = fail_at(ps, q, "'\"' closing the string", NULL);
            break;
        }
        unsigned c = *q;
        if (c == '"') break;
        if (c < 0x20) {
            rc = fail_at(ps, q, "an escaped control character in the string", NULL);
        } else if (c == '\\') {
            rc = parse_escape(ps, &q, buf, &n);
        } else {
            size_t k = utf8_len(q, ps->end);
            if (!k) {
                rc = fail_at(ps, q, "valid UTF-8", NULL);
                break;
            }
            memcpy(buf + n, q, k);
            n += k;
            q += k;
        }
    }
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    ps->p = q + 1;
    *out = buf;
    *out_len = n;
    return KD_OK;
}

// ------------------------------------------------------------------------------ values

static int parse_value(parser *ps, kd_json *v, int depth);

static int cmp_keys(const void *a, const void *b) {
    const kd_json *x = *(const kd_json *const *)a, *y = *(const kd_json *const *)b;
    size_t m = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, m);
    if (c) return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

// Reject duplicate keys (RFC 8259 leaves them undefined; a checkpoint header with two
// entries of one name must not silently pick one). Sort pointers, compare neighbours.
static int check_unique(parser *ps, const kd_json *obj, const unsigned char *at) {
    if (obj->n < 2) return KD_OK;
    const kd_json **idx = kd_malloc(obj->n * sizeof *idx);
    for (size_t i = 0; i < obj->n; i++) idx[i] = &obj->items[i];
    qsort(idx, obj->n, sizeof *idx, cmp_keys);
    int rc = KD_OK;
    for (size_t i = 1; i < obj->n && !rc; i++) {
        if (cmp_keys(&idx[i - 1], &idx[i]) == 0) {
            char found[128];
            snprintf(found, sizeof found, "key \"%.80s\" twice", idx[i]->key);
            rc = fail_at(ps, at, "unique object keys", found);
        }
    }
    free(idx);
    return rc;
}

// Grow a child array; capacity doubles, so appends are amortised O(1).
static kd_json *push_child(kd_json *v, size_t *cap) {
    if (v->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        v->items = kd_realloc(v->items, *cap * sizeof *v->items);
    }
    kd_json *c = &v->items[v->n++];
    memset(c, 0, sizeof *c);
    return c;
}

static int parse_container(parser *ps, kd_json *v, int depth, int is_obj) {
    const unsigned char *open = ps->p;
    if (depth >= KD_JSON_MAX_DEPTH) {
        char exp[64];
        snprintf(exp, sizeof exp, "nesting depth at most %d", KD_JSON_MAX_DEPTH);
        return fail_at(ps, open, exp, "deeper nesting");
    }
    v->type = is_obj ? KD_JSON_OBJECT : KD_JSON_ARRAY;
    char close = is_obj ? '}' : ']';
    size_t cap = 0;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return KD_OK;
    }
    for (;;) {
        kd_json *c = push_child(v, &cap);
        if (is_obj) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"')
                return fail_at(ps, ps->p, "'\"' starting an object key", NULL);
            if (parse_string(ps, &c->key, &c->key_len)) return KD_EINPUT;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail_at(ps, ps->p, "':' after an object key", NULL);
            ps->p++;
        }
        if (parse_value(ps, c, depth + 1)) return KD_EINPUT;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            break;
        }
        return fail_at(ps, ps->p, is_obj ? "',' or '}' in an object" : "',' or ']' in an array",
                       NULL);
    }
    return is_obj ? check_unique(ps, v, open) : KD_OK;
}

static int parse_value(parser *ps, kd_json *v, int depth) {
    skip_ws(ps);
    if (ps->p >= ps->end) return fail_at(ps, ps->p, "a value", NULL);
    switch (*ps->p) {
    case '{':
        return parse_container(ps, v, depth, 1);
    case '[':
        return parse_container(ps, v, depth, 0);
    case '"':
        v->type = KD_JSON_STRING;
        return parse_string(ps, &v->str, &v->len);
    case 't':
        v->type = KD_JSON_BOOL;
        v->boolean = 1;
        return literal(ps, "true");
    case 'f':
        v->type = KD_JSON_BOOL;
        v->boolean = 0;
        return literal(ps, "false");
    case 'n':
        v->type = KD_JSON_NULL;
        return literal(ps, "null");
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps, v);
        return fail_at(ps, ps->p, "a value (object, array, string, number, true, false, null)",
                       NULL);
    }
}

int kd_json_parse(const char *buf, size_t len, const char *where, kd_json **out, kd_error *err) {
    *out = NULL;
    if (!where) where = "json";
    if (len > KD_JSON_MAX_INPUT)
        return kd_fail(err, KD_EINPUT, "%s: expected at most %zu bytes of JSON, found %zu", where,
                       KD_JSON_MAX_INPUT, len);
    parser ps = {(const unsigned char *)buf,
                 (const unsigned char *)buf,
                 (const unsigned char *)buf + len,
                 where,
                 err,
                 0};
    kd_json *root = kd_calloc(1, sizeof *root);
    int rc = parse_value(&ps, root, 0);
    if (!rc) {
        skip_ws(&ps);
        if (ps.p < ps.end) rc = fail_at(&ps, ps.p, "end of input after the value", NULL);
    }
    if (rc) {
        kd_json_free(root);
        return KD_EINPUT;
    }
    *out = root;
    return KD_OK;
}

// ------------------------------------------------------------------------------ writer

int kd_json_write_stringn(FILE *f, const char *s, size_t n) {
    if (fputc('"', f) == EOF) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int r;
        switch (c) {
        case '"':
            r = fputs("\\\"", f);
            break;
        case '\\':
            r = fputs("\\\\", f);
            break;
        case '\n':
            r = fputs("\\n", f);
            break;
        case '\r':
            r = fputs("\\r", f);
            break;
        case '\t':
            r = fputs("\\t", f);
            break;
        case '\b':
            r = fputs("\\b", f);
            break;
        case '\f':
            r = fputs("\\f", f);
            break;
        default:
            r = c < 0x20 ? fprintf(f, "\\u%04x", c) : fputc(c, f);
            break;
        }
        if (r < 0) return -1;
    }
    return fputc('"', f) == EOF ? -1 : 0;
}

int kd_json_write_string(FILE *f, const char *s) {
    return kd_json_write_stringn(f, s, strlen(s));
}
