// submit.c: `kdtrain submit` (submit.h): one sbatch script per stage, submitted as a chain
// that survives preemption. The script format is documented in docs/slurm.md; the
// scripts trap the preemption signal, forward it to kdtrain (which saves and exits 75)
// and requeue their own job until --max-requeues.
#include "runtime/submit.h"

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

#include "runtime/recipe.h"

#define MAX_SETS 64
#define MAX_SBATCH_ARGS 32

typedef struct {
    const char *recipe;
    const char *sets[MAX_SETS];
    int n_sets;
    int nodes, ntasks_per_node, gpus_per_node;
    const char *partition, *time_limit, *account, *stages;
    int max_requeues;
    int signal_secs;
    const char *sbatch_args[MAX_SBATCH_ARGS];
    int n_sbatch_args;
    int dry_run;
    const char *launcher; // srun | mpirun
    const char *kdtrain;  // binary the scripts run (default: this one)
} submit_opts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: kdtrain submit RECIPE [--set KEY=VALUE]... --nodes N --ntasks-per-node R\n"
            "         [--gpus-per-node G] [--partition P] [--time HH:MM:SS] [--account A]\n"
            "         [--stages a,b] [--max-requeues K] [--signal-secs S] [--sbatch-arg ARG]...\n"
            "         [--launcher srun|mpirun] [--kdtrain PATH] [--dry-run]\n"
            "  Writes RUN/slurm/NN-stage.sbatch for each stage (RUN = run.out_dir), submits them\n"
            "  as a chain (afterok), prints the job ids and records them in RUN/slurm/jobs.tsv.\n"
            "  --max-requeues K   self-requeues after preemption per stage (default 3)\n"
            "  --signal-secs S    USR1 this many seconds before the time limit (default 300)\n"
            "  --sbatch-arg ARG   extra #SBATCH line, e.g. --sbatch-arg=--exclusive\n"
            "  --launcher L       srun --mpi=pmix (default) or mpirun\n"
            "  --kdtrain PATH     binary the scripts run (default: this kdtrain)\n"
            "  --dry-run          print the scripts; write and submit nothing\n");
}

// ----------------------------------------------------------------------------- helpers

// Growing string buffer for the scripts.
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->n + (size_t)need + 1 > b->cap) {
        b->cap = (b->n + (size_t)need + 1) * 2;
        b->p = kd_realloc(b->p, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

// Append s as one single-quoted shell word ('it'\''s').
static void sb_quote(sbuf *b, const char *s) {
    sb_printf(b, "'");
    for (; *s; s++) {
        if (*s == '\'')
            sb_printf(b, "'\\''");
        else
            sb_printf(b, "%c", *s);
    }
    sb_printf(b, "'");
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

static int mkdir_p(const char *path, kd_error *err) {
    char tmp[KD_PATH_MAX * 2];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p && *p != '/') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return kd_fail(err, KD_ERUNTIME, "%s: cannot create directory: %s", tmp,
                           strerror(errno));
        *p = c;
        if (!c) return KD_OK;
    }
}

static int pos_int(const char *opt, const char *v, int min, int *out, kd_error *err) {
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || x < min || x > 1000000)
        return kd_fail(err, KD_EINPUT, "%s: expected an integer >= %d, found '%s'", opt, min,
                       v ? v : "");
    *out = (int)x;
    return KD_OK;
}

// ----------------------------------------------------------------------------- options

static int parse_opts(int argc, char **argv, submit_opts *o, kd_error *err) {
    memset(o, 0, sizeof *o);
    o->max_requeues = 3;
    o->signal_secs = 300;
    o->launcher = "srun";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[64];
        // --opt=value and --opt value are both accepted.
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
#define VALUE()                                                                                    \
    do {                                                                                           \
        if (!v) {                                                                                  \
            if (i + 1 >= argc) return kd_fail(err, KD_EINPUT, "submit: %s needs a value", name);   \
            v = argv[++i];                                                                         \
        }                                                                                          \
    } while (0)
        int rc = KD_OK;
        if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(name, "--dry-run")) {
            o->dry_run = 1;
        } else if (!strcmp(name, "--set")) {
            VALUE();
            if (o->n_sets >= MAX_SETS)
                return kd_fail(err, KD_EINPUT, "submit: at most %d --set", MAX_SETS);
            o->sets[o->n_sets++] = v;
        } else if (!strcmp(name, "--sbatch-arg")) {
            VALUE();
            if (o->n_sbatch_args >= MAX_SBATCH_ARGS)
                return kd_fail(err, KD_EINPUT, "submit: at most %d --sbatch-arg", MAX_SBATCH_ARGS);
            if (strchr(v, '\n'))
                return kd_fail(err, KD_EINPUT, "--sbatch-arg: a newline is not allowed");
            o->sbatch_args[o->n_sbatch_args++] = v;
        } else if (!strcmp(name, "--nodes")) {
            VALUE();
            rc = pos_int(name, v, 1, &o->nodes, err);
        } else if (!strcmp(name, "--ntasks-per-node")) {
            VALUE();
            rc = pos_int(name, v, 1, &o->ntasks_per_node, err);
        } else if (!strcmp(name, "--gpus-per-node")) {
            VALUE();
            rc = pos_int(name, v, 0, &o->gpus_per_node, err);
        } else if (!strcmp(name, "--max-requeues")) {
            VALUE();
            rc = pos_int(name, v, 0, &o->max_requeues, err);
        } else if (!strcmp(name, "--signal-secs")) {
            VALUE();
            rc = pos_int(name, v, 1, &o->signal_secs, err);
        } else if (!strcmp(name, "--partition")) {
            VALUE();
            o->partition = v;
        } else if (!strcmp(name, "--account")) {
            VALUE();
            o->account = v;
        } else if (!strcmp(name, "--time")) {
            VALUE();
            o->time_limit = v;
            if (!*v || strspn(v, "0123456789:-") != strlen(v))
                return kd_fail(err, KD_EINPUT, "--time: expected [D-]HH:MM:SS, found '%s'", v);
        } else if (!strcmp(name, "--stages")) {
            VALUE();
            o->stages = v;
        } else if (!strcmp(name, "--launcher")) {
            VALUE();
            o->launcher = v;
            if (strcmp(v, "srun") && strcmp(v, "mpirun"))
                return kd_fail(err, KD_EINPUT, "--launcher: expected srun or mpirun, found '%s'",
                               v);
        } else if (!strcmp(name, "--kdtrain")) {
            VALUE();
            o->kdtrain = v;
        } else if (a[0] == '-') {
            return kd_fail(err, KD_EINPUT,
                           "submit: unknown option '%s' (see kdtrain submit --help)", a);
        } else if (!o->recipe) {
            o->recipe = a;
        } else {
            return kd_fail(err, KD_EINPUT, "submit: unexpected argument '%s' (one recipe only)", a);
        }
#undef VALUE
        if (rc) return rc;
        // Values other than --set and --sbatch-arg land on #SBATCH lines: no newlines there.
        if (v && strchr(v, '\n'))
            return kd_fail(err, KD_EINPUT, "%s: a newline is not allowed", name);
    }
    if (!o->recipe)
        return kd_fail(err, KD_EINPUT, "submit: missing RECIPE (see kdtrain submit --help)");
    if (!o->nodes) return kd_fail(err, KD_EINPUT, "submit: --nodes N is required");
    if (!o->ntasks_per_node)
        return kd_fail(err, KD_EINPUT, "submit: --ntasks-per-node R is required");
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
    const submit_opts *o;
    const kd_recipe *r;
    const char *exe, *recipe_abs, *cwd, *run_abs;
} script_ctx;

// The sbatch script of stage i. Dependencies are given on the sbatch command line.
static void write_script(sbuf *b, const script_ctx *c, int i) {
    const submit_opts *o = c->o;
    const kd_stage_spec *s = &c->r->stages[i];
    char tag[KD_NAME_MAX + 8];
    snprintf(tag, sizeof tag, "%02d-%s", i, s->name);
    sb_printf(b, "#!/bin/bash\n");
    sb_printf(b, "# kdtrain stage %s of run '%s' (written by kdtrain submit; docs/slurm.md)\n", tag,
              c->r->run.name);
    sb_printf(b, "#SBATCH --job-name=%s.%s\n", c->r->run.name, s->name);
    sb_printf(b, "#SBATCH --nodes=%d\n#SBATCH --ntasks-per-node=%d\n", o->nodes,
              o->ntasks_per_node);
    if (o->gpus_per_node) sb_printf(b, "#SBATCH --gpus-per-node=%d\n", o->gpus_per_node);
    if (o->partition) sb_printf(b, "#SBATCH --partition=%s\n", o->partition);
    if (o->time_limit) sb_printf(b, "#SBATCH --time=%s\n", o->time_limit);
    if (o->account) sb_printf(b, "#SBATCH --account=%s\n", o->account);
    sb_printf(b, "#SBATCH --chdir=%s\n", c->cwd);
    sb_printf(b, "#SBATCH --output=%s/slurm/%s.log\n", c->run_abs, tag);
    sb_printf(b, "#SBATCH --open-mode=append\n#SBATCH --requeue\n");
    sb_printf(b, "#SBATCH --signal=B:USR1@%d\n", o->signal_secs);
    for (int k = 0; k < o->n_sbatch_args; k++) sb_printf(b, "#SBATCH %s\n", o->sbatch_args[k]);
    sb_printf(b, "\nset -u\nstage=%s\nmax_requeues=%d\nrestart=${SLURM_RESTART_COUNT:-0}\n",
              s->name, o->max_requeues);
    sb_printf(b, "done_marker=");
    char done[KD_PATH_MAX * 2 + 64];
    snprintf(done, sizeof done, "%s/stages/%s/DONE", c->run_abs, tag);
    sb_quote(b, done);
    sb_printf(b, "\nsay() { echo \"kdtrain-slurm: $(date '+%%F %%T') job ${SLURM_JOB_ID} stage "
                 "$stage: $*\"; }\n");
    sb_printf(b,
              "say \"start (restart $restart of at most $max_requeues) on ${SLURMD_NODENAME:-?}, "
              "${SLURM_NTASKS:-?} tasks\"\n");
    sb_printf(
        b,
        "if [ -e \"$done_marker\" ]; then say 'already done (DONE marker present)'; exit 0; fi\n");
    sb_printf(b, "[ -n \"${SLURM_CPUS_PER_TASK:-}\" ] && export "
                 "OMP_NUM_THREADS=${OMP_NUM_THREADS:-$SLURM_CPUS_PER_TASK}\n\n");
    // The command, as a bash array of quoted words.
    sb_printf(b, "cmd=(");
    sb_quote(b, c->exe);
    sb_printf(b, " run ");
    sb_quote(b, c->recipe_abs);
    for (int k = 0; k < o->n_sets; k++) {
        sb_printf(b, " --set ");
        sb_quote(b, o->sets[k]);
    }
    sb_printf(b, " --stage ");
    sb_quote(b, s->name);
    sb_printf(b, " --resume auto)\n");
    sb_printf(b,
              "# USR1 (time limit / preemption warning) is forwarded to the step: kdtrain saves a\n"
              "# checkpoint and exits 75, and the job requeues itself. TERM (scancel) is not a\n"
              "# reason to requeue: kdtrain saves and the job ends.\n");
    sb_printf(b, "child=0\ngot_term=0\n");
    sb_printf(b, "trap 'say \"got USR1, forwarding to the step\"; [ $child -ne 0 ] && kill -USR1 "
                 "$child' USR1\n");
    sb_printf(b,
              "trap 'say \"got TERM\"; got_term=1; [ $child -ne 0 ] && kill -TERM $child' TERM\n");
    if (!strcmp(o->launcher, "srun"))
        sb_printf(b, "srun --mpi=pmix --kill-on-bad-exit=1 ${KD_SRUN_FLAGS:-} \"${cmd[@]}\" &\n");
    else
        sb_printf(b, "mpirun ${KD_MPIRUN_FLAGS:-} \"${cmd[@]}\" &\n");
    sb_printf(b, "child=$!\n");
    // wait returns early (>128) when a trapped signal arrives: wait again until the step ends.
    sb_printf(b, "while :; do wait $child; rc=$?; kill -0 $child 2>/dev/null || break; done\n");
    sb_printf(b, "say \"kdtrain exited with status $rc\"\n");
    sb_printf(b, "if [ $rc -eq 75 ] && [ $got_term -eq 0 ]; then\n"
                 "  if [ $restart -lt $max_requeues ]; then\n"
                 "    say \"saved; requeueing (restart $((restart + 1)) of $max_requeues)\"\n"
                 "    scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n"
                 "    say 'error: scontrol requeue failed'\n"
                 "  else\n"
                 "    say \"error: saved but --max-requeues $max_requeues is used up; resubmit to "
                 "continue\"\n"
                 "  fi\n"
                 "fi\n");
    sb_printf(b,
              "if [ $rc -eq 0 ] && [ ! -e \"$done_marker\" ]; then\n"
              "  say \"error: kdtrain exited 0 but wrote no DONE marker ($done_marker)\"; exit 3\n"
              "fi\n");
    sb_printf(b, "exit $rc\n");
}

// ----------------------------------------------------------------------------- submit

static int sbatch_submit(const char *script, const char *dep, char *job_id, size_t cap,
                         kd_error *err) {
    sbuf cmd = {0};
    sb_printf(&cmd, "sbatch --parsable");
    if (dep) sb_printf(&cmd, " --dependency=afterok:%s --kill-on-invalid-dep=yes", dep);
    sb_printf(&cmd, " ");
    sb_quote(&cmd, script);
    sb_printf(&cmd, " 2>&1");
    char out[2048];
    int st = kd_slurm_capture(cmd.p, out, sizeof out);
    free(cmd.p);
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

static int do_submit(const submit_opts *o, const kd_recipe *r, kd_error *err) {
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
    if (!o->dry_run && (rc = mkdir_p(slurm_dir, err))) return rc;
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
        sbuf b = {0};
        write_script(&b, &c, i);
        snprintf(path, sizeof path, "%s/%s.sbatch", slurm_dir, tag);
        if (o->dry_run) {
            printf("# ---- %s%s\n%s\n", path,
                   n_submitted ? " (sbatch --dependency=afterok:PREVIOUS)" : "", b.p);
            free(b.p);
            n_submitted++;
            continue;
        }
        FILE *f = fopen(path, "w");
        if (!f || fwrite(b.p, 1, b.n, f) != b.n)
            rc = kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", path, strerror(errno));
        if (f && fclose(f) != 0 && !rc)
            rc = kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", path, strerror(errno));
        free(b.p);
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

int kd_submit_main(int argc, char **argv) {
    kd_error err = {0};
    submit_opts o;
    int rc = parse_opts(argc, argv, &o, &err);
    if (rc == -1) return KD_OK;
    kd_recipe *r = NULL;
    if (!rc) {
        r = kd_calloc(1, sizeof *r); // large: not on the stack
        rc = kd_recipe_load(r, o.recipe, o.sets, o.n_sets, &err);
        if (!rc) rc = do_submit(&o, r, &err);
        kd_recipe_free(r);
        free(r);
    }
    if (rc) fprintf(stderr, "kdtrain: error: %s\n", err.msg);
    return rc;
}
