// checkpoint_state.c: state.json, the trainer state of a checkpoint. A flat JSON object
// (docs/checkpoints.md): integers as numbers, the 64-bit RNG words as 16-digit hex strings
// (JSON readers lose integers above 2^53), the extensible list as an object of strings.
// The reader (runtime/base/json.c) accepts any key order and whitespace, and rejects
// unknown, repeated or missing keys.
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/base/fs.h"
#include "runtime/base/json.h"
#include "runtime/store/checkpoint_internal.h"

#define KD_CKPT_STATE_MAX_BYTES ((size_t)1 << 20) // state.json is a few KiB at most

// ---------------------------------------------------------------------------- writing

int kd_ckpt_state_write(const char *path, const kd_train_state *ts, kd_error *err) {
    FILE *f = fopen(path, "w");
    if (!f) return kd_fail(err, KD_ERUNTIME, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "{\n  \"format\": \"kdtrain-state 1\",\n  \"kdtrain_version\": ");
    kd_json_write_string(f, KD_VERSION);
    fprintf(f, ",\n  \"stage_index\": %d,\n  \"stage_name\": ", ts->stage_index);
    kd_json_write_string(f, ts->stage_name);
    fprintf(f,
            ",\n  \"step\": %" PRId64 ",\n  \"optim_step\": %" PRId64
            ",\n  \"samples_consumed\": %" PRId64 ",\n  \"epoch\": %" PRId64 ",\n  \"rng\": [",
            ts->step, ts->optim_step, ts->samples_consumed, ts->epoch);
    for (int i = 0; i < 4; i++) fprintf(f, "%s\"%016" PRIx64 "\"", i ? ", " : "", ts->rng[i]);
    fprintf(f, "],\n  \"world_size\": %d,\n  \"recipe_hash\": ", ts->world_size);
    kd_json_write_string(f, ts->recipe_hash);
    fprintf(f, ",\n  \"model_hash\": ");
    kd_json_write_string(f, ts->model_hash);
    fprintf(f, ",\n  \"bad_steps\": %" PRId64 ",\n  \"extra\": {", ts->bad_steps);
    for (int i = 0; i < ts->n_extra; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        kd_json_write_string(f, ts->extra[i].key);
        fprintf(f, ": ");
        kd_json_write_string(f, ts->extra[i].value);
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

// String member v into out (cap bytes, NUL included).
static int get_str(const char *path, const char *key, const kd_json *v, char *out, size_t cap,
                   kd_error *err) {
    if (v->type != KD_JSON_STRING || v->len >= cap || strlen(v->str) != v->len)
        return kd_fail(err, KD_EINPUT, "%s: \"%s\": expected a string of at most %zu bytes", path,
                       key, cap - 1);
    memcpy(out, v->str, v->len + 1);
    return KD_OK;
}

static int get_int(const char *path, const kd_json *v, int64_t *out, kd_error *err) {
    if (v->type != KD_JSON_NUMBER || !v->is_int)
        return kd_fail(err, KD_EINPUT, "%s: \"%s\": expected an integer, found %s", path, v->key,
                       kd_json_type_name(v->type));
    *out = v->integer;
    return KD_OK;
}

// "rng": four 64-bit words as 16-digit hex strings.
static int get_rng(const char *path, const kd_json *v, uint64_t rng[4], kd_error *err) {
    if (v->type != KD_JSON_ARRAY || v->n != 4)
        return kd_fail(err, KD_EINPUT, "%s: \"rng\": expected an array of 4 strings", path);
    for (int i = 0; i < 4; i++) {
        const kd_json *w = &v->items[i];
        char *end = NULL;
        if (w->type == KD_JSON_STRING && w->len == 16) rng[i] = strtoull(w->str, &end, 16);
        if (!end || *end)
            return kd_fail(err, KD_EINPUT, "%s: \"rng\": words must be 16 hex digits", path);
    }
    return KD_OK;
}

// "extra": an object of strings, at most KD_CKPT_EXTRA_MAX of them.
static int get_extra(const char *path, const kd_json *v, kd_train_state *ts, kd_error *err) {
    if (v->type != KD_JSON_OBJECT || v->n > KD_CKPT_EXTRA_MAX)
        return kd_fail(err, KD_EINPUT, "%s: \"extra\": expected an object of at most %d strings",
                       path, KD_CKPT_EXTRA_MAX);
    for (size_t i = 0; i < v->n; i++) {
        kd_ckpt_kv *kv = &ts->extra[ts->n_extra];
        const kd_json *m = &v->items[i];
        if (m->key_len >= sizeof kv->key || strlen(m->key) != m->key_len)
            return kd_fail(err, KD_EINPUT, "%s: \"extra\": expected keys of at most %zu bytes",
                           path, sizeof kv->key - 1);
        memcpy(kv->key, m->key, m->key_len + 1);
        int rc = get_str(path, m->key, m, kv->value, sizeof kv->value, err);
        if (rc) return rc;
        ts->n_extra++;
    }
    return KD_OK;
}

// Member v (field f) into ts.
static int state_member(const char *path, int f, const kd_json *v, kd_train_state *ts,
                        kd_error *err) {
    int64_t x = 0;
    int rc;
    switch (f) {
    case F_STAGE_NAME:
        return get_str(path, v->key, v, ts->stage_name, sizeof ts->stage_name, err);
    case F_RECIPE:
        return get_str(path, v->key, v, ts->recipe_hash, sizeof ts->recipe_hash, err);
    case F_MODEL:
        return get_str(path, v->key, v, ts->model_hash, sizeof ts->model_hash, err);
    case F_VERSION:
        return get_str(path, v->key, v, ts->version, sizeof ts->version, err);
    case F_EXTRA:
        return get_extra(path, v, ts, err);
    case F_RNG:
        return get_rng(path, v, ts->rng, err);
    case F_FORMAT:
        if (v->type != KD_JSON_STRING || strcmp(v->str, "kdtrain-state 1") != 0)
            return kd_fail(err, KD_EINPUT, "%s: format is not \"kdtrain-state 1\"", path);
        return KD_OK;
    }
    if ((rc = get_int(path, v, &x, err))) return rc;
    switch (f) {
    case F_STAGE_INDEX: ts->stage_index = (int)x; break;
    case F_STEP: ts->step = x; break;
    case F_OPTIM_STEP: ts->optim_step = x; break;
    case F_SAMPLES: ts->samples_consumed = x; break;
    case F_EPOCH: ts->epoch = x; break;
    case F_WORLD: ts->world_size = (int)x; break;
    case F_BAD: ts->bad_steps = x; break;
    }
    return KD_OK;
}

// The members of the parsed object into ts: every field exactly once, no other key.
static int state_from_json(const char *path, const kd_json *root, kd_train_state *ts,
                           kd_error *err) {
    if (root->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT, "%s: expected a JSON object, found %s", path,
                       kd_json_type_name(root->type));
    int seen[F_COUNT] = {0};
    for (size_t i = 0; i < root->n; i++) {
        const kd_json *v = &root->items[i];
        int f = 0;
        while (f < F_COUNT && strcmp(field_names[f], v->key) != 0) f++;
        if (f == F_COUNT) return kd_fail(err, KD_EINPUT, "%s: unknown key \"%s\"", path, v->key);
        seen[f] = 1;
        int rc = state_member(path, f, v, ts, err);
        if (rc) return rc;
    }
    for (int f = 0; f < F_COUNT; f++)
        if (!seen[f]) return kd_fail(err, KD_EINPUT, "%s: missing key \"%s\"", path, field_names[f]);
    return KD_OK;
}

int kd_ckpt_state_read(const char *path, kd_train_state *ts, kd_error *err) {
    char *text;
    size_t n;
    int e;
    kd_read_status rs = kd_read_file(path, KD_CKPT_STATE_MAX_BYTES, &text, &n, &e);
    if (rs == KD_READ_EOPEN) return kd_fail(err, KD_EINPUT, "%s: cannot open: %s", path, strerror(e));
    if (rs == KD_READ_EBIG) return kd_fail(err, KD_EINPUT, "%s: not a state file (too large)", path);
    if (rs != KD_READ_OK) return kd_fail(err, KD_EINPUT, "%s: cannot read: %s", path, strerror(e));
    memset(ts, 0, sizeof *ts);
    kd_json *root = NULL;
    int rc = kd_json_parse(text, n, path, &root, err);
    free(text);
    if (rc == KD_OK) rc = state_from_json(path, root, ts, err);
    kd_json_free(root);
    return rc;
}

int kd_ckpt_read_state(const char *ckpt_dir, kd_train_state *ts, kd_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/state.json", ckpt_dir);
    return kd_ckpt_state_read(path, ts, err);
}
