// fuzz_dataset.c: libFuzzer harness for the HDF5 token-dataset validator (data/dataset.c):
// the fuzzed bytes are written as a file and opened with kd_dataset_open. An input that
// opens must then read its first windows without error (open promises that later reads
// fail only on I/O errors); anything else must be KD_EINPUT with a one-line message.
#include <hdf5.h>
#include <stdint.h>
#include <string.h>

#include "data/dataset.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[600];
    if (!path[0]) {
        kd_fuzz_path(path, sizeof path, "data.h5");
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL); // no HDF5 error stacks on stderr
    }
    kd_fuzz_write(path, data, size);
    kd_dataset *ds = NULL;
    kd_error err = {0};
    int rc = kd_dataset_open(&ds, path, &err);
    if (rc != KD_OK) {
        if (rc != KD_EINPUT || ds || !err.msg[0] || strchr(err.msg, '\n')) __builtin_trap();
        return 0;
    }
    const kd_dataset_info *in = kd_dataset_get_info(ds);
    enum { SEQ = 8, N = 2 };
    uint64_t nw = kd_dataset_n_windows(ds, SEQ);
    if (nw > 0) {
        uint64_t idx[N] = {0, nw - 1};
        int32_t tok[N * (SEQ + 1)];
        float w[N * SEQ];
        if (kd_dataset_read_windows(ds, idx, N, SEQ, tok, w, &err) != KD_OK) __builtin_trap();
        for (int i = 0; i < N * (SEQ + 1); i++)
            if (tok[i] < 0 || tok[i] >= in->vocab_size) __builtin_trap(); // open checked ids
    }
    kd_dataset_close(ds);
    return 0;
}
