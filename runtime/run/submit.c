// submit.c: kd_submit (submit.h): one sbatch script per stage, submitted as a chain
// that survives preemption. The script format is documented in docs/slurm.md; the
// scripts trap the preemption signal, forward it to kdtrain (which saves and exits 75)
// and requeue their own job until --max-requeues.
#include "runtime/run/submit.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/base/fs.h"
#include "runtime/base/strbuf.h"
#include "runtime/config/recipe.h"
#include "stages/kind.h"

// ----------------------------------------------------------------------------- helpers

// Append s as one single-quoted shell word ('it'\''s').
static void sb_quote(kd_strbuf *b, const char *s) {
    kd_strbuf_printf(b, "'");
    for (; *s; s++) {
        if (*s == '\'')
            kd_strbuf_printf(b, "'\\''");
        else
            kd_strbuf_printf(b, "%c", *s);
    }
    kd_strbuf_printf(b, "'");
}

int kd_slurm_capture(const char *cmdline, char *out, size_t cap) {
    if (cap) out[0] = '\0';
    FILE *p = popen(cmdline, "r");
    if (!p) return -1;
    size_t n = 0;
    char chunk[512];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0) {
        size_t take = cap > n + 1 ? cap - n - 1 : 0;
        if (take > got) take = got;
        memcpy(out + n, chunk, take);
        n += take;
    }
    if (cap) out[n] = '\0';
    int st = pclose(p);
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int abs_path(const char *path, char *out, size_t cap, kd_error *err) {
    if (path[0] == '/') {
        snprintf(out, cap, "%s", path);
        return KD_OK;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return kd_fail(err, KD_ERUNTIME, "getcwd: %s", strerror(errno));
    snprintf(out, cap, "%s/%s", cwd, path[0] == '.' && path[1] == '/' ? path + 2 : path);
    return KD_OK;
}

// Mark the stages named in the comma list (all when list is NULL). Names must exist.
static int select_stages(const kd_recipe *r, const char *list, int *sel, kd_error *err) {
    for (int i = 0; i < r->n_stages; i++) sel[i] = list == NULL;
    if (!list) return KD_OK;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = kd_recipe_stage_index(r, t);
        if (k < 0) {
            char names[512] = "";
            for (int i = 0; i < r->n_stages; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                         r->stages[i].name);
            return kd_fail(err, KD_EINPUT, "--stages: no stage named '%s' in %s (stages: %s)", t,
                           r->path, names);
        }
        sel[k] = 1;
    }
    return KD_OK;
}

// ----------------------------------------------------------------------------- script

typedef struct {
    const kd_submit_opts *o;
    const kd_recipe *r;
    const char *exe, *recipe_abs, *cwd, *run_abs;
} script_ctx;

// The sbatch script of stage i. Dependencies are given on the sbatch command line.
static void write_script(kd_strbuf *b, const script_ctx *c, int i) {
    const kd_submit_opts *o = c->o;
    const kd_stage_spec *s = &c->r->stages[i];
    char tag[KD_NAME_MAX + 8];
    snprintf(tag, sizeof tag, "%02d-%s", i, s->name);
    kd_strbuf_printf(b, "#!/bin/bash\n");
    kd_strbuf_printf(b, "# kdtrain stage %s of run '%s' (written by kdtrain submit; docs/slurm.md)\n", tag,
              c->r->run.name);
    kd_strbuf_printf(b, "#SBATCH --job-name=%s.%s\n", c->r->run.name, s->name);
    kd_strbuf_printf(b, "#SBATCH --nodes=%d\n#SBATCH --ntasks-per-node=%d\n", o->nodes,
              o->ntasks_per_node);
    if (o->gpus_per_node) kd_strbuf_printf(b, "#SBATCH --gpus-per-node=%d\n", o->gpus_per_node);
    if (o->partition) kd_strbuf_printf(b, "#SBATCH --partition=%s\n", o->partition);
    if (o->time_limit) kd_strbuf_printf(b, "#SBATCH --time=%s\n", o->time_limit);
    if (o->account) kd_strbuf_printf(b, "#SBATCH --account=%s\n", o->account);
    kd_strbuf_printf(b, "#SBATCH --chdir=%s\n", c->cwd);
    kd_strbuf_printf(b, "#SBATCH --output=%s/slurm/%s.log\n", c->run_abs, tag);
    kd_strbuf_printf(b, "#SBATCH --open-mode=append\n#SBATCH --requeue\n");
    kd_strbuf_printf(b, "#SBATCH --signal=B:USR1@%d\n", o->signal_secs);
    for (int k = 0; k < o->n_sbatch_args; k++) kd_strbuf_printf(b, "#SBATCH %s\n", o->sbatch_args[k]);
    kd_strbuf_printf(b, "\nset -u\nstage=%s\nmax_requeues=%d\nrestart=${SLURM_RESTART_COUNT:-0}\n",
              s->name, o->max_requeues);
    kd_strbuf_printf(b, "done_marker=");
    char done[KD_PATH_MAX * 2 + 64];
    snprintf(done, sizeof done, "%s/stages/%s/DONE", c->run_abs, tag);
    sb_quote(b, done);
    kd_strbuf_printf(b, "\nsay() { echo \"kdtrain-slurm: $(date '+%%F %%T') job ${SLURM_JOB_ID} stage "
                 "$stage: $*\"; }\n");
    kd_strbuf_printf(b,
              "say \"start (restart $restart of at most $max_requeues) on ${SLURMD_NODENAME:-?}, "
              "${SLURM_NTASKS:-?} tasks\"\n");
    kd_strbuf_printf(
        b,
        "if [ -e \"$done_marker\" ]; then say 'already done (DONE marker present)'; exit 0; fi\n");
    kd_strbuf_printf(b, "[ -n \"${SLURM_CPUS_PER_TASK:-}\" ] && export "
                 "OMP_NUM_THREADS=${OMP_NUM_THREADS:-$SLURM_CPUS_PER_TASK}\n\n");
    // The command, as a bash array of quoted words.
    kd_strbuf_printf(b, "cmd=(");
    sb_quote(b, c->exe);
    kd_strbuf_printf(b, " run ");
    sb_quote(b, c->recipe_abs);
    for (int k = 0; k < o->n_sets; k++) {
        kd_strbuf_printf(b, " --set ");
        sb_quote(b, o->sets[k]);
    }
    kd_strbuf_printf(b, " --stage ");
    sb_quote(b, s->name);
    kd_strbuf_printf(b, " --resume auto)\n");
    kd_strbuf_printf(b,
              "# USR1 (time limit / preemption warning) is forwarded to the step: kdtrain saves a\n"
              "# checkpoint and exits 75, and the job requeues itself. TERM (scancel) is not a\n"
              "# reason to requeue: kdtrain saves and the job ends.\n");
    kd_strbuf_printf(b, "child=0\ngot_term=0\n");
    kd_strbuf_printf(b, "trap 'say \"got USR1, forwarding to the step\"; [ $child -ne 0 ] && kill -USR1 "
                 "$child' USR1\n");
    kd_strbuf_printf(b,
              "trap 'say \"got TERM\"; got_term=1; [ $child -ne 0 ] && kill -TERM $child' TERM\n");
    if (!strcmp(o->launcher, "srun"))
        kd_strbuf_printf(b, "srun --mpi=pmix --kill-on-bad-exit=1 ${KD_SRUN_FLAGS:-} \"${cmd[@]}\" &\n");
    else
        kd_strbuf_printf(b, "mpirun ${KD_MPIRUN_FLAGS:-} \"${cmd[@]}\" &\n");
    kd_strbuf_printf(b, "child=$!\n");
    // wait returns early (>128) when a trapped signal arrives: wait again until the step ends,
    // then once more for the status bash kept (the step may end between wait and kill -0).
    kd_strbuf_printf(b, "while :; do wait $child; rc=$?; kill -0 $child 2>/dev/null && continue; "
                        "wait $child; rc=$?; break; done\n");
    kd_strbuf_printf(b, "say \"kdtrain exited with status $rc\"\n");
    kd_strbuf_printf(b, "if [ $rc -eq 75 ] && [ $got_term -eq 0 ]; then\n"
                 "  if [ $restart -lt $max_requeues ]; then\n"
                 "    say \"saved; requeueing (restart $((restart + 1)) of $max_requeues)\"\n"
                 "    scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n"
                 "    say 'error: scontrol requeue failed'\n"
                 "  else\n"
                 "    say \"error: saved but --max-requeues $max_requeues is used up; resubmit to "
                 "continue\"\n"
                 "  fi\n"
                 "fi\n");
    kd_strbuf_printf(b,
              "if [ $rc -eq 0 ] && [ ! -e \"$done_marker\" ]; then\n"
              "  say \"error: kdtrain exited 0 but wrote no DONE marker ($done_marker)\"; exit 3\n"
              "fi\n");
    kd_strbuf_printf(b, "exit $rc\n");
}

// ----------------------------------------------------------------------------- submit

static int sbatch_submit(const char *script, const char *dep, char *job_id, size_t cap,
                         kd_error *err) {
    kd_strbuf cmd = {0};
    kd_strbuf_printf(&cmd, "sbatch --parsable");
    if (dep) kd_strbuf_printf(&cmd, " --dependency=afterok:%s --kill-on-invalid-dep=yes", dep);
    kd_strbuf_printf(&cmd, " ");
    sb_quote(&cmd, script);
    kd_strbuf_printf(&cmd, " 2>&1");
    char out[2048];
    int st = kd_slurm_capture(cmd.s, out, sizeof out);
    kd_strbuf_free(&cmd);
    out[strcspn(out, "\n")] = '\0';
    if (st != 0)
        return kd_fail(err, KD_ERUNTIME, "%s: sbatch failed (status %d): %s", script, st,
                       out[0] ? out : "no output (is SLURM installed and SLURM_CONF right?)");
    // --parsable prints "jobid" or "jobid;cluster".
    out[strcspn(out, ";")] = '\0';
    if (!out[0] || strspn(out, "0123456789_") != strlen(out))
        return kd_fail(err, KD_ERUNTIME, "%s: sbatch printed '%s', expected a job id", script, out);
    snprintf(job_id, cap, "%s", out);
    return KD_OK;
}

static int do_submit(const kd_submit_opts *o, const kd_recipe *r, kd_error *err) {
    char exe[PATH_MAX] = "", recipe_abs[KD_PATH_MAX * 2], cwd[PATH_MAX], run_abs[KD_PATH_MAX * 2];
    int rc = KD_OK;
    if (o->kdtrain)
        rc = abs_path(o->kdtrain, exe, sizeof exe, err);
    else {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            return kd_fail(err, KD_ERUNTIME, "/proc/self/exe: %s (pass --kdtrain PATH)",
                           strerror(errno));
        exe[n] = '\0';
    }
    if (!rc) rc = abs_path(o->recipe, recipe_abs, sizeof recipe_abs, err);
    if (!rc) rc = abs_path(r->run.out_dir, run_abs, sizeof run_abs, err);
    if (rc) return rc;
    if (!getcwd(cwd, sizeof cwd)) return kd_fail(err, KD_ERUNTIME, "getcwd: %s", strerror(errno));
    int sel[KD_MAX_STAGES];
    if ((rc = select_stages(r, o->stages, sel, err))) return rc;
    script_ctx c = {o, r, exe, recipe_abs, cwd, run_abs};

    char slurm_dir[KD_PATH_MAX * 2 + 16], tsv[KD_PATH_MAX * 2 + 32];
    snprintf(slurm_dir, sizeof slurm_dir, "%s/slurm", run_abs);
    snprintf(tsv, sizeof tsv, "%s/jobs.tsv", slurm_dir);
    if (!o->dry_run && (rc = kd_mkdir_p_or_fail(slurm_dir, 0755, KD_ERUNTIME, err))) return rc;
    char prev[64] = "";
    int n_submitted = 0;
    for (int i = 0; i < r->n_stages && !rc; i++) {
        if (!sel[i]) continue;
        char tag[KD_NAME_MAX + 8], path[KD_PATH_MAX * 3];
        snprintf(tag, sizeof tag, "%02d-%s", i, r->stages[i].name);
        snprintf(path, sizeof path, "%s/stages/%s/DONE", run_abs, tag);
        struct stat st;
        if (stat(path, &st) == 0) {
            printf("kdtrain: stage %s is done (DONE marker): not submitted\n", tag);
            continue;
        }
        kd_strbuf b = {0};
        write_script(&b, &c, i);
        snprintf(path, sizeof path, "%s/%s.sbatch", slurm_dir, tag);
        if (o->dry_run) {
            printf("# ---- %s%s\n%s\n", path,
                   n_submitted ? " (sbatch --dependency=afterok:PREVIOUS)" : "", b.s);
            kd_strbuf_free(&b);
            n_submitted++;
            continue;
        }
        FILE *f = fopen(path, "w");
        if (!f || fwrite(b.s, 1, b.n, f) != b.n)
            rc = kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", path, strerror(errno));
        if (f && fclose(f) != 0 && !rc)
            rc = kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", path, strerror(errno));
        kd_strbuf_free(&b);
        if (rc) break;
        chmod(path, 0755);
        char id[64];
        if ((rc = sbatch_submit(path, prev[0] ? prev : NULL, id, sizeof id, err))) break;
        // Record at once, so a later failure still leaves the submitted jobs visible.
        int fresh = stat(tsv, &st) != 0;
        FILE *t = fopen(tsv, "a");
        if (!t) {
            rc = kd_fail(err, KD_ERUNTIME, "%s: cannot append: %s (job %s was submitted)", tsv,
                         strerror(errno), id);
            break;
        }
        char when[32];
        time_t now = time(NULL);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", localtime(&now));
        if (fresh) fprintf(t, "# stage\tjob_id\tsubmitted\n");
        fprintf(t, "%s\t%s\t%s\n", tag, id, when);
        fclose(t);
        printf("%s\t%s%s%s\n", tag, id, prev[0] ? "\tafterok:" : "", prev);
        snprintf(prev, sizeof prev, "%s", id);
        n_submitted++;
    }
    if (!rc && n_submitted == 0)
        printf("kdtrain: nothing to submit: every selected stage is done\n");
    if (!rc && !o->dry_run && n_submitted)
        printf("kdtrain: %d job(s) submitted; see: kdtrain status %s\n", n_submitted, run_abs);
    if (rc && prev[0] && !o->dry_run)
        kd_error_prefix(err, "(jobs up to %s were submitted; kdtrain cancel %s) ", prev, run_abs);
    return rc;
}

int kd_submit(const kd_submit_opts *o, kd_error *err) {
    kd_recipe *r = kd_calloc(1, sizeof *r); // large: not on the stack
    int rc = kd_recipe_load(r, o->recipe, o->sets, o->n_sets, &kd_kind_rules, err);
    if (!rc) rc = do_submit(o, r, err);
    kd_recipe_free(r);
    free(r);
    return rc;
}
