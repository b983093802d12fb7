// slurm_status.c: kd_slurm_status and kd_slurm_cancel (submit.h), behind `kdtrain status
// RUN_DIR` and `kdtrain cancel RUN_DIR`. Both read RUN/slurm/jobs.tsv (written by kdtrain
// submit); status adds what the run directory says about each stage (checkpoints, metrics,
// DONE, the log's last error line).
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/config/recipe.h"
#include "runtime/run/run_read.h"
#include "runtime/run/submit.h"

#define MAX_ROWS 256

typedef struct {
    char tag[KD_NAME_MAX + 8]; // NN-name
    char ids[256];             // every job id of this stage, oldest first, comma-separated
    char last_id[32];          // newest job id
} stage_row;

typedef struct {
    stage_row rows[MAX_ROWS];
    int n;
} stage_list;

static stage_row *find_or_add(stage_list *l, const char *tag) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->rows[i].tag, tag)) return &l->rows[i];
    if (l->n >= MAX_ROWS) return NULL;
    stage_row *r = &l->rows[l->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->tag, sizeof r->tag, "%s", tag);
    return r;
}

static int cmp_rows(const void *a, const void *b) {
    return strcmp(((const stage_row *)a)->tag, ((const stage_row *)b)->tag);
}

// Stages from jobs.tsv plus the stage directories under RUN/stages/, sorted by tag.
static int load_stages(const char *run, stage_list *l, kd_error *err) {
    char path[KD_PATH_MAX * 2];
    l->n = 0;
    snprintf(path, sizeof path, "%s/slurm/jobs.tsv", run);
    FILE *f = fopen(path, "r");
    int lineno = 0;
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        char tag[128], id[64];
        if (sscanf(line, "%127[^\t]\t%63[^\t\n]", tag, id) != 2 ||
            strspn(id, "0123456789_") != strlen(id)) {
            fclose(f);
            return kd_fail(err, KD_EINPUT,
                           "%s:%d: expected 'NN-stage<TAB>job_id<TAB>time', found '%.*s'", path,
                           lineno, (int)strcspn(line, "\n"), line);
        }
        stage_row *r = find_or_add(l, tag);
        if (!r) break;
        size_t n = strlen(r->ids);
        snprintf(r->ids + n, sizeof r->ids - n, "%s%s", n ? "," : "", id);
        snprintf(r->last_id, sizeof r->last_id, "%s", id);
    }
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/stages", run);
    DIR *d = opendir(path);
    for (struct dirent *de; d && (de = readdir(d));)
        if (de->d_name[0] != '.') find_or_add(l, de->d_name);
    if (d) closedir(d);
    if (l->n == 0)
        return kd_fail(err, KD_EINPUT, "%s: not a run directory (no slurm/jobs.tsv and no stages/)",
                       run);
    qsort(l->rows, (size_t)l->n, sizeof l->rows[0], cmp_rows);
    return KD_OK;
}

// ----------------------------------------------------------------------------- SLURM state

typedef struct {
    char state[32]; // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ... or "?"
    int restarts;   // -1 unknown
    char exit_code[16];
    char reason[64]; // scontrol's Reason= (e.g. DependencyNeverSatisfied), or ""
} job_state;

// Value of KEY= in scontrol's one-line output.
static int kv_get(const char *text, const char *key, char *out, size_t cap) {
    for (const char *p = text; (p = strstr(p, key)); p++) {
        if (p != text && p[-1] != ' ' && p[-1] != '\n') continue;
        p += strlen(key);
        size_t n = strcspn(p, " \n");
        snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
        return 1;
    }
    return 0;
}

// scontrol knows a job for MinJobAge seconds after it ends; sacct (slurmdbd) or sacct -c
// (the jobcomp file) after that. The first source that knows the job wins.
static void query_job(const char *id, job_state *js) {
    char cmd[256], out[8192], v[64];
    snprintf(js->state, sizeof js->state, "?");
    js->restarts = -1;
    snprintf(js->exit_code, sizeof js->exit_code, "-");
    js->reason[0] = '\0';
    snprintf(cmd, sizeof cmd, "scontrol show job -o %s 2>/dev/null", id);
    if (kd_slurm_capture(cmd, out, sizeof out) == 0 && kv_get(out, "JobState=", v, sizeof v)) {
        snprintf(js->state, sizeof js->state, "%s", v);
        if (kv_get(out, "Restarts=", v, sizeof v)) js->restarts = atoi(v);
        if (kv_get(out, "ExitCode=", v, sizeof v))
            snprintf(js->exit_code, sizeof js->exit_code, "%s", v);
        if (kv_get(out, "Reason=", v, sizeof v) && strcmp(v, "None"))
            snprintf(js->reason, sizeof js->reason, "%s", v);
        return;
    }
    const char *variants[] = {"sacct -n -X -P -o State,ExitCode -j %s 2>/dev/null",
                              "sacct -c -n -X -P -o State,ExitCode -j %s 2>/dev/null"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, variants[k], id);
        if (kd_slurm_capture(cmd, out, sizeof out) != 0 || !out[0]) continue;
        // Last line wins (a requeued job can have several records).
        char *last = out, *nl;
        while ((nl = strchr(last, '\n')) && nl[1]) last = nl + 1;
        char st[32] = "", ec[16] = "";
        if (sscanf(last, "%31[^|\n]|%15[^|\n]", st, ec) >= 1 && st[0]) {
            snprintf(js->state, sizeof js->state, "%.*s", (int)strcspn(st, " "), st);
            if (ec[0]) snprintf(js->exit_code, sizeof js->exit_code, "%s", ec);
            return;
        }
    }
}

// ----------------------------------------------------------------------------- run dir

// Last line of a file that contains `needle` (case-insensitive; NULL: any non-empty line).
static int last_line_with(const char *path, const char *needle, char *out, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[2048];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!line[0] || (needle && !strcasestr(line, needle))) continue;
        snprintf(out, cap, "%s", line);
        found = 1;
    }
    fclose(f);
    return found;
}

// "loss 2.345 (step 50)" from the last line of metrics.jsonl.
static void last_loss(const char *stage_dir, char *out, size_t cap) {
    char path[KD_PATH_MAX * 3], line[2048];
    snprintf(out, cap, "-");
    snprintf(path, sizeof path, "%s/metrics.jsonl", stage_dir);
    if (!last_line_with(path, NULL, line, sizeof line)) return;
    const char *l = strstr(line, "\"loss\":"), *s = strstr(line, "\"step\":");
    if (!l) return;
    double loss = strtod(l + 7, NULL);
    long step = s ? strtol(s + 7, NULL, 10) : -1;
    snprintf(out, cap, "%.4f@%ld", loss, step);
}

static int is_active(const char *state) {
    return !strcmp(state, "PENDING") || !strcmp(state, "RUNNING") || !strcmp(state, "REQUEUED") ||
           !strcmp(state, "CONFIGURING") || !strcmp(state, "SUSPENDED") ||
           !strcmp(state, "COMPLETING") || !strcmp(state, "REQUEUE_HOLD") ||
           !strcmp(state, "REQUEUE_FED") || !strcmp(state, "RESIZING");
}

// ----------------------------------------------------------------------------- commands

int kd_slurm_status(const char *run, kd_error *err) {
    stage_list *l = kd_calloc(1, sizeof *l);
    int rc = load_stages(run, l, err);
    if (rc) {
        free(l);
        return rc;
    }
    printf("%-24s %-16s %-12s %-8s %-9s %-16s %s\n", "stage", "job", "state", "restarts", "ckpt",
           "loss@step", "done");
    for (int i = 0; i < l->n; i++) {
        const stage_row *r = &l->rows[i];
        char dir[KD_PATH_MAX * 2], path[KD_PATH_MAX * 3], loss[64], ck[32], rs[16];
        snprintf(dir, sizeof dir, "%s/stages/%s", run, r->tag);
        snprintf(path, sizeof path, "%s/DONE", dir);
        struct stat st;
        int done = stat(path, &st) == 0;
        job_state js = {.state = "-", .restarts = -1};
        if (r->last_id[0]) query_job(r->last_id, &js);
        long ckpt = kd_rd_latest_ckpt(dir);
        last_loss(dir, loss, sizeof loss);
        snprintf(ck, sizeof ck, ckpt >= 0 ? "%ld" : "-", ckpt);
        snprintf(rs, sizeof rs, js.restarts >= 0 ? "%d" : "-", js.restarts);
        printf("%-24s %-16s %-12s %-8s %-9s %-16s %s\n", r->tag, r->ids[0] ? r->ids : "-", js.state,
               rs, ck, loss, done ? "yes" : "no");
        // A stage that ended without DONE: show why, from its log.
        if (!done && r->last_id[0] && !is_active(js.state) && strcmp(js.state, "?")) {
            char line[2048];
            snprintf(path, sizeof path, "%s/slurm/%s.log", run, r->tag);
            if (last_line_with(path, "kdtrain: error", line, sizeof line) ||
                last_line_with(path, "error", line, sizeof line))
                printf("    %s: %s\n", js.exit_code, line);
            else if (strcmp(js.state, "COMPLETED"))
                printf("    exit %s%s%s; no error line in its log\n", js.exit_code,
                       js.reason[0] ? ", reason " : "", js.reason);
        }
    }
    free(l);
    return KD_OK;
}

int kd_slurm_cancel(const char *run, kd_error *err) {
    stage_list *l = kd_calloc(1, sizeof *l);
    int rc = load_stages(run, l, err);
    if (rc) {
        free(l);
        return rc;
    }
    char cmd[4096] = "scancel", out[4096];
    int n = 0;
    for (int i = l->n - 1; i >= 0; i--) {
        const stage_row *r = &l->rows[i];
        if (!r->last_id[0]) continue;
        job_state js = {0};
        query_job(r->last_id, &js);
        if (!is_active(js.state)) continue;
        printf("kdtrain: cancelling %s (job %s, %s)\n", r->tag, r->last_id, js.state);
        size_t len = strlen(cmd);
        snprintf(cmd + len, sizeof cmd - len, " %s", r->last_id);
        n++;
    }
    free(l);
    if (n == 0) {
        printf("kdtrain: no pending or running job in %s\n", run);
        return KD_OK;
    }
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    int st = kd_slurm_capture(cmd, out, sizeof out);
    if (st != 0) { // scancel's message, without its final newline (the caller adds one)
        size_t len = strlen(out);
        while (len > 0 && out[len - 1] == '\n') len--;
        return kd_fail(err, KD_ERUNTIME, "%s: scancel failed (status %d): %.*s", run, st,
                       (int)len, out);
    }
    printf("kdtrain: %d job(s) cancelled\n", n);
    return KD_OK;
}
