// test_json.c: the JSON parser accepts valid documents with the right tree, rejects each
// error class with a message naming line/col and what was expected, survives hostile
// nesting, and the string escaper round-trips through the parser.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/json.h"
#include "check.h"

static kd_json *parse_ok(const char *s) {
    kd_json *v = NULL;
    kd_error err = {0};
    int rc = kd_json_parse(s, strlen(s), "t", &v, &err);
    CHECK(rc == KD_OK && v, "input <%s> rejected: %s", s, err.msg);
    return v;
}

// The input must be rejected and the message must contain `want`.
static void parse_bad(const char *s, size_t n, const char *want) {
    kd_json *v = (kd_json *)1;
    kd_error err = {0};
    int rc = kd_json_parse(s, n, "t", &v, &err);
    CHECK(rc == KD_EINPUT, "input <%.40s> accepted (rc %d)", s, rc);
    CHECK(v == NULL, "input <%.40s>: out not NULL on error", s);
    CHECK(strstr(err.msg, want) != NULL, "input <%.40s>: message <%s> lacks <%s>", s, err.msg,
          want);
    kd_json_free(v == (kd_json *)1 ? NULL : v);
}
#define BAD(s, want) parse_bad((s), strlen(s), (want))

static void test_valid(void) {
    kd_json *v = parse_ok(" {\"a\": [1, -2.5, true, false, null, \"x\"], \"b\": {}, \"c\": [] }\n");
    if (!v) return;
    CHECK(v->type == KD_JSON_OBJECT && v->n == 3, "root type %d n %zu", v->type, v->n);
    const kd_json *a = kd_json_get(v, "a");
    CHECK(a && a->type == KD_JSON_ARRAY && a->n == 6, "a missing or n=%zu", a ? a->n : 0);
    if (a && a->n == 6) {
        CHECK(a->items[0].is_int && a->items[0].integer == 1, "a[0] %lld",
              (long long)a->items[0].integer);
        CHECK(a->items[1].number == -2.5 && !a->items[1].is_int, "a[1] %g is_int %d",
              a->items[1].number, a->items[1].is_int);
        CHECK(a->items[2].type == KD_JSON_BOOL && a->items[2].boolean == 1, "a[2]");
        CHECK(a->items[3].type == KD_JSON_BOOL && a->items[3].boolean == 0, "a[3]");
        CHECK(a->items[4].type == KD_JSON_NULL, "a[4] type %d", a->items[4].type);
        CHECK(a->items[5].type == KD_JSON_STRING && a->items[5].len == 1 &&
                  strcmp(a->items[5].str, "x") == 0,
              "a[5]");
        CHECK(kd_json_at(a, 6) == NULL, "at(6) should be NULL");
    }
    CHECK(kd_json_get(v, "b") && kd_json_get(v, "b")->n == 0, "b");
    CHECK(kd_json_get(v, "zz") == NULL, "absent key found");
    CHECK(kd_json_get(a, "a") == NULL, "get on array should be NULL");
    kd_json_free(v);

    // Scalars at top level are valid JSON (RFC 8259).
    v = parse_ok("\"top\"");
    CHECK(v && v->type == KD_JSON_STRING, "top string");
    kd_json_free(v);
    v = parse_ok("  0 ");
    CHECK(v && v->is_int && v->integer == 0, "top 0");
    kd_json_free(v);
}

static void test_strings(void) {
    // Escapes: simple, BMP \u (2- and 3-byte UTF-8), surrogate pair (4-byte), \u0000.
    kd_json *v = parse_ok("\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t|\\u00e9\\u20AC\\ud83d\\ude00\\u0000z\"");
    if (v) {
        const char want[] = "q\"b\\s/\b\f\n\r\t|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0z";
        CHECK(v->len == sizeof want - 1, "len %zu want %zu", v->len, sizeof want - 1);
        CHECK(v->len == sizeof want - 1 && memcmp(v->str, want, v->len) == 0, "bytes differ");
        CHECK(v->str[v->len] == '\0', "not NUL-terminated");
    }
    kd_json_free(v);
    // Raw UTF-8 passes through unchanged.
    v = parse_ok("\"h\xc3\xa9llo \xf0\x9f\x98\x80\"");
    CHECK(v && v->len == 11, "raw utf8 len %zu", v ? v->len : 0);
    kd_json_free(v);

    BAD("\"abc", "expected '\"' closing the string, found end of input");
    BAD("\"a\nb\"", "expected an escaped control character");
    BAD("\"\\x\"", "after '\\', found 'x'");
    BAD("\"\\u12G4\"", "4 hex digits");
    BAD("\"\\u12\"", "4 hex digits");
    BAD("\"\\ud83d\"", "low surrogate after a high surrogate");
    BAD("\"\\ud83dx\"", "low surrogate after a high surrogate");
    BAD("\"\\ud83d\\u0041\"", "found another code point");
    BAD("\"\\ude00\"", "found a lone low surrogate");
    BAD("\"\xff\"", "expected valid UTF-8, found byte 0xff");
    BAD("\"\xc0\xaf\"", "valid UTF-8");         // overlong '/'
    BAD("\"\xed\xa0\x80\"", "valid UTF-8");     // encoded surrogate
    BAD("\"\xf4\x90\x80\x80\"", "valid UTF-8"); // > U+10FFFF
    BAD("\"\xe2\x82\"", "valid UTF-8");         // truncated sequence
    BAD("\"\\", "escape character");
}

static void test_numbers(void) {
    struct {
        const char *s;
        double d;
        int is_int;
        long long i;
    } ok[] = {
        {"0", 0, 1, 0},
        {"-0", 0, 1, 0},
        {"9223372036854775807", 9223372036854775807.0, 1, 9223372036854775807LL},
        {"-9223372036854775808", -9223372036854775808.0, 1, (-9223372036854775807LL - 1)},
        {"9223372036854775808", 9223372036854775808.0, 0, 0}, // beyond int64: double only
        {"1e3", 1000, 1, 1000},
        {"2.0", 2, 1, 2},
        {"1.5E-3", 1.5e-3, 0, 0},
        {"-12.25e+2", -1225, 1, -1225},
        {"1e-400", 0, 1, 0}, // underflows to zero: accepted
        {"123456789012345678901234567890123456789012345678901234567890123456789012345",
         1.2345678901234568e74, 0, 0},
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        kd_json *v = parse_ok(ok[k].s);
        if (!v) continue;
        // Tolerance: relative 1e-15, strtod rounds correctly so only the last ulp may differ.
        CHECK(v->type == KD_JSON_NUMBER && fabs(v->number - ok[k].d) <= 1e-15 * fabs(ok[k].d),
              "%s -> %.17g want %.17g", ok[k].s, v->number, ok[k].d);
        CHECK(v->is_int == ok[k].is_int, "%s is_int %d want %d", ok[k].s, v->is_int, ok[k].is_int);
        if (ok[k].is_int)
            CHECK(v->integer == ok[k].i, "%s int %lld want %lld", ok[k].s, (long long)v->integer,
                  ok[k].i);
        kd_json_free(v);
    }
    BAD("01", "after a leading 0, found '1'");
    BAD("-", "expected a digit, found end of input");
    BAD("+1", "expected a value");
    BAD("1.", "a digit after '.'");
    BAD(".5", "expected a value");
    BAD("1e", "a digit in the exponent");
    BAD("1e+", "a digit in the exponent");
    BAD("1e999", "within double range");
    BAD("-1e999", "within double range");
    BAD("NaN", "expected a value");
    BAD("Infinity", "expected a value");
    BAD("0x10", "end of input after the value, found 'x'");
}

static void test_structure_errors(void) {
    BAD("", "line 1 col 1: expected a value, found end of input");
    BAD("   ", "expected a value, found end of input");
    BAD("{\"a\":1,}", "'\"' starting an object key, found '}'");
    BAD("[1,]", "expected a value");
    BAD("[1 2]", "expected ',' or ']' in an array, found '2'");
    BAD("{\"a\" 1}", "':' after an object key, found '1'");
    BAD("{\"a\":1 \"b\":2}", "',' or '}' in an object");
    BAD("{a:1}", "'\"' starting an object key, found 'a'");
    BAD("[1", "',' or ']' in an array, found end of input");
    BAD("{\"a\":1", "found end of input");
    BAD("tru", "expected 'true', found end of input");
    BAD("nul!", "expected 'null', found '!'");
    BAD("falsey", "end of input after the value, found 'y'");
    BAD("[1] [2]", "end of input after the value");
    BAD("{\"k\":1,\"k\":2}", "key \"k\" twice");
    BAD("'a'", "expected a value");
    BAD("\xef\xbb\xbf{}", "found byte 0xef"); // a BOM is not JSON
    // Line and column point at the offending byte (1-based; columns count bytes).
    BAD("{\n  \"a\": 1,\n  \"b\" 2\n}", "line 3 col 7: expected ':'");
    BAD("[\r\n\t1,\n\n   x]", "line 4 col 4:");
    // Embedded NUL: the length, not a terminator, bounds the input.
    parse_bad("[1]\0", 4, "end of input after the value, found byte 0x00");
}

static void test_nesting(void) {
    // Exactly the limit parses; one more is a clean error, and far deeper input (which
    // would overflow a naive recursive parser's stack) is rejected the same way.
    size_t big = 1000000;
    char *s = kd_malloc(2 * big + 1);
    for (int depth = KD_JSON_MAX_DEPTH; depth <= KD_JSON_MAX_DEPTH + 1; depth++) {
        for (int i = 0; i < depth; i++) s[i] = '[', s[2 * depth - 1 - i] = ']';
        kd_json *v = NULL;
        kd_error err = {0};
        int rc = kd_json_parse(s, 2 * (size_t)depth, "t", &v, &err);
        if (depth == KD_JSON_MAX_DEPTH)
            CHECK(rc == KD_OK, "depth %d rejected: %s", depth, err.msg);
        else
            CHECK(rc == KD_EINPUT && strstr(err.msg, "nesting depth at most 256"),
                  "depth %d: rc %d msg %s", depth, rc, err.msg);
        kd_json_free(v);
    }
    memset(s, '[', big);
    parse_bad(s, big, "nesting depth at most");
    for (size_t i = 0; i < big; i += 5) memcpy(s + i, "{\"a\":", 5);
    parse_bad(s, big, "nesting depth at most");
    free(s);
}

// A long array exercises child-array growth; a big object the duplicate-key sort.
static void test_large(void) {
    size_t n = 20000;
    size_t cap = n * 32 + 16, o = 0;
    char *s = kd_malloc(cap);
    s[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s\"k%zu\":[%zu]", i ? "," : "", i, i);
    s[o++] = '}';
    kd_json *v = NULL;
    kd_error err = {0};
    int rc = kd_json_parse(s, o, "t", &v, &err);
    CHECK(rc == KD_OK && v && v->n == n, "large object rc %d: %s", rc, err.msg);
    const kd_json *m = kd_json_get(v, "k12345");
    CHECK(m && m->n == 1 && m->items[0].integer == 12345, "k12345 lookup");
    kd_json_free(v);
    free(s);
}

static void test_writer(void) {
    const char raw[] = "a\"b\\c\n\t\x01\x1f/\xc3\xa9\0end";
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(kd_json_write_stringn(f, raw, sizeof raw - 1) == 0, "write failed");
    fclose(f);
    CHECK(strstr(buf, "\\u0001") && strstr(buf, "\\u001f") && strstr(buf, "\\u0000"),
          "control chars not escaped: %s", buf);
    kd_json *v = NULL;
    kd_error err = {0};
    int rc = kd_json_parse(buf, len, "t", &v, &err);
    CHECK(rc == KD_OK && v && v->len == sizeof raw - 1 && memcmp(v->str, raw, v->len) == 0,
          "round trip of %s failed: %s", buf, err.msg);
    kd_json_free(v);
    free(buf);
}

int main(void) {
    test_valid();
    test_strings();
    test_numbers();
    test_structure_errors();
    test_nesting();
    test_large();
    test_writer();
    return check_done("test_json");
}
