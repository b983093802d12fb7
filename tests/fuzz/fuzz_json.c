// fuzz_json.c: libFuzzer harness for the JSON parser (runtime/base/json.c). Any input must give
// either a tree that can be walked and freed, or KD_EINPUT with a one-line message.
#include <stdint.h>
#include <string.h>

#include "runtime/base/json.h"

// Touch every node so that a malformed tree (bad n, dangling pointer) is read by ASan.
static size_t walk(const kd_json *v) {
    size_t sum = v->type + (v->key ? v->key_len : 0);
    if (v->type == KD_JSON_STRING) sum += v->len + (unsigned char)v->str[v->len];
    for (size_t i = 0; i < v->n; i++) sum += walk(kd_json_at(v, i));
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kd_json *root = NULL;
    kd_error err = {0};
    int rc = kd_json_parse((const char *)data, size, "fuzz.json", &root, &err);
    if (rc == KD_OK) {
        volatile size_t s = walk(root);
        (void)s;
        (void)kd_json_get(root, "weight_map");
        kd_json_free(root);
    } else if (rc != KD_EINPUT || root || !err.msg[0] || strchr(err.msg, '\n')) {
        __builtin_trap(); // errors are KD_EINPUT, one line, and leave no tree
    }
    return 0;
}
