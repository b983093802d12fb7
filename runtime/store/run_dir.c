// run_dir.c: DONE markers with run-relative checkpoint paths and RUN_DIR:STAGE references
// (run_dir.h). Nothing here depends on the working directory a run was started in.
#include "runtime/store/run_dir.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/base/fs.h"
#include "runtime/store/checkpoint.h"

enum { RD_PATH = 4096 };

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// ----------------------------------------------------------------------------- DONE

// ckpt as stored: relative to run_dir when it lies under it ("stages/NN-x/ckpt/step-N").
static const char *relative_to(const char *run_dir, const char *ckpt) {
    size_t k = strlen(run_dir);
    while (k > 1 && run_dir[k - 1] == '/') k--;
    if (strncmp(ckpt, run_dir, k) == 0 && ckpt[k] == '/' && ckpt[k + 1]) return ckpt + k + 1;
    return ckpt;
}

int kd_run_dir_write_done(const char *run_dir, const char *stage_dir, const char *ckpt,
                          int64_t step, double eval_loss, kd_error *err) {
    char path[RD_PATH], text[RD_PATH + 128];
    snprintf(path, sizeof path, "%s/DONE", stage_dir);
    int n = snprintf(text, sizeof text, "checkpoint %s\nstep %lld\neval_loss %.9g\n",
                     relative_to(run_dir, ckpt), (long long)step, eval_loss);
    return kd_write_file_atomic(path, text, (size_t)n, err);
}

// A stored path -> a usable one: absolute as is; relative against run_dir; a marker of an
// older version (relative to where the run started, "runs/x/stages/...") by its
// "stages/..." tail, against run_dir. The run_dir form when nothing exists, so a later
// error names the path that was tried.
static void resolve_stored(const char *run_dir, const char *stored, char *out, size_t n) {
    if (stored[0] == '/') {
        snprintf(out, n, "%s", stored);
        return;
    }
    snprintf(out, n, "%s/%s", run_dir, stored);
    if (exists(out)) return;
    for (const char *s = strstr(stored, "stages/"); s; s = strstr(s + 1, "stages/")) {
        if (s != stored && s[-1] != '/') continue;
        char tail[RD_PATH];
        snprintf(tail, sizeof tail, "%s/%s", run_dir, s);
        if (exists(tail)) {
            snprintf(out, n, "%s", tail);
            return;
        }
    }
    if (exists(stored)) snprintf(out, n, "%s", stored);
}

int kd_run_dir_read_done(const char *run_dir, const char *stage_dir, char *ckpt, size_t n) {
    char path[RD_PATH], line[RD_PATH];
    snprintf(path, sizeof path, "%s/DONE", stage_dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = 0;
    if (fgets(line, sizeof line, f) && strncmp(line, "checkpoint ", 11) == 0) {
        line[strcspn(line, "\n")] = '\0';
        resolve_stored(run_dir, line + 11, ckpt, n);
        ok = 1;
    }
    fclose(f);
    return ok;
}

// ----------------------------------------------------------------------------- references

// RUN_DIR:STAGE -> the stage directory RUN_DIR/stages/NN-STAGE in sdir.
static int find_stage(const char *spec, const char *run, const char *stage, char *sdir, size_t n,
                      kd_error *err) {
    char stages[RD_PATH];
    snprintf(stages, sizeof stages, "%s/stages", run);
    DIR *d = opendir(stages);
    if (!d) {
        if (!exists(run))
            return kd_fail(err, KD_EINPUT, "%s: run directory is missing: %s", spec, run);
        return kd_fail(err, KD_EINPUT, "%s: expected a run directory with stages/ in '%s'", spec,
                       run);
    }
    sdir[0] = '\0';
    for (struct dirent *e; (e = readdir(d));) {
        const char *dash = strchr(e->d_name, '-');
        if (dash && !strcmp(dash + 1, stage)) snprintf(sdir, n, "%s/%s", stages, e->d_name);
    }
    closedir(d);
    if (!sdir[0])
        return kd_fail(err, KD_EINPUT, "%s: run has no stage '%s' under %s", spec, stage, stages);
    return KD_OK;
}

int kd_run_dir_resolve_model(const char *spec, char *out, size_t n, kd_error *err) {
    char tmp[RD_PATH];
    snprintf(tmp, sizeof tmp, "%s/MANIFEST", spec);
    if (exists(tmp)) {
        snprintf(out, n, "%s", spec);
        return KD_OK;
    }
    if (is_dir(spec)) { // a ckpt/ root
        if (kd_ckpt_find_latest(spec, out, n, NULL)) return KD_OK;
        return kd_fail(err, KD_EINPUT,
                       "%s: neither a checkpoint (no MANIFEST), a Hugging Face directory (no "
                       "config.json) nor a directory holding a valid step-* checkpoint",
                       spec);
    }
    const char *colon = strrchr(spec, ':');
    if (!colon)
        return kd_fail(err, KD_EINPUT, "%s: no such checkpoint directory (or RUN_DIR:STAGE)", spec);
    char run[RD_PATH], sdir[RD_PATH];
    snprintf(run, sizeof run, "%.*s", (int)(colon - spec), spec);
    const char *stage = colon + 1;
    int rc = find_stage(spec, run, stage, sdir, sizeof sdir, err);
    if (rc) return rc;
    if (kd_run_dir_read_done(run, sdir, out, n)) {
        if (is_dir(out)) return KD_OK;
        return kd_fail(err, KD_EINPUT, "%s: file is missing: %s (the final checkpoint named by %s/DONE)",
                       spec, out, sdir);
    }
    snprintf(tmp, sizeof tmp, "%s/ckpt", sdir);
    if (kd_ckpt_find_latest(tmp, out, n, NULL)) return KD_OK;
    return kd_fail(err, KD_EINPUT, "%s: stage '%s' has neither finished nor a valid checkpoint in %s",
                   spec, stage, tmp);
}
