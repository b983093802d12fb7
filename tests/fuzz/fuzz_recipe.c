// fuzz_recipe.c: libFuzzer harness for the recipe loader (runtime/recipe*.c, yaml_tree.c):
// the fuzzed bytes are a recipe file given to kd_recipe_load. Any input must load (and
// then emit its resolved YAML) or fail with KD_EINPUT and a one-line message.
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "runtime/config/recipe.h"
#include "stages/kind.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static kd_recipe *r; // hundreds of KiB: allocated once
    static char path[600];
    if (!r) {
        r = kd_calloc(1, sizeof *r);
        kd_fuzz_path(path, sizeof path, "recipe.yaml");
    }
    kd_fuzz_write(path, data, size);
    kd_error err = {0};
    int rc = kd_recipe_load(r, path, NULL, 0, &kd_kind_rules, &err);
    if (rc == KD_OK) {
        volatile uint64_t h = kd_stage_model_hash(r, r->n_stages - 1);
        (void)h;
        if (!r->resolved_yaml) __builtin_trap();
    } else if (rc != KD_EINPUT || !err.msg[0] || strchr(err.msg, '\n')) {
        __builtin_trap();
    }
    kd_recipe_free(r);
    return 0;
}
