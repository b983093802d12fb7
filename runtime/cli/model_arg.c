// model_arg.c: the MODEL argument of generate and export (model_arg.h).
#include "runtime/cli/model_arg.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/store/checkpoint.h"
#include "runtime/store/hf.h"
#include "runtime/store/model_io.h"
#include "runtime/store/run_dir.h"

static int exists(const char *dir, const char *name) {
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

int kd_model_arg_resolve(const char *spec, kd_model_source *src, kd_error *err) {
    memset(src, 0, sizeof *src);
    if (exists(spec, "MANIFEST")) { // a checkpoint
        snprintf(src->path, sizeof src->path, "%s", spec);
        return KD_OK;
    }
    if (exists(spec, "config.json")) { // a Hugging Face directory
        snprintf(src->path, sizeof src->path, "%s", spec);
        src->hf = 1;
        return KD_OK;
    }
    // a ckpt/ root or RUN_DIR:STAGE (relocatable: runtime/store/run_dir.h)
    return kd_run_dir_resolve_model(spec, src->path, sizeof src->path, err);
}

int kd_model_arg_load(kd_comm *comm, const char *spec, const kd_ops *ops, int verify,
                      kd_model **out, kd_model_source *src, kd_error *err) {
    *out = NULL;
    char why[512];
    int rc = kd_model_arg_resolve(spec, src, err);
    if (!rc && verify && !src->hf && !kd_ckpt_verify(src->path, why, sizeof why))
        rc = kd_fail(err, KD_EINPUT, "%s", why);
    if ((rc = kd_comm_agree(comm, rc, err))) return rc;
    if (src->hf) {
        rc = kd_hf_load(src->path, ops, 0, out, err);
        if ((rc = kd_comm_agree(comm, rc, err))) { // another rank may have failed alone
            kd_model_free(*out);
            *out = NULL;
        }
        return rc;
    }
    return kd_model_load(comm, src->path, ops, 0, out, err);
}
