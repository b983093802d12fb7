// test_ckpt_fault.c: failures during save and the retention policy, on 2 ranks.
// Proves: an I/O error (root path under a file; ENOSPC injected into the data writes of
// model.h5 and of optim.h5; EACCES when not root) gives KD_ERUNTIME with the same message (path +
// strerror) on every rank, leaves neither a
// step-* nor a .tmp-* directory, and the previous checkpoint stays valid and loadable.
// Prune keeps the newest `keep` valid checkpoints, deletes older and broken ones and
// leftover .tmp-* dirs, and never deletes the only valid one.
#include <mpi.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_ckpt_fixture.h"

static int rank;
static char base[256], root[300];

static int exists(const char *name) {
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", root, name);
    return stat(p, &sb) == 0;
}

// Every rank must report the same error text: compare with rank 0's.
static void same_everywhere(const kd_error *err) {
    char r0[sizeof err->msg];
    memcpy(r0, err->msg, sizeof r0);
    MPI_Bcast(r0, sizeof r0, MPI_CHAR, 0, MPI_COMM_WORLD);
    CHECK(strcmp(r0, err->msg) == 0, "ranks disagree:\n  rank 0: %s\n  here:   %s", r0, err->msg);
}

// After a failed save of step 20: nothing of it on disk, step 10 still valid and loadable.
static void nothing_half_written(const char *what) {
    if (rank == 0) {
        CHECK(!exists("step-00000020") && !exists(".tmp-step-00000020"), "%s: step 20 left on disk",
              what);
        char dir[600], why[1024];
        snprintf(dir, sizeof dir, "%s/step-00000010", root);
        CHECK(kd_ckpt_verify(dir, why, sizeof why), "%s: previous checkpoint broken: %s", what,
              why);
    }
    kd_param_table pt = fx_table(-1);
    float *p = calloc(pt.total, sizeof(float));
    kd_error err = {0};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/step-00000010", root);
    int rc = kd_ckpt_load(kd_comm_world(), dir, &pt, p, NULL, NULL, NULL, &err);
    CHECK(rc == KD_OK && fx_first_diff(p, 0, 0, pt.total, 1) < 0, "%s: reload step 10: %s", what,
          err.msg);
    free(p), free(pt.t);
}

// Save step 20 with the data writes to `file` failing with ENOSPC on rank 0 (the test
// hook KD_CKPT_FAIL_WRITE; all file I/O is on rank 0). Rank 1 must get the same error.
static void fail_writing(const char *file) {
    if (rank == 0) setenv("KD_CKPT_FAIL_WRITE", file, 1);
    kd_error err = {0};
    int rc = fx_save(root, 20, 2, 0, 0, NULL, 0, &err);
    if (rank == 0) unsetenv("KD_CKPT_FAIL_WRITE");
    CHECK(rc == KD_ERUNTIME && strstr(err.msg, "No space left on device") &&
              strstr(err.msg, root) && strstr(err.msg, file),
          "ENOSPC in %s: rc %d msg %s", file, rc, err.msg);
    same_everywhere(&err);
    if (rank == 0) printf("ok: write failure -> %s\n", err.msg);
    char what[64];
    snprintf(what, sizeof what, "ENOSPC in %s", file);
    nothing_half_written(what);
}

int main(int argc, char **argv) {
    if (fx_mpi_begin(&argc, &argv, base, sizeof base, "ckpt_fault")) return MPI_Finalize(), 1;
    rank = check_rank;
    snprintf(root, sizeof root, "%s/ckpt", base);
    kd_error err = {0};
    int rc = fx_save(root, 10, 1, 0, 0, NULL, 0, &err);
    CHECK(rc == KD_OK, "first save: %s", err.msg);

    // --- a root that cannot be a directory
    char bad[400];
    snprintf(bad, sizeof bad, "%s/afile", base);
    if (rank == 0) fclose(fopen(bad, "w"));
    MPI_Barrier(MPI_COMM_WORLD);
    strcat(bad, "/ckpt");
    rc = fx_save(bad, 20, 2, 0, 0, NULL, 0, &err);
    CHECK(rc == KD_ERUNTIME && strstr(err.msg, "Not a directory") && strstr(err.msg, bad),
          "root under a file: rc %d msg %s", rc, err.msg);
    same_everywhere(&err);

    // --- permission denied (root ignores mode bits, so only as another user)
    if (geteuid() != 0) {
        if (rank == 0) chmod(root, 0555);
        MPI_Barrier(MPI_COMM_WORLD);
        rc = fx_save(root, 20, 2, 0, 0, NULL, 0, &err);
        if (rank == 0) chmod(root, 0755);
        CHECK(rc == KD_ERUNTIME && strstr(err.msg, "Permission denied"), "EACCES: rc %d %s", rc,
              err.msg);
        same_everywhere(&err);
        nothing_half_written("EACCES");
    } else if (rank == 0) {
        printf("note: running as root, EACCES case skipped (mode bits do not apply)\n");
    }

    // --- no space left while writing the parameters, then during the optimizer-shard
    // gathers of optim.h5 (after model.h5 was complete)
    fail_writing("model.h5");
    fail_writing("optim.h5");

    // --- retention: steps 10, 30, 40 (broken), 50, 60, a leftover tmp, a broken newest 80
    for (int s = 30; s <= 60; s += 10) fx_save(root, s, s, 1, 0, NULL, 0, &err);
    if (rank == 0) {
        char p[600];
        snprintf(p, sizeof p, "%s/step-00000040/model.h5", root);
        CHECK(truncate(p, 100) == 0, "truncate %s", p);
        snprintf(p, sizeof p, "%s/.tmp-step-00000070", root);
        mkdir(p, 0777);
        snprintf(p, sizeof p, "%s/step-00000080", root);
        mkdir(p, 0777); // no MANIFEST: does not exist as a checkpoint, newer than all valid
    }
    rc = kd_ckpt_prune(kd_comm_world(), root, 2, &err);
    CHECK(rc == KD_OK, "prune: %s", err.msg);
    if (rank == 0) {
        const char *kept[] = {"step-00000080", "step-00000060", "step-00000050"};
        const char *gone[] = {"step-00000040", "step-00000030", "step-00000010",
                              ".tmp-step-00000070"};
        for (int i = 0; i < 3; i++) CHECK(exists(kept[i]), "prune keep=2 deleted %s", kept[i]);
        for (int i = 0; i < 4; i++) CHECK(!exists(gone[i]), "prune keep=2 left %s", gone[i]);
    }
    rc = kd_ckpt_prune(kd_comm_world(), root, 1, &err);
    CHECK(rc == KD_OK && (rank || (exists("step-00000060") && !exists("step-00000050"))),
          "prune keep=1: rc %d, 60 %d 50 %d", rc, exists("step-00000060"), exists("step-00000050"));
    // the only valid checkpoint is broken now: nothing valid, so nothing may be deleted
    if (rank == 0) {
        char p[600];
        snprintf(p, sizeof p, "%s/step-00000060/state.json", root);
        CHECK(truncate(p, 3) == 0, "truncate %s", p);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    rc = kd_ckpt_prune(kd_comm_world(), root, 1, &err);
    CHECK(rc == KD_OK && (rank || (exists("step-00000060") && exists("step-00000080"))),
          "prune with no valid checkpoint deleted something");

    return fx_mpi_end(base, "fault: failed saves leave nothing behind; prune policy holds");
}
