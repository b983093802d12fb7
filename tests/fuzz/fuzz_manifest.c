// fuzz_manifest.c: libFuzzer harness for checkpoint verification (runtime/store/checkpoint.c):
// the fuzzed bytes are the MANIFEST of a checkpoint directory that also holds model.h5,
// state.json and optim.h5, and kd_ckpt_verify judges it. It must return 0 or 1 with a
// one-line reason, never read outside the directory's files or crash.
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "runtime/store/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[600], manifest[700];
    if (!dir[0]) {
        kd_fuzz_path(dir, sizeof dir, "step-00000001");
        mkdir(dir, 0700);
        const char *files[][2] = {
            {"model.h5", "weights"}, {"state.json", "{}\n"}, {"optim.h5", ""}};
        for (int i = 0; i < 3; i++) {
            char p[800];
            snprintf(p, sizeof p, "%s/%s", dir, files[i][0]);
            kd_fuzz_write(p, files[i][1], strlen(files[i][1]));
        }
        snprintf(manifest, sizeof manifest, "%s/MANIFEST", dir);
    }
    kd_fuzz_write(manifest, data, size);
    char why[1024];
    int ok = kd_ckpt_verify(dir, why, sizeof why);
    if (ok != 0 && ok != 1) __builtin_trap();
    if (!ok && (!why[0] || strchr(why, '\n'))) __builtin_trap();
    return 0;
}
