// checkpoint_internal.h: private interface between the checkpoint files: checkpoint.c
// (directory life cycle, MANIFEST, save/load/prune), checkpoint_h5.c (model.h5/optim.h5)
// and checkpoint_state.c (state.json). Not for use outside runtime/store/checkpoint*.c.
// Invariant: every helper returns KD_OK or an error code with kd_error filled.
#pragma once
#include <hdf5.h>

#include "runtime/store/checkpoint.h"

#define KD_CKPT_FORMAT_ATTR "kdtrain_format" // root attribute of model.h5 / optim.h5
#define KD_CKPT_VERSION_ATTR "kdtrain_version"
#define KD_CKPT_FORMAT_NAME "kdtrain-checkpoint" // file/MANIFEST format tag

// Collective: rank 0 creates `path` holding, for each of ngroups groups, full-shape
// float32 datasets /<group>/<name> for every table entry, and root attributes (format and
// version tags, attrs, and "step" if step >= 0). replicated: data[g] is the full buffer,
// read on rank 0 only; else data[g] is this rank's kd_shard_range (data[g][0] = element lo),
// gathered to rank 0 piece by piece. Only rank 0 does I/O, so only rank 0 can fail: the
// caller agrees on the status with kd_comm_agree.
int kd_ckpt_h5_write(kd_comm *comm, const char *path, const kd_param_table *pt,
                     const char *const *groups, const float *const *data, int ngroups,
                     int replicated, const kd_ckpt_attr *attrs, int n_attrs, int64_t step,
                     kd_error *err);

// Non-collective: check that /<group> of `path` holds exactly pt's names and shapes
// (KD_EINPUT naming the first mismatch, `shown` used as the file's name in messages).
int kd_ckpt_h5_check(const char *path, const char *shown, const char *group,
                     const kd_param_table *pt, kd_error *err);

// Non-collective: read flat elements [lo, hi) of /<group> in pt's layout into dst.
int kd_ckpt_h5_read(const char *path, const char *group, const kd_param_table *pt, size_t lo,
                    size_t hi, float *dst, kd_error *err);

// Root integer attribute `name` of `path` into *out.
int kd_ckpt_h5_read_int_attr(const char *path, const char *name, int64_t *out, kd_error *err);

// state.json: write (fsynced) and read.
int kd_ckpt_state_write(const char *path, const kd_train_state *ts, kd_error *err);
int kd_ckpt_state_read(const char *path, kd_train_state *ts, kd_error *err);
