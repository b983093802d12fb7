// hf_internal.h: helpers shared by the Hugging Face import (hf.c, hf_config.c) and export
// (hf_export.c). Not for callers outside runtime/store/hf*.c.
#pragma once
#include "runtime/base/json.h"
#include "runtime/model/model.h"

// kdtrain tensor name -> HF name (Mamba-2 mixers under ".mamba.", attention ".self_attn.").
void kd_hf_name(const kd_model_config *c, const char *ours, char *hf, size_t n);
// path into a NUL-terminated buffer (caller frees; 64 MiB at most); NULL with err filled.
char *kd_hf_read_text(const char *path, kd_error *err);
// path parsed as a JSON object (*out: caller frees with kd_json_free).
int kd_hf_parse_file(const char *path, kd_json **out, kd_error *err);
