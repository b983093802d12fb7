// kind.c: the stage kind table (kind.h) and what is computed from it for every kind alike:
// the kind rules of the recipe load (a required dataset, a required teacher, then the
// row's own checks) and the per-stage model hash.
#include "stages/kind.h"

#include <stdlib.h>

#include "runtime/base/hash.h"

// ---------------------------------------------------------------------------- the table

#define TEACHER_BEFORE (KD_KIND_TEACHER | KD_KIND_LOAD_TEACHER)

static const kd_kind_row rows[KD_STAGE_KIND_COUNT] = {
    [KD_STAGE_PRETRAIN] = {.run = kd_stage_pretrain,
                           .flags = KD_KIND_DATA,
                           .format = KD_INPUT_WINDOWS},
    // init loads the teacher when the recipe has one (a later align stage reuses it)
    [KD_STAGE_INIT] = {.run = kd_stage_init,
                       .flags = KD_KIND_LOAD_TEACHER | KD_KIND_NO_BATCH,
                       .format = KD_INPUT_NONE,
                       .check = kd_stage_init_check,
                       .preflight = kd_stage_init_preflight,
                       .hash = kd_stage_init_hash,
                       .layout = kd_stage_init_layout,
                       .summary = "init (attention -> Mamba-2)"},
    [KD_STAGE_ALIGN] = {.run = kd_stage_align,
                        .flags = KD_KIND_DATA | TEACHER_BEFORE,
                        .format = KD_INPUT_TOKENS,
                        .linked = kd_stage_align_linked},
    [KD_STAGE_KD] = {.run = kd_stage_kd,
                     .flags = KD_KIND_DATA | KD_KIND_TEACHER,
                     .format = KD_INPUT_TOKENS,
                     .input = kd_stage_kd_input,
                     .output = kd_stage_kd_output,
                     .check = kd_stage_kd_check,
                     .preflight = kd_stage_kd_preflight,
                     .hash = kd_stage_kd_hash},
    [KD_STAGE_SFT] = {.run = kd_stage_sft, .flags = KD_KIND_DATA, .format = KD_INPUT_TOKENS},
    [KD_STAGE_DPO] = {.run = kd_stage_dpo,
                      .flags = KD_KIND_DATA,
                      .format = KD_INPUT_PREFS,
                      .check = kd_stage_dpo_check},
    [KD_STAGE_EVAL] = {.run = kd_stage_eval,
                       .format = KD_INPUT_TOKENS,
                       .check = kd_stage_eval_check,
                       .preflight = kd_stage_eval_preflight},
    [KD_STAGE_GENERATE] = {.run = kd_stage_generate,
                           .flags = KD_KIND_NO_BATCH,
                           .format = KD_INPUT_TOKENS,
                           .input = kd_stage_generate_input},
};

const kd_kind_row *kd_kind_get(kd_stage_kind k) {
    if ((int)k < 0 || k >= KD_STAGE_KIND_COUNT || !rows[k].run) return NULL;
    return &rows[k];
}

const char *kd_kind_input(const kd_stage_spec *s, const char **key) {
    const kd_kind_row *row = kd_kind_get(s->kind);
    if (row && row->input) return row->input(s, key);
    *key = "data";
    return s->data;
}

const kd_hybrid *kd_kind_layout_at(const kd_recipe *r, int i) {
    static const kd_hybrid none; // pure Transformer
    for (int guard = 0; i >= 0 && guard <= KD_MAX_STAGES; guard++) {
        const kd_kind_row *row = kd_kind_get(r->stages[i].kind);
        if (row && row->layout) {
            const kd_hybrid *h = row->layout(r, i);
            return h->layers_by_attn ? NULL : h;
        }
        kd_from src = kd_recipe_stage_source(r, i);
        if (src.kind == KD_FROM_RANDOM) return &none;
        if (src.kind != KD_FROM_STAGE) return NULL;
        i = kd_recipe_stage_index(r, src.ref);
    }
    return NULL;
}

// ---------------------------------------------------------------------------- recipe rules

static int check_stage(kd_recipe_checker *c, kd_recipe *r, int i) {
    const kd_stage_spec *s = &r->stages[i];
    const kd_kind_row *row = kd_kind_get(s->kind);
    if (!row) return KD_OK; // `check` and `run` refuse it, naming the kind
    char p[64], q[160];
    snprintf(p, sizeof p, "stages[%d]", i);
    const char *key;
    if ((row->flags & KD_KIND_DATA) && kd_kind_input(s, &key) == s->data && !s->data[0])
        return kd_recipe_bad(c, p, "missing required key 'data' (a '%s' stage trains on it)",
                             kd_stage_kind_name(s->kind));
    if ((row->flags & KD_KIND_TEACHER) && !r->has_teacher)
        return kd_recipe_bad(c, p,
                             "a '%s' stage needs a teacher: add teacher: {from: ...} at the top "
                             "level",
                             kd_stage_kind_name(s->kind));
    if (row->flags & KD_KIND_TEACHER) {
        snprintf(q, sizeof q, "stage %s (stages[%d])", s->name, i);
        int rc = kd_recipe_check_from_stage(c, &r->teacher.from, i, "teacher.from.stage", q);
        if (rc) return rc;
    }
    return row->check ? row->check(c, r, i) : KD_OK;
}

static int check_linked(kd_recipe_checker *c, kd_recipe *r, int i) {
    const kd_kind_row *row = kd_kind_get(r->stages[i].kind);
    return row && row->linked ? row->linked(c, r, i) : KD_OK;
}

const kd_recipe_rules kd_kind_rules = {.stage = check_stage, .linked = check_linked};

// ---------------------------------------------------------------------------- model hash

uint64_t kd_stage_model_hash(const kd_recipe *r, int stage) {
    if (stage < 0 || stage >= r->n_stages) return 0;
    kd_strbuf b = {0};
    kd_strbuf_printf(&b, "seed: %llu\n", (unsigned long long)r->run.seed);
    if (r->has_teacher) {
        kd_strbuf_printf(&b, "teacher: ");
        kd_recipe_emit_from(&b, &r->teacher.from);
        kd_strbuf_printf(&b, "\n");
    }
    // walk the chain of stages whose output this stage starts from, back to its origin
    int j = stage, guard = 0;
    while (j >= 0 && guard++ <= KD_MAX_STAGES) {
        const kd_stage_spec *s = &r->stages[j];
        const kd_kind_row *row = kd_kind_get(s->kind);
        kd_strbuf_printf(&b, "- stage %d: %s %s\n  data: ", j, s->name,
                         kd_stage_kind_name(s->kind));
        kd_recipe_emit_str(&b, s->data);
        kd_strbuf_printf(&b, "\n  global: %d\n  seq_len: %d\n", s->batch.global, s->batch.seq_len);
        if (row && row->hash) row->hash(&b, r, j);
        kd_from src = kd_recipe_stage_source(r, j);
        kd_strbuf_printf(&b, "  from: ");
        kd_recipe_emit_from(&b, &src);
        kd_strbuf_printf(&b, "\n");
        j = src.kind == KD_FROM_STAGE ? kd_recipe_stage_index(r, src.ref) : -1;
        if (src.kind == KD_FROM_RANDOM) {
            kd_strbuf_printf(&b, "arch:\n");
            kd_recipe_emit_arch(&b, &r->model.arch, 2);
        }
    }
    uint64_t h = kd_fnv1a64(b.s, b.n);
    free(b.s);
    return h;
}
