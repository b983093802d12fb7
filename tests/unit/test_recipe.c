// test_recipe.c: good recipes load into the documented values: defaults of a minimal
// recipe, every kind-specific block of tests/recipes/demo.yaml, the model flow helpers,
// --set overrides (including creating a key), the resolved YAML round trip (write,
// reload, identical structs and hash), and what the model hash does and does not see.
// Values are compared exactly: floats are parsed once from short decimal text, so the
// expected value is the same float literal.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/config/recipe.h"
#include "stages/kind.h"

static int failures = 0;

#define CHECK_INT(what, got, want)                                                                 \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (g_ != w_) {                                                                            \
            printf("FAIL %s:%d %s: got %lld, want %lld\n", __FILE__, __LINE__, what, g_, w_);      \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)
#define CHECK_F(what, got, want)                                                                   \
    do {                                                                                           \
        float g_ = (got), w_ = (float)(want);                                                      \
        if (g_ != w_) {                                                                            \
            printf("FAIL %s:%d %s: got %.9g, want %.9g\n", __FILE__, __LINE__, what, g_, w_);      \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)
#define CHECK_STR(what, got, want)                                                                 \
    do {                                                                                           \
        if (strcmp((got), (want)) != 0) {                                                          \
            printf("FAIL %s:%d %s: got '%s', want '%s'\n", __FILE__, __LINE__, what, (got),        \
                   (want));                                                                        \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static char demo_path[1024];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static kd_recipe *load(const char *path, const char *const *ov, int n_ov) {
    kd_recipe *r = malloc(sizeof *r);
    kd_error err = {0};
    if (kd_recipe_load(r, path, ov, n_ov, &kd_kind_rules, &err) != KD_OK) {
        printf("FAIL load %s: %s\n", path, err.msg);
        failures++;
        free(r);
        return NULL;
    }
    return r;
}

static void drop(kd_recipe *r) {
    if (!r) return;
    kd_recipe_free(r);
    free(r);
}

// ---------------------------------------------------------------------------- defaults
static void test_defaults(void) {
    write_file("mini.yaml", "stages:\n  - {name: pre, kind: pretrain, data: d.h5}\n");
    kd_recipe *r = load("mini.yaml", NULL, 0);
    if (!r) return;
    CHECK_STR("run.name", r->run.name, "mini");
    CHECK_STR("run.out_dir", r->run.out_dir, "runs/mini");
    CHECK_INT("run.seed", r->run.seed, 1234);
    CHECK_STR("run.backend", r->run.backend, "auto");
    CHECK_F("run.max_minutes", r->run.max_minutes, 0);
    CHECK_F("run.collective_timeout_s", r->run.collective_timeout_s, 600);
    CHECK_INT("model.from", r->model.from.kind, KD_FROM_RANDOM);
    const kd_arch *a = &r->model.arch;
    CHECK_INT("vocab", a->vocab_size, 259);
    CHECK_INT("d_model", a->d_model, 128);
    CHECK_INT("n_layers", a->n_layers, 4);
    CHECK_INT("n_heads", a->n_heads, 4);
    CHECK_INT("n_kv_heads", a->n_kv_heads, 4);
    CHECK_INT("head_dim", a->head_dim, 32);
    CHECK_INT("ffn_dim = round64(8*128/3)", a->ffn_dim, 384);
    CHECK_F("rope_theta", a->rope_theta, 10000);
    CHECK_F("norm_eps", a->norm_eps, 1e-5f);
    CHECK_INT("tie", a->tie_embeddings, 0);
    CHECK_F("init_std", a->init_std, 0.02f);
    const kd_hybrid *h = &r->model.hybrid;
    CHECK_INT("n_ssm", h->n_ssm_layers, 0);
    CHECK_INT("n_attn (complement of none)", h->n_attn_layers, 4);
    CHECK_INT("d_state", h->d_state, 0);
    CHECK_INT("chunk", h->chunk_size, 64);
    CHECK_INT("conv", h->conv_width, 4);
    CHECK_INT("has_teacher", r->has_teacher, 0);
    CHECK_INT("n_stages", r->n_stages, 1);
    const kd_stage_spec *s = &r->stages[0];
    CHECK_INT("from", s->from.kind, KD_FROM_PREV);
    CHECK_STR("eval_data", s->eval_data, "");
    CHECK_INT("steps", s->steps, 100);
    CHECK_INT("log_every", s->log_every, 10);
    CHECK_INT("eval_every", s->eval_every, 0);
    CHECK_INT("global", s->batch.global, 8);
    CHECK_INT("micro = global", s->batch.micro, 8);
    CHECK_INT("seq_len", s->batch.seq_len, 64);
    CHECK_F("lr", s->optim.lr, 3e-4f);
    CHECK_F("min_lr_ratio", s->optim.min_lr_ratio, 0.1f);
    CHECK_INT("warmup", s->optim.warmup, 0);
    CHECK_INT("schedule", s->optim.schedule, KD_SCHED_COSINE);
    CHECK_F("wd", s->optim.weight_decay, 0);
    CHECK_F("beta1", s->optim.beta1, 0.9f);
    CHECK_F("beta2", s->optim.beta2, 0.95f);
    CHECK_F("eps", s->optim.eps, 1e-8f);
    CHECK_F("grad_clip", s->optim.grad_clip, 1.0f);
    CHECK_INT("ckpt.every", s->checkpoint.every, 0);
    CHECK_INT("ckpt.keep", s->checkpoint.keep, 3);
    CHECK_INT("ckpt.at_end", s->checkpoint.at_end, 1);
    CHECK_INT("n_freeze", s->n_freeze, 0);
    CHECK_INT("max_bad_steps", s->max_bad_steps, 5);
    CHECK_INT("line", s->line, 2);
    kd_from src = kd_recipe_stage_source(r, 0);
    CHECK_INT("first stage starts from model.from", src.kind, KD_FROM_RANDOM);
    drop(r);
}

// ---------------------------------------------------------------------------- demo
static void test_demo(void) {
    kd_recipe *r = load(demo_path, NULL, 0);
    if (!r) return;
    CHECK_STR("run.name", r->run.name, "demo");
    CHECK_INT("seed", r->run.seed, 7);
    CHECK_STR("backend", r->run.backend, "cpu");
    CHECK_INT("n_kv_heads", r->model.arch.n_kv_heads, 2);
    CHECK_INT("head_dim", r->model.arch.head_dim, 16);
    CHECK_INT("teacher.arch copies model.arch", r->teacher.arch.d_model, 64);
    CHECK_INT("has_teacher", r->has_teacher, 1);
    CHECK_INT("teacher.from", r->teacher.from.kind, KD_FROM_STAGE);
    CHECK_STR("teacher.from.ref", r->teacher.from.ref, "teacher");
    const kd_hybrid *h = &r->model.hybrid;
    CHECK_INT("n_ssm", h->n_ssm_layers, 2);
    CHECK_INT("attn complement n", h->n_attn_layers, 2);
    CHECK_INT("attn[0]", h->attn_layers[0], 1);
    CHECK_INT("attn[1]", h->attn_layers[1], 3);
    CHECK_INT("n_stages", r->n_stages, 9);
    CHECK_INT("index(kd)", kd_recipe_stage_index(r, "kd"), 4);
    CHECK_INT("index(nope)", kd_recipe_stage_index(r, "nope"), -1);
    CHECK_STR("kind name", kd_stage_kind_name(KD_STAGE_GENERATE), "generate");
    const kd_stage_spec *t = &r->stages[0];
    CHECK_INT("teacher micro", t->batch.micro, 4);
    CHECK_F("teacher lr", t->optim.lr, 1e-3f);
    CHECK_INT("teacher keep", t->checkpoint.keep, 3);
    CHECK_INT("init has_hybrid", r->stages[1].has_hybrid, 0);
    const kd_stage_spec *a1 = &r->stages[2], *a2 = &r->stages[3];
    CHECK_INT("align1 phase", a1->align.phase, KD_ALIGN_MATRIX);
    CHECK_INT("align1 layers default = all SSM", a1->align.n_layers, 2);
    CHECK_INT("align1 layers[1]", a1->align.layers[1], 2);
    CHECK_INT("align2 phase", a2->align.phase, KD_ALIGN_HIDDEN);
    CHECK_INT("align2 layers", a2->align.n_layers, 1);
    const kd_stage_spec *k = &r->stages[4];
    CHECK_F("kd.kl", k->kd.loss.kl, 1.0f);
    CHECK_F("kd.ce", k->kd.loss.ce, 0.1f);
    CHECK_F("kd.T", k->kd.loss.temperature, 2.0f);
    CHECK_INT("kd.div", k->kd.loss.divergence, KD_DIV_JSD);
    CHECK_F("kd.beta", k->kd.loss.beta, 0.5f);
    CHECK_INT("mask_prompt", k->kd.mask_prompt, 1);
    CHECK_INT("generate", k->kd.pseudo_labels.generate, 1);
    CHECK_INT("top_k_logits", k->kd.pseudo_labels.top_k_logits, 16);
    CHECK_INT("max_new_tokens", k->kd.pseudo_labels.max_new_tokens, 64);
    CHECK_F("pl temperature", k->kd.pseudo_labels.temperature, 0.7f);
    CHECK_F("pl top_p", k->kd.pseudo_labels.top_p, 0.95f);
    CHECK_STR("pl out default", k->kd.pseudo_labels.out, "runs/demo/stages/04-kd/pseudo_labels.h5");
    CHECK_INT("n_freeze", k->n_freeze, 2);
    CHECK_STR("freeze[0]", k->freeze[0], "layers.*.mlp.*");
    CHECK_INT("sft packing", r->stages[5].sft.packing, 0);
    const kd_stage_spec *d = &r->stages[6];
    CHECK_INT("dpo type", d->dpo.loss.type, KD_PREF_IPO);
    CHECK_F("dpo beta", d->dpo.loss.beta, 0.05f);
    CHECK_F("dpo gamma", d->dpo.loss.gamma, 0.5f);
    CHECK_INT("dpo max_len", d->dpo.max_len, 256);
    CHECK_INT("dpo max_prompt_len", d->dpo.max_prompt_len, 128);
    CHECK_INT("dpo has_reference", d->dpo.has_reference, 1);
    CHECK_STR("dpo reference", d->dpo.reference.ref, "sft");
    CHECK_F("dpo lr", d->optim.lr, 5e-7f);
    CHECK_INT("dpo schedule", d->optim.schedule, KD_SCHED_LINEAR);
    const kd_stage_spec *e = &r->stages[7];
    CHECK_INT("eval n_tasks", e->eval.n_tasks, 2);
    CHECK_STR("eval task 1", e->eval.tasks[1], "reverse");
    CHECK_INT("eval max_new_tokens", e->eval.max_new_tokens, 32);
    const kd_stage_spec *g = &r->stages[8];
    CHECK_STR("gen prompts", g->generate.prompts, "data/demo/prompts.h5");
    CHECK_INT("gen top_k", g->generate.top_k, 40);
    kd_from src = kd_recipe_stage_source(r, 8);
    CHECK_INT("gen from kind", src.kind, KD_FROM_STAGE);
    CHECK_STR("gen from ref", src.ref, "kd");
    src = kd_recipe_stage_source(r, 3);
    CHECK_STR("prev resolves to the previous stage", src.ref, "align1");
    char dir[256];
    kd_recipe_stage_dir(r, 2, dir, sizeof dir);
    CHECK_STR("stage dir", dir, "runs/demo/stages/02-align1");
    drop(r);
}

// ---------------------------------------------------------------------------- anchors
// x- keys at the top level hold shared blocks; aliases copy them into each stage.
static void test_anchors(void) {
    write_file("anchors.yaml", "x-optim: &opt {lr: 2e-3, warmup: 7}\n"
                               "stages:\n"
                               "  - {name: a, kind: pretrain, data: d.h5, optim: *opt}\n"
                               "  - {name: b, kind: sft, data: s.h5, optim: *opt}\n");
    kd_recipe *r = load("anchors.yaml", NULL, 0);
    if (!r) return;
    CHECK_F("alias lr in a", r->stages[0].optim.lr, 2e-3f);
    CHECK_INT("alias warmup in b", r->stages[1].optim.warmup, 7);
    drop(r);
    unlink("anchors.yaml");
}

// ---------------------------------------------------------------------------- overrides
static void test_overrides(void) {
    const char *ov[] = {"stages.dpo.optim.lr=1e-4",
                        "stages[2].steps=5",
                        "run.seed=7",
                        "model.hybrid.ssm_layers=[2, 3]",
                        "stages.sft.eval_data=held.h5",
                        "stages.kd.loss={kl: 0.5}",
                        "teacher.from={hf: /models/llama}"};
    kd_recipe *r = load(demo_path, ov, 7);
    if (!r) return;
    CHECK_F("dpo lr", r->stages[6].optim.lr, 1e-4f);
    CHECK_INT("stages[2].steps", r->stages[2].steps, 5);
    CHECK_INT("seed", r->run.seed, 7);
    CHECK_INT("ssm[0]", r->model.hybrid.ssm_layers[0], 2);
    CHECK_INT("align default follows the new layout", r->stages[2].align.layers[1], 3);
    CHECK_STR("created key", r->stages[5].eval_data, "held.h5");
    CHECK_F("replaced block: kl", r->stages[4].kd.loss.kl, 0.5f);
    CHECK_F("replaced block: temperature back to default", r->stages[4].kd.loss.temperature, 1.0f);
    CHECK_INT("teacher from hf", r->teacher.from.kind, KD_FROM_HF);
    CHECK_STR("teacher dir", r->teacher.from.ref, "/models/llama");
    drop(r);
    // attn_layers given, arch known: ssm_layers is its complement
    const char *ov2[] = {"model.hybrid={attn_layers: [0, 1]}"};
    r = load(demo_path, ov2, 1);
    if (!r) return;
    CHECK_INT("by attn: n_ssm", r->model.hybrid.n_ssm_layers, 2);
    CHECK_INT("by attn: ssm[0]", r->model.hybrid.ssm_layers[0], 2);
    CHECK_INT("by attn: ssm[1]", r->model.hybrid.ssm_layers[1], 3);
    CHECK_INT("by attn: resolved", r->model.hybrid.layers_by_attn, 0);
    drop(r);
}

// ---------------------------------------------------------------------------- round trip
static int same_struct(const kd_recipe *a, const kd_recipe *b) {
    return !memcmp(&a->run, &b->run, sizeof a->run) &&
           !memcmp(&a->model, &b->model, sizeof a->model) && a->has_teacher == b->has_teacher &&
           !memcmp(&a->teacher, &b->teacher, sizeof a->teacher) && a->n_stages == b->n_stages &&
           !memcmp(a->stages, b->stages, (size_t)a->n_stages * sizeof a->stages[0]);
}

static void round_trip(const char *path, const char *const *ov, int n_ov, const char *label) {
    kd_recipe *a = load(path, ov, n_ov);
    if (!a) return;
    kd_error err = {0};
    if (kd_recipe_write_resolved(a, "resolved.yaml", &err) != KD_OK) {
        printf("FAIL %s: write_resolved: %s\n", label, err.msg);
        failures++;
        drop(a);
        return;
    }
    CHECK_INT("no temporary file left", access("resolved.yaml.tmp", F_OK) == 0, 0);
    kd_recipe *b = load("resolved.yaml", NULL, 0);
    if (b) {
        // line numbers differ between the two files by construction
        for (int i = 0; i < b->n_stages; i++) b->stages[i].line = a->stages[i].line;
        if (strcmp(a->resolved_yaml, b->resolved_yaml) != 0 || a->hash != b->hash) {
            printf("FAIL %s: resolved YAML differs after a round trip:\n--- first\n%s\n--- "
                   "second\n%s\n",
                   label, a->resolved_yaml, b->resolved_yaml);
            failures++;
        } else if (!same_struct(a, b)) {
            printf("FAIL %s: structs differ after a round trip\n", label);
            failures++;
        } else {
            printf("ok   round trip %s (hash %016llx)\n", label, (unsigned long long)a->hash);
        }
    }
    drop(a);
    drop(b);
    unlink("resolved.yaml");
}

static void test_round_trips(void) {
    round_trip(demo_path, NULL, 0, "demo");
    round_trip("mini.yaml", NULL, 0, "defaults");
    // arch unknown (HF origin): attn_layers stays unresolved and must survive the trip
    write_file("hf.yaml",
               "model: {from: {hf: /m/llama}, hybrid: {attn_layers: [0, 5], d_state: auto}}\n"
               "teacher: {from: {hf: /m/llama}}\n"
               "stages:\n  - {name: init, kind: init}\n"
               "  - {name: al, kind: align, phase: matrix, data: \"a \\\"quoted\\\" path\"}\n"
               "  - {name: kd, kind: kd, data: k.h5, loss: {divergence: reverse}}\n"
               "  - {name: dpo, kind: dpo, data: p.h5, from: {checkpoint: ck/x}}\n");
    kd_recipe *r = load("hf.yaml", NULL, 0);
    if (r) {
        CHECK_INT("unresolved layout kept as attn_layers", r->model.hybrid.layers_by_attn, 1);
        CHECK_INT("align layers left for the run", r->stages[1].align.n_layers, 0);
        kd_hybrid h = r->model.hybrid;
        kd_error err = {0};
        CHECK_INT("resolve with 6 layers", kd_hybrid_resolve(&h, 6, "model.hybrid", &err), KD_OK);
        CHECK_INT("resolved ssm count", h.n_ssm_layers, 4);
        CHECK_INT("resolved ssm[0]", h.ssm_layers[0], 1);
        h = r->model.hybrid;
        CHECK_INT("resolve with 4 layers fails", kd_hybrid_resolve(&h, 4, "model.hybrid", &err),
                  KD_EINPUT);
        CHECK_STR("resolve message", err.msg,
                  "model.hybrid.attn_layers[1]: expected a layer index in [0, 4), found 5");
        drop(r);
    }
    round_trip("hf.yaml", NULL, 0, "hf-origin");
    const char *ov[] = {"stages.kd.pseudo_labels.out=elsewhere.h5", "run.out_dir=/tmp/x y"};
    round_trip(demo_path, ov, 2, "demo+overrides");
    // floats beyond long long's range are emitted with an exponent (the fuzzer's find: the
    // whole-number test once converted them first, undefined behaviour)
    const char *big[] = {"stages.dpo.optim.lr=88888888888888888888888888885e-7",
                         "model.arch.rope_theta=1e30"};
    round_trip(demo_path, big, 2, "demo+huge floats");
}

// ---------------------------------------------------------------------------- model hash
static uint64_t hash_with(const char *ov, int stage) {
    const char *o[] = {ov};
    kd_recipe *r = load(demo_path, o, ov ? 1 : 0);
    if (!r) return 0;
    uint64_t h = kd_stage_model_hash(r, stage);
    drop(r);
    return h;
}

static void test_model_hash(void) {
    uint64_t base =
        hash_with(NULL, 5); // sft: chain sft <- kd <- align2 <- align1 <- init <- teacher
    struct {
        const char *ov;
        int changes;
    } cases[] = {
        {"stages.sft.log_every=3", 0},
        {"stages.sft.optim.lr=1e-5", 0},
        {"stages.dpo.data=other.h5", 0},
        {"stages.sft.steps=7", 0},
        {"stages.sft.data=other.h5", 1},
        {"stages.sft.batch.seq_len=32", 1},
        {"stages.sft.batch.global=16", 1},
        {"stages.teacher.data=other.h5", 1},
        {"run.seed=99", 1},
        {"model.arch.d_model=32", 1},
        {"model.hybrid.ssm_layers=[2]", 1},
        {"stages.sft.from={hf: x}", 1},
        {"stages.init.conv=identity", 0},
        {"stages.init.conv=default", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t h = hash_with(cases[i].ov, 5);
        if ((h != base) != cases[i].changes) {
            printf("FAIL model hash with %s: %s (base %016llx, got %016llx)\n", cases[i].ov,
                   cases[i].changes ? "should change but did not" : "changed but should not",
                   (unsigned long long)base, (unsigned long long)h);
            failures++;
        }
    }
    CHECK_INT("different stages hash differently", hash_with(NULL, 4) != base, 1);
}

int main(void) {
    const char *src = getenv("KD_SOURCE_DIR");
    snprintf(demo_path, sizeof demo_path, "%s/tests/recipes/demo.yaml", src ? src : ".");
    char dir[] = "/tmp/kd_recipe_ok_XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0) {
        printf("FAIL: cannot make a temporary directory\n");
        return 1;
    }
    test_defaults();
    test_demo();
    test_anchors();
    test_overrides();
    test_round_trips();
    test_model_hash();
    unlink("mini.yaml");
    unlink("hf.yaml");
    if (chdir("/") == 0) rmdir(dir);
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
