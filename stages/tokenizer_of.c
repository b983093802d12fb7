// tokenizer_of.c: which tokenizer a recipe's model and teacher use (kd_recipe_tokenizer,
// stage.h): the explicit key, else what their from: says, else bytes. `check` compares it
// with the data (runtime/run/run.c); eval tasks and generation encode with it.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/store/model_io.h"
#include "stages/stage.h"

// An HF directory that ships its tokenizer (tokenizer.json) names it, a checkpoint the
// tokenizer it records (runtime/store/model_io.h); anything else does not say.
static int source_tokenizer(const kd_from *f, char *out, size_t n) {
    if (f->kind == KD_FROM_CHECKPOINT) {
        char spec[KD_CKPT_STR_MAX], fp[65];
        kd_error ignored = {0}; // an unreadable checkpoint is reported where it is loaded
        if (kd_ckpt_tokenizer(f->ref, spec, sizeof spec, fp, &ignored) || !spec[0]) return 0;
        snprintf(out, n, "%s", spec);
        return 1;
    }
    if (f->kind != KD_FROM_HF) return 0;
    char path[KD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/tokenizer.json", f->ref);
    if (access(path, R_OK) != 0) return 0;
    snprintf(out, n, "%s", f->ref);
    return 1;
}

const char *kd_recipe_tokenizer(const kd_recipe *r, int teacher, char *out, size_t n) {
    const kd_model_spec *ms = teacher ? &r->teacher : &r->model;
    if (ms->tokenizer[0]) {
        snprintf(out, n, "%s", ms->tokenizer);
    } else if (!source_tokenizer(&ms->from, out, n)) {
        if (teacher) return kd_recipe_tokenizer(r, 0, out, n);
        snprintf(out, n, "%s", "bytes");
    }
    return out;
}

int kd_recipe_open_tokenizer(const kd_recipe *r, int teacher, kd_tokenizer **out, kd_error *err) {
    char spec[KD_PATH_MAX];
    kd_recipe_tokenizer(r, teacher, spec, sizeof spec);
    int rc = kd_tokenizer_open(out, spec, err);
    if (rc) kd_error_prefix(err, "%s: %s.tokenizer: ", r->path, teacher ? "teacher" : "model");
    return rc;
}
