// fuzz_safetensors.c: libFuzzer harness for safetensors reading (runtime/store/safetensors.c):
// the fuzzed bytes are a .safetensors file. Open validates every header entry against the
// file size, so each listed tensor that is small enough must then read without error.
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "runtime/store/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[600];
    static float buf[1 << 16];
    if (!path[0]) kd_fuzz_path(path, sizeof path, "model.safetensors");
    kd_fuzz_write(path, data, size);
    kd_safetensors *st = NULL;
    kd_error err = {0};
    int rc = kd_safetensors_open(path, &st, &err);
    if (rc != KD_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n') || st) __builtin_trap();
        return 0;
    }
    (void)kd_safetensors_metadata(st, "format");
    for (size_t i = 0; i < kd_safetensors_count(st); i++) {
        const kd_safetensors_tensor *t = kd_safetensors_at(st, i);
        if (t->end > size || t->begin > t->end) __builtin_trap(); // promised by open
        int is_float =
            !strcmp(t->dtype, "F32") || !strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16");
        if (!is_float || t->numel > (int64_t)(sizeof buf / sizeof buf[0])) continue;
        kd_error e2 = {0};
        if (kd_safetensors_read_f32(st, t->name, buf, (size_t)t->numel, &e2) != KD_OK)
            __builtin_trap();
    }
    kd_safetensors_close(st);
    return 0;
}
