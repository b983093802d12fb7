// export_cli.c: `kdtrain export MODEL --out DIR` (docs/cli.md): load a model (model_arg.h:
// a verified checkpoint, a run's stage or a Hugging Face directory) and write it as a
// Hugging Face directory a user can run (runtime/store/hf_export.c does the writing). The
// special token ids come from the flags, else the --tokenizer directory, else the --data
// dataset, else the source Hugging Face directory, else the byte tokenizer's when the
// vocabulary is its size.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "runtime/cli/cli.h"
#include "runtime/cli/model_arg.h"
#include "runtime/store/hf.h"

static const char *usage_text =
    "usage: kdtrain export MODEL --out DIR [--tokenizer DIR] [--data F.h5] [--bos-id N]\n"
    "                      [--eos-id N[,N...]] [--pad-id N] [--base NAME_OR_DIR]\n"
    "  Write a model as a Hugging Face directory: config.json, model.safetensors (fp32),\n"
    "  generation_config.json; a hybrid also gets mamba_config.json (MambaInLlama's layout)\n"
    "  and a config.json that transformers' Llama classes refuse (docs/hybrid.md).\n"
    "  MODEL is a checkpoint directory, a ckpt/ directory (newest valid checkpoint),\n"
    "  RUN_DIR:STAGE or a Hugging Face directory (re-export).\n"
    "  --tokenizer DIR   copy tokenizer.json, tokenizer_config.json, special_tokens_map.json,\n"
    "                    tokenizer.model from DIR and take the special token ids from it\n"
    "                    (default: the Hugging Face tokenizer MODEL records, if any)\n"
    "  --data F.h5       take the special token ids the dataset records (bos/eos/pad_id)\n"
    "  --bos-id N, --eos-id N[,N...], --pad-id N   special token ids (override the others;\n"
    "                    several eos ids: generation stops at any)\n"
    "  --base NAME_OR_DIR   hybrids: the Llama the student was distilled from, written as\n"
    "                    config.json \"_name_or_path\" for MambaInLlama's loader\n"
    "exit status: 0 ok, 2 bad input, 3 runtime failure\n";

typedef struct {
    const char *model, *out, *data;
    kd_hf_export_opts x;
} export_opts;

static int id_arg(const char *flag, const char *s, int *out, kd_error *err) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || (*end && *end != ',') || v < 0 || v > (1 << 30))
        return kd_fail(err, KD_EINPUT, "%s: expected a token id (integer >= 0), found '%s'", flag,
                       s);
    *out = (int)v;
    return KD_OK;
}

static int eos_arg(const char *s, kd_hf_ids *ids, kd_error *err) {
    ids->n_eos = 0;
    for (const char *p = s;; p = strchr(p, ',') + 1) {
        if (ids->n_eos == KD_HF_MAX_EOS)
            return kd_fail(err, KD_EINPUT, "--eos-id: at most %d ids, found '%s'", KD_HF_MAX_EOS,
                           s);
        int rc = id_arg("--eos-id", p, &ids->eos[ids->n_eos++], err);
        if (rc) return rc;
        if (!strchr(p, ',')) return KD_OK;
    }
}

static int parse(int argc, char **argv, export_opts *o, kd_error *err) {
    memset(o, 0, sizeof *o);
    kd_hf_ids_init(&o->x.ids);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = KD_OK;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return -1;
        } else if (a[0] != '-') {
            if (o->model)
                return kd_fail(err, KD_EINPUT, "unexpected argument '%s' (one MODEL only)", a);
            o->model = a;
            continue;
        } else if (!v) {
            return kd_fail(err, KD_EINPUT, "%s: missing value (see kdtrain export --help)", a);
        } else if (!strcmp(a, "--out")) {
            o->out = v;
        } else if (!strcmp(a, "--tokenizer")) {
            o->x.tokenizer_dir = v;
        } else if (!strcmp(a, "--data")) {
            o->data = v;
        } else if (!strcmp(a, "--base")) {
            o->x.base = v;
        } else if (!strcmp(a, "--bos-id")) {
            rc = id_arg(a, v, &o->x.ids.bos, err);
        } else if (!strcmp(a, "--pad-id")) {
            rc = id_arg(a, v, &o->x.ids.pad, err);
        } else if (!strcmp(a, "--eos-id")) {
            rc = eos_arg(v, &o->x.ids, err);
        } else {
            return kd_fail(err, KD_EINPUT, "unknown option '%s' (see kdtrain export --help)", a);
        }
        if (rc) return rc;
        i++;
    }
    if (!o->model || !o->out)
        return kd_fail(err, KD_EINPUT, "need MODEL and --out DIR (see kdtrain export --help)");
    return KD_OK;
}

// The ids a dataset records (-1: none) where still unknown.
static int ids_from_data(const char *path, kd_hf_ids *ids, kd_error *err) {
    kd_dataset *ds = NULL;
    int rc = kd_dataset_open(&ds, path, err);
    if (rc) return rc;
    const kd_dataset_info *in = kd_dataset_get_info(ds);
    if (ids->bos < 0) ids->bos = in->bos_id;
    if (!ids->n_eos && in->eos_id >= 0) ids->eos[ids->n_eos++] = in->eos_id;
    if (ids->pad < 0) ids->pad = in->pad_id;
    kd_dataset_close(ds);
    return KD_OK;
}

// Ids the flags left unknown: from the tokenizer directory, the dataset, the source HF
// directory, or the byte tokenizer (a model whose vocabulary is exactly its size).
static int fill_ids(export_opts *o, const kd_model_source *src, int vocab, kd_error *err) {
    int rc = o->x.tokenizer_dir ? kd_hf_read_ids(o->x.tokenizer_dir, &o->x.ids, err) : KD_OK;
    if (!rc && o->data) rc = ids_from_data(o->data, &o->x.ids, err);
    if (!rc && src->hf) rc = kd_hf_read_ids(src->path, &o->x.ids, err);
    kd_hf_ids *ids = &o->x.ids;
    if (!rc && vocab == KD_TOK_BYTES_VOCAB && !o->x.tokenizer_dir) {
        if (ids->bos < 0) ids->bos = KD_TOK_BYTES_BOS;
        if (!ids->n_eos) ids->eos[ids->n_eos++] = KD_TOK_BYTES_EOS;
        if (ids->pad < 0) ids->pad = KD_TOK_BYTES_PAD;
    }
    return rc;
}

// No --tokenizer: the Hugging Face tokenizer the model records (its checkpoint's, or the
// source directory's tokenizer.json), if its file is still the one it was trained with.
static int recorded_tokenizer(export_opts *o, const kd_model *m, char *dir, size_t n, kd_error *err) {
    const char *spec = kd_model_tokenizer(m);
    if (o->x.tokenizer_dir || !spec[0] || !strcmp(spec, KD_TOK_BYTES_NAME)) return KD_OK;
    char fp[65], abs[KD_MODEL_TOK_SPEC_MAX];
    int rc = kd_tokenizer_identify(spec, abs, sizeof abs, fp, err);
    if (rc) {
        kd_error_prefix(err, "%s: the tokenizer the model records: ", o->model);
        return rc;
    }
    if (strcmp(fp, kd_model_tokenizer_fp(m)) != 0)
        return kd_fail(err, KD_EINPUT, "%s: the model records tokenizer %s with fingerprint %.16s..., the "
                       "file there now has %.16s...: pass --tokenizer DIR", o->model, spec,
                       kd_model_tokenizer_fp(m), fp);
    size_t len = strlen(spec);
    if (len > 5 && !strcmp(spec + len - 5, ".json")) { // a tokenizer.json path: its directory
        const char *slash = strrchr(spec, '/');
        snprintf(dir, n, "%.*s", slash ? (int)(slash - spec) : 1, slash ? spec : ".");
    } else {
        snprintf(dir, n, "%s", spec);
    }
    o->x.tokenizer_dir = dir;
    return KD_OK;
}

int kd_export_main(int argc, char **argv, kd_comm *comm) {
    kd_error err = {0};
    export_opts o;
    int rc = parse(argc, argv, &o, &err);
    if (rc == -1) return KD_OK;
    kd_model *m = NULL;
    kd_model_source src;
    char tokdir[KD_MODEL_TOK_SPEC_MAX];
    if (!rc) rc = kd_model_arg_load(comm, o.model, kd_ops_cpu(), 1, &m, &src, &err);
    if (!rc) rc = recorded_tokenizer(&o, m, tokdir, sizeof tokdir, &err);
    if (!rc) rc = fill_ids(&o, &src, kd_model_cfg(m)->vocab_size, &err);
    if (!rc && kd_comm_rank(comm) == 0) rc = kd_hf_export(m, o.out, &o.x, &err);
    kd_model_free(m);
    if (rc) {
        fprintf(stderr, "kdtrain: error: export: %s\n", err.msg);
        return rc;
    }
    if (kd_comm_rank(comm) == 0) printf("kdtrain: exported %s to %s\n", src.path, o.out);
    return KD_OK;
}
