// test_recipe_errors.c: every class of recipe error gives KD_EINPUT and one exact line
// naming file:line:col (or the --set expression) and the key path. Each case writes a small
// recipe as tiny.yaml into a temporary directory and compares the whole message.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/config/recipe.h"
#include "stages/kind.h"

static int failures = 0;

typedef struct {
    const char *name;
    const char *yaml; // NULL: do not write the file
    const char *overrides[3];
    const char *want; // the exact message
} error_case;

#define STAGE_A "stages:\n  - name: a\n    kind: pretrain\n    data: x.h5\n"

static const error_case cases[] = {
    {"wrong_type_float",
     STAGE_A "    optim: {lr: abc}\n",
     {0},
     "tiny.yaml:5:17: stages[0].optim.lr: expected a number > 0, found 'abc'"},
    {"out_of_range_float",
     STAGE_A "    optim:\n      lr: 0\n",
     {0},
     "tiny.yaml:6:11: stages[0].optim.lr: expected a number > 0, found '0'"},
    {"out_of_range_int",
     STAGE_A "    checkpoint: {keep: 1}\n",
     {0},
     "tiny.yaml:5:24: stages[0].checkpoint.keep: expected an integer in [2, 1000], found '1'"},
    {"wrong_type_list",
     STAGE_A "    steps: [1]\n",
     {0},
     "tiny.yaml:5:12: stages[0].steps: expected an integer >= 0, found a list of 1 item"},
    {"bad_enum",
     STAGE_A "    optim: {schedule: cosin}\n",
     {0},
     "tiny.yaml:5:23: stages[0].optim.schedule: expected one of cosine|linear|constant, found "
     "'cosin'"},
    {"bad_bool",
     "stages:\n  - {name: s, kind: sft, data: x.h5, packing: maybe}\n",
     {0},
     "tiny.yaml:2:47: stages[0].packing: expected true or false, found 'maybe'"},
    {"yaml_syntax",
     "stages: [a, b\nrun: {}\n",
     {0},
     "tiny.yaml:2:4: YAML syntax error: did not find expected ',' or ']' while parsing a flow "
     "sequence"},
    {"unknown_key_did_you_mean",
     STAGE_A "    optim: {lrr: 1e-3}\n",
     {0},
     "tiny.yaml:5:13: stages[0].optim.lrr: unknown key (did you mean 'lr'?)"},
    {"unknown_key_top",
     "stagez: []\n",
     {0},
     "tiny.yaml:1:1: stagez: unknown key (did you mean 'stages'?)"},
    {"unknown_key_no_hint",
     STAGE_A "    colour: red\n",
     {0},
     "tiny.yaml:5:5: stages[0].colour: unknown key"},
    {"key_of_other_kind",
     "stages:\n  - {name: s, kind: sft, data: x.h5, phase: matrix}\n",
     {0},
     "tiny.yaml:2:38: stages[0].phase: key not allowed in a 'sft' stage (only in: align)"},
    {"missing_kind",
     "stages:\n  - name: a\n    data: x.h5\n",
     {0},
     "tiny.yaml:2:5: stages[0]: missing required key 'kind'"},
    {"missing_name",
     "stages:\n  - kind: pretrain\n    data: x.h5\n",
     {0},
     "tiny.yaml:2:5: stages[0]: missing required key 'name'"},
    {"missing_phase",
     "teacher: {from: {hf: t}}\nstages:\n  - {name: a, kind: align, data: x}\n",
     {0},
     "tiny.yaml:3:5: stages[0]: missing required key 'phase'"},
    {"missing_stages",
     "run: {seed: 1}\n",
     {0},
     "tiny.yaml:1:1: (top): missing required key 'stages'"},
    {"missing_data",
     "stages:\n  - {name: a, kind: pretrain}\n",
     {0},
     "tiny.yaml:2:5: stages[0]: missing required key 'data' (a 'pretrain' stage trains on it)"},
    {"duplicate_key",
     STAGE_A "    steps: 5\n    steps: 6\n",
     {0},
     "tiny.yaml:6:5: stages[0].steps: duplicate key (first at line 5)"},
    {"duplicate_stage_name",
     STAGE_A "  - {name: a, kind: eval, tasks: [x]}\n",
     {0},
     "tiny.yaml:5:12: stages[1].name: expected a unique stage name, found 'a' again (first at "
     "stages[0])"},
    {"bad_stage_name",
     "stages:\n  - {name: a b, kind: eval, tasks: [x]}\n",
     {0},
     "tiny.yaml:2:12: stages[0].name: expected a name of 1 to 63 characters [A-Za-z0-9_-], found "
     "'a b'"},
    {"batch_not_divisible",
     STAGE_A "    batch: {global: 16, micro: 5}\n",
     {0},
     "tiny.yaml:5:32: stages[0].batch.micro: expected a divisor of batch.global (16), found 5"},
    {"empty_stages",
     "stages: []\n",
     {0},
     "tiny.yaml:1:9: stages: expected a list of 1 to 32 maps, found an empty list"},
    {"stages_not_list",
     "stages: 3\n",
     {0},
     "tiny.yaml:1:9: stages: expected a list of 1 to 32 maps, found '3'"},
    {"top_not_map",
     "- a\n- b\n",
     {0},
     "tiny.yaml:1:1: (top): expected a map, found a list of 2 items"},
    {"empty_file",
     "# nothing\n",
     {0},
     "tiny.yaml: expected a recipe (a map with a 'stages' list), found an empty document"},
    {"missing_file", NULL, {0}, "tiny.yaml: cannot read the recipe (No such file or directory)"},
    {"from_later_stage",
     STAGE_A "    from: {stage: b}\n  - {name: b, kind: eval, tasks: [x]}\n",
     {0},
     "tiny.yaml:5:19: stages[0].from.stage: expected the name of a stage before this one, found "
     "'b'"},
    {"from_unknown_stage",
     STAGE_A "    from: {stage: zz}\n",
     {0},
     "tiny.yaml:5:19: stages[0].from.stage: expected the name of a stage before this one, found "
     "'zz' (no such stage)"},
    {"from_two_keys",
     STAGE_A "    from: {hf: a, checkpoint: b}\n",
     {0},
     "tiny.yaml:5:11: stages[0].from: expected a map with one key: "
     "stage|checkpoint|hf|random|prev, found a map"},
    {"from_random_false",
     STAGE_A "    from: {random: false}\n",
     {0},
     "tiny.yaml:5:20: stages[0].from.random: expected true (leave the key out for the default), "
     "found 'false'"},
    {"model_from_stage",
     "model: {from: {stage: a}}\n" STAGE_A,
     {0},
     "tiny.yaml:1:23: model.from.stage: expected checkpoint|hf|random (no stage precedes the "
     "first; use stages[i].from), found a stage reference"},
    {"kd_without_teacher",
     "stages:\n  - {name: k, kind: kd, data: x.h5}\n",
     {0},
     "tiny.yaml:2:5: stages[0]: a 'kd' stage needs a teacher: add teacher: {from: ...} at the top "
     "level"},
    {"teacher_after_use",
     "teacher: {from: {stage: t}}\nstages:\n  - {name: k, kind: kd, data: x}\n"
     "  - {name: t, kind: pretrain, data: x}\n",
     {0},
     "tiny.yaml:1:25: teacher.from.stage: expected the name of a stage before stage k "
     "(stages[0]), found 't'"},
    {"hybrid_both_lists",
     "model: {hybrid: {ssm_layers: [0], attn_layers: [1]}}\n" STAGE_A,
     {0},
     "tiny.yaml:1:48: model.hybrid.attn_layers: expected either ssm_layers or attn_layers (its "
     "complement), found both"},
    {"hybrid_index_range",
     "model: {arch: {n_layers: 4}, hybrid: {ssm_layers: [1, 4]}}\n" STAGE_A,
     {0},
     "tiny.yaml:1:55: model.hybrid.ssm_layers[1]: expected a layer index in [0, 4) "
     "(model.arch.n_layers), found 4"},
    {"hybrid_duplicate",
     "model: {hybrid: {ssm_layers: [1, 1]}}\n" STAGE_A,
     {0},
     "tiny.yaml:1:34: model.hybrid.ssm_layers[1]: expected no duplicates in the list, found '1'"},
    {"arch_heads_not_divisor",
     "model: {arch: {d_model: 130, n_heads: 4}}\n" STAGE_A,
     {0},
     "tiny.yaml:1:39: model.arch.n_heads: expected a divisor of d_model (130) when head_dim is not "
     "given, found 4"},
    {"align_without_init",
     "teacher: {from: {hf: t}}\nstages:\n  - {name: a, kind: align, phase: matrix, data: x}\n",
     {0},
     "tiny.yaml:3:5: stages[0]: an align stage needs Mamba layers, but the model has none here "
     "(put an init stage before it)"},
    {"align_layer_not_ssm",
     "model: {hybrid: {ssm_layers: [0]}}\nteacher: {from: {hf: t}}\nstages:\n  - {name: i, kind: "
     "init}\n  - {name: a, kind: align, phase: hidden, data: x, layers: [1]}\n",
     {0},
     "tiny.yaml:5:61: stages[1].layers[0]: expected a Mamba layer of the model here, found 1"},
    {"eval_without_data",
     "stages:\n  - {name: e, kind: eval}\n",
     {0},
     "tiny.yaml:2:5: stages[0]: missing required key 'eval_data' or 'tasks' (an eval stage needs "
     "one)"},
    {"generate_without_prompts",
     "stages:\n  - {name: g, kind: generate}\n",
     {0},
     "tiny.yaml:2:5: stages[0]: missing required key 'prompts'"},
    {"kd_generate_without_prompts",
     "teacher: {from: {hf: t}}\nstages:\n  - {name: k, kind: kd, pseudo_labels: {generate: "
     "true}}\n",
     {0},
     "tiny.yaml:3:40: stages[0].pseudo_labels: missing required key 'prompts' (generate is true)"},
    {"dpo_prompt_len",
     "stages:\n  - {name: d, kind: dpo, data: x, max_len: 64, max_prompt_len: 64}\n",
     {0},
     "tiny.yaml:2:64: stages[0].max_prompt_len: expected less than max_len (64), found 64"},
    {"override_bad_value",
     STAGE_A,
     {"stages.a.optim.lr=abc"},
     "--set stages.a.optim.lr=abc: stages[0].optim.lr: expected a number > 0, found 'abc'"},
    {"override_unknown_key",
     STAGE_A,
     {"stages[0].optim.lrr=1"},
     "--set stages[0].optim.lrr=1: stages[0].optim.lrr: unknown key (did you mean 'lr'?)"},
    {"override_unknown_stage",
     STAGE_A,
     {"stages.b.steps=1"},
     "--set stages.b.steps=1: stages: expected an index or a name (a), found 'b'"},
    {"override_index_range",
     STAGE_A,
     {"stages[3].steps=1"},
     "--set stages[3].steps=1: stages: expected a list with an element 3"},
    {"override_no_equals",
     STAGE_A,
     {"run.seed"},
     "--set run.seed: expected KEY.PATH=VALUE, found 'run.seed'"},
    {"override_yaml_error",
     STAGE_A,
     {"model.hybrid.ssm_layers=[0,"},
     "--set model.hybrid.ssm_layers=[0,: YAML syntax error: did not find expected node content "
     "while parsing a flow node"},
    {"override_through_scalar",
     STAGE_A,
     {"stages.a.data.x=1"},
     "--set stages.a.data.x=1: stages[0].data: expected a map, found 'x.h5'"},
    {"override_creates_unknown_key",
     STAGE_A,
     {"stages.a.steps.x=1"},
     "--set stages.a.steps.x=1: stages[0].steps: expected an integer >= 0, found a map"},
};

// Run one case in the current (temporary) directory.
static void run_case(const error_case *c) {
    unlink("tiny.yaml");
    if (c->yaml) {
        FILE *f = fopen("tiny.yaml", "w");
        fputs(c->yaml, f);
        fclose(f);
    }
    int n_ov = 0;
    while (n_ov < 3 && c->overrides[n_ov]) n_ov++;
    kd_recipe *r = malloc(sizeof *r);
    kd_error err = {0};
    int rc = kd_recipe_load(r, "tiny.yaml", c->overrides, n_ov, &kd_kind_rules, &err);
    if (rc != KD_EINPUT || strcmp(err.msg, c->want) != 0) {
        printf("FAIL %s: rc %d (want %d)\n  got:  %s\n  want: %s\n", c->name, rc, KD_EINPUT,
               err.msg, c->want);
        failures++;
    } else {
        printf("ok   %s\n", c->name);
    }
    if (rc == KD_OK) kd_recipe_free(r);
    if (r->resolved_yaml) {
        printf("FAIL %s: resolved_yaml left allocated after an error\n", c->name);
        failures++;
    }
    free(r);
}

int main(void) {
    char dir[] = "/tmp/kd_recipe_err_XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0) {
        printf("FAIL: cannot make a temporary directory\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);

    // a directory where the recipe should be
    mkdir("adir.yaml", 0755);
    kd_recipe *r = malloc(sizeof *r);
    kd_error err = {0};
    int rc = kd_recipe_load(r, "adir.yaml", NULL, 0, &kd_kind_rules, &err);
    const char *want = "adir.yaml: cannot read the recipe (I/O error or a directory)";
    if (rc != KD_EINPUT || strcmp(err.msg, want)) {
        printf("FAIL directory: rc %d\n  got:  %s\n  want: %s\n", rc, err.msg, want);
        failures++;
    } else {
        printf("ok   directory_as_recipe\n");
    }
    free(r);
    rmdir("adir.yaml");
    unlink("tiny.yaml");
    if (chdir("/") == 0) rmdir(dir);
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
