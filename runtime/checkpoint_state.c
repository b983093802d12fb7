// checkpoint_state.c: state.json, the trainer state of a checkpoint. A flat JSON object
// (docs/checkpoints.md): integers as numbers, the 64-bit RNG words as 16-digit hex strings
// (JSON readers lose integers above 2^53), the extensible list as an object of strings.
// The reader accepts any key order and whitespace, and rejects unknown or missing keys.
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/checkpoint_internal.h"

// ---------------------------------------------------------------------------- writing

static void put_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int kd_ckpt_state_write(const char *path, const kd_train_state *ts, kd_error *err) {
    FILE *f = fopen(path, "w");
    if (!f) return kd_fail(err, KD_ERUNTIME, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "{\n  \"format\": \"kdtrain-state 1\",\n  \"kdtrain_version\": ");
    put_str(f, KD_VERSION);
    fprintf(f, ",\n  \"stage_index\": %d,\n  \"stage_name\": ", ts->stage_index);
    put_str(f, ts->stage_name);
    fprintf(f,
            ",\n  \"step\": %" PRId64 ",\n  \"optim_step\": %" PRId64
            ",\n  \"samples_consumed\": %" PRId64 ",\n  \"epoch\": %" PRId64 ",\n  \"rng\": [",
            ts->step, ts->optim_step, ts->samples_consumed, ts->epoch);
    for (int i = 0; i < 4; i++) fprintf(f, "%s\"%016" PRIx64 "\"", i ? ", " : "", ts->rng[i]);
    fprintf(f, "],\n  \"world_size\": %d,\n  \"recipe_hash\": ", ts->world_size);
    put_str(f, ts->recipe_hash);
    fprintf(f, ",\n  \"model_hash\": ");
    put_str(f, ts->model_hash);
    fprintf(f, ",\n  \"bad_steps\": %" PRId64 ",\n  \"extra\": {", ts->bad_steps);
    for (int i = 0; i < ts->n_extra; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        put_str(f, ts->extra[i].key);
        fprintf(f, ": ");
        put_str(f, ts->extra[i].value);
    }
    fprintf(f, "%s}\n}\n", ts->n_extra ? "\n  " : "");
    int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    return bad ? kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", path, strerror(e)) : KD_OK;
}

// ---------------------------------------------------------------------------- reading

typedef struct {
    const char *s, *p; // text and cursor
    const char *path;
    kd_error *err;
} js;

static int js_fail(js *j, const char *what) {
    int line = 1, col = 1;
    for (const char *q = j->s; q < j->p; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else
            col++;
    }
    return kd_fail(j->err, KD_EINPUT, "%s:%d:%d: %s", j->path, line, col, what);
}

static void js_ws(js *j) {
    while (isspace((unsigned char)*j->p)) j->p++;
}

static int js_expect(js *j, char c) {
    js_ws(j);
    if (*j->p != c) {
        char m[64];
        snprintf(m, sizeof m, "expected '%c', found '%.1s'", c, *j->p ? j->p : "end of file");
        return js_fail(j, m);
    }
    j->p++;
    return KD_OK;
}

// A string into out (cap bytes). \uXXXX escapes must be ASCII (all this file writes).
static int js_string(js *j, char *out, size_t cap) {
    if (js_expect(j, '"')) return KD_EINPUT;
    size_t n = 0;
    while (*j->p != '"') {
        int c = (unsigned char)*j->p;
        if (c == 0) return js_fail(j, "unterminated string");
        j->p++;
        if (c == '\\') {
            char e = *j->p++;
            if (e == 'n')
                c = '\n';
            else if (e == 't')
                c = '\t';
            else if (e == '"' || e == '\\' || e == '/')
                c = e;
            else if (e == 'u' && isxdigit((unsigned char)j->p[0]) &&
                     isxdigit((unsigned char)j->p[1]) && isxdigit((unsigned char)j->p[2]) &&
                     isxdigit((unsigned char)j->p[3])) {
                char hx[5] = {j->p[0], j->p[1], j->p[2], j->p[3], 0};
                c = (int)strtol(hx, NULL, 16);
                j->p += 4;
                if (c == 0 || c > 0x7f) return js_fail(j, "\\u escape outside ASCII");
            } else
                return js_fail(j, "bad escape in string");
        }
        if (n + 1 >= cap) return js_fail(j, "string too long");
        out[n++] = (char)c;
    }
    j->p++;
    out[n] = '\0';
    return KD_OK;
}

static int js_int(js *j, int64_t *out) {
    js_ws(j);
    char *end;
    errno = 0;
    long long v = strtoll(j->p, &end, 10);
    if (end == j->p || errno) return js_fail(j, "expected an integer");
    j->p = end;
    *out = v;
    return KD_OK;
}

// Members of one object: calls member(key) with the cursor at its value.
static int js_object(js *j, int (*member)(js *, const char *, void *), void *ctx) {
    if (js_expect(j, '{')) return KD_EINPUT;
    js_ws(j);
    if (*j->p == '}') {
        j->p++;
        return KD_OK;
    }
    for (;;) {
        char key[KD_CKPT_KEY_MAX];
        if (js_string(j, key, sizeof key) || js_expect(j, ':') || member(j, key, ctx))
            return KD_EINPUT;
        js_ws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        return js_expect(j, '}');
    }
}

static int extra_member(js *j, const char *key, void *ctx) {
    kd_train_state *ts = ctx;
    if (ts->n_extra == KD_CKPT_EXTRA_MAX) return js_fail(j, "too many entries in \"extra\"");
    kd_ckpt_kv *kv = &ts->extra[ts->n_extra++];
    snprintf(kv->key, sizeof kv->key, "%s", key);
    return js_string(j, kv->value, sizeof kv->value);
}

enum {
    F_STAGE_INDEX,
    F_STAGE_NAME,
    F_STEP,
    F_OPTIM_STEP,
    F_SAMPLES,
    F_EPOCH,
    F_RNG,
    F_WORLD,
    F_RECIPE,
    F_MODEL,
    F_VERSION,
    F_BAD,
    F_EXTRA,
    F_FORMAT,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {
    "stage_index",     "stage_name", "step",       "optim_step",  "samples_consumed",
    "epoch",           "rng",        "world_size", "recipe_hash", "model_hash",
    "kdtrain_version", "bad_steps",  "extra",      "format"};

typedef struct {
    kd_train_state *ts;
    int seen[F_COUNT];
} state_ctx;

static int state_member(js *j, const char *key, void *vctx) {
    state_ctx *c = vctx;
    kd_train_state *ts = c->ts;
    int f = 0;
    while (f < F_COUNT && strcmp(field_names[f], key) != 0) f++;
    if (f == F_COUNT) {
        char m[128];
        snprintf(m, sizeof m, "unknown key \"%s\"", key);
        return js_fail(j, m);
    }
    c->seen[f] = 1;
    int64_t v = 0;
    char s[KD_CKPT_STR_MAX];
    switch (f) {
    case F_STAGE_NAME:
        return js_string(j, ts->stage_name, sizeof ts->stage_name);
    case F_RECIPE:
        return js_string(j, ts->recipe_hash, sizeof ts->recipe_hash);
    case F_MODEL:
        return js_string(j, ts->model_hash, sizeof ts->model_hash);
    case F_VERSION:
        return js_string(j, ts->version, sizeof ts->version);
    case F_EXTRA:
        return js_object(j, extra_member, ts);
    case F_FORMAT:
        if (js_string(j, s, sizeof s)) return KD_EINPUT;
        return strcmp(s, "kdtrain-state 1") ? js_fail(j, "format is not \"kdtrain-state 1\"")
                                            : KD_OK;
    case F_RNG:
        if (js_expect(j, '[')) return KD_EINPUT;
        for (int i = 0; i < 4; i++) {
            char *end;
            if ((i && js_expect(j, ',')) || js_string(j, s, sizeof s)) return KD_EINPUT;
            ts->rng[i] = strtoull(s, &end, 16);
            if (strlen(s) != 16 || *end) return js_fail(j, "rng words must be 16 hex digits");
        }
        return js_expect(j, ']');
    default:
        break;
    }
    if (js_int(j, &v)) return KD_EINPUT;
    switch (f) {
    case F_STAGE_INDEX:
        ts->stage_index = (int)v;
        break;
    case F_STEP:
        ts->step = v;
        break;
    case F_OPTIM_STEP:
        ts->optim_step = v;
        break;
    case F_SAMPLES:
        ts->samples_consumed = v;
        break;
    case F_EPOCH:
        ts->epoch = v;
        break;
    case F_WORLD:
        ts->world_size = (int)v;
        break;
    case F_BAD:
        ts->bad_steps = v;
        break;
    default:
        break;
    }
    return KD_OK;
}

int kd_ckpt_state_read(const char *path, kd_train_state *ts, kd_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return kd_fail(err, KD_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) text = kd_realloc(text, cap = cap * 2 + 8192);
        size_t r = fread(text + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    text[n] = '\0';
    memset(ts, 0, sizeof *ts);
    state_ctx c = {ts, {0}};
    js j = {text, text, path, err};
    int rc = js_object(&j, state_member, &c);
    if (rc == KD_OK) {
        js_ws(&j);
        if (*j.p) rc = js_fail(&j, "text after the closing '}'");
    }
    for (int i = 0; i < F_COUNT && rc == KD_OK; i++)
        if (!c.seen[i])
            rc = kd_fail(err, KD_EINPUT, "%s: missing key \"%s\"", path, field_names[i]);
    free(text);
    return rc;
}

int kd_ckpt_read_state(const char *ckpt_dir, kd_train_state *ts, kd_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/state.json", ckpt_dir);
    return kd_ckpt_state_read(path, ts, err);
}
