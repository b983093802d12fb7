// params.h: the named-tensor table. A model's parameters live in one contiguous float
// buffer; the table maps each name (Hugging Face Llama style, e.g.
// "layers.3.mixer.q_proj.weight") to its shape and offset. Gradients and optimizer
// moments mirror the same layout, so allreduce, freezing, checkpoints and safetensors I/O
// are loops over this table. Owned by runtime/model/model.c; read by trainer and checkpoint.
#pragma once
#include <stddef.h>

#define KD_PARAM_NAME_MAX 96

typedef struct {
    char name[KD_PARAM_NAME_MAX];
    int ndim;
    int shape[4];
    size_t offset;  // in floats, from the start of the buffer
    size_t numel;
    int decay;      // 1: weight decay applies (matrices), 0: norms, biases, A_log, D...
} kd_param_info;

typedef struct {
    int n;
    kd_param_info *t;
    size_t total;   // total floats
} kd_param_table;

// Index of `name` or -1.
int kd_params_find(const kd_param_table *pt, const char *name);
