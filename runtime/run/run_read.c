// run_read.c: reading a run directory back for status and report (run_read.h), and the
// TensorBoard event of a finished stage's eval.json.
#include "runtime/run/run_read.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/base/attempt.h"
#include "runtime/base/fs.h"
#include "runtime/base/json.h"
#include "runtime/base/tfevents.h"
#include "runtime/base/yaml_tree.h"

static void note(kd_rd_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(kd_rd_run *r, const char *fmt, ...) {
    if (r->n_notes >= KD_RD_MAX_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes[r->n_notes++], sizeof r->notes[0], fmt, ap);
    va_end(ap);
}

static double mtime_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec : 0;
}

int kd_rd_key(const kd_rd_metrics *m, const char *key) {
    for (int k = 0; k < m->n_keys; k++)
        if (!strcmp(m->keys[k], key)) return k;
    return -1;
}

// ----------------------------------------------------------------------------- recipe

static const char *scalar(const kd_yaml_node *map, const char *key) {
    const kd_yaml_node *v = map && map->kind == KD_YAML_MAP ? kd_yaml_map_get(map, key, NULL) : NULL;
    return v && v->kind == KD_YAML_SCALAR ? v->text : NULL;
}

static int trains(const char *kind) {
    return strcmp(kind, "eval") && strcmp(kind, "init") && strcmp(kind, "generate");
}

// The stages of recipe.resolved.yaml (names, kinds, planned steps).
static void load_recipe(kd_rd_run *r) {
    char path[KD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/recipe.resolved.yaml", r->dir);
    size_t len = 0;
    if (kd_read_file(path, 0, &r->recipe_text, &len, NULL) != KD_READ_OK) {
        note(r, "recipe.resolved.yaml is missing or unreadable: stages are listed from stages/");
        return;
    }
    kd_yaml_node *root = NULL;
    kd_error err = {0};
    if (kd_yaml_parse(r->recipe_text, len, path, 1, &root, &err) || !root || root->kind != KD_YAML_MAP) {
        note(r, "recipe.resolved.yaml does not parse (%s): stages are listed from stages/", err.msg);
        kd_yaml_free(root);
        return;
    }
    const kd_yaml_node *run = kd_yaml_map_get(root, "run", NULL);
    const char *name = scalar(run, "name");
    snprintf(r->run_name, sizeof r->run_name, "%s", name ? name : "");
    const kd_yaml_node *st = kd_yaml_map_get(root, "stages", NULL);
    for (int i = 0; st && st->kind == KD_YAML_SEQ && i < st->n && r->n_stages < KD_MAX_STAGES; i++) {
        kd_rd_stage *s = &r->stages[r->n_stages++];
        const char *n = scalar(st->items[i], "name"), *k = scalar(st->items[i], "kind");
        const char *steps = scalar(st->items[i], "steps");
        snprintf(s->name, sizeof s->name, "%s", n ? n : "?");
        snprintf(s->kind, sizeof s->kind, "%s", k ? k : "?");
        snprintf(s->tag, sizeof s->tag, "%02d-%s", i, n ? n : "?");
        s->steps = steps && trains(s->kind) ? atoi(steps) : 0;
    }
    kd_yaml_free(root);
}

// Stage directories the recipe does not list (a changed recipe, or no recipe at all).
static void add_unlisted(kd_rd_run *r) {
    char path[KD_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/stages", r->dir);
    DIR *d = opendir(path);
    struct dirent **list = NULL;
    int n = d ? scandir(path, &list, NULL, alphasort) : 0;
    if (d) closedir(d);
    for (int i = 0; i < n; i++) {
        const char *e = list[i]->d_name;
        int known = e[0] == '.';
        for (int j = 0; j < r->n_stages && !known; j++) known = !strcmp(r->stages[j].tag, e);
        if (!known && r->n_stages < KD_MAX_STAGES) {
            kd_rd_stage *s = &r->stages[r->n_stages++];
            snprintf(s->tag, sizeof s->tag, "%.*s", (int)sizeof s->tag - 1, e);
            const char *dash = strchr(e, '-');
            snprintf(s->name, sizeof s->name, "%s", dash ? dash + 1 : e);
            snprintf(s->kind, sizeof s->kind, "?");
        }
        free(list[i]);
    }
    free(list);
}

// ----------------------------------------------------------------------------- stage files

static void load_done(kd_rd_stage *s) {
    char path[KD_PATH_MAX * 2 + 16], line[KD_PATH_MAX * 2 + 32];
    snprintf(path, sizeof path, "%s/DONE", s->dir);
    s->done_eval_loss = NAN;
    FILE *f = fopen(path, "r");
    if (!f) return;
    s->done = 1;
    s->done_time = mtime_of(path);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "checkpoint ", 11)) snprintf(s->done_ckpt, sizeof s->done_ckpt, "%s", line + 11);
        else if (!strncmp(line, "step ", 5)) s->done_step = atoll(line + 5);
        else if (!strncmp(line, "eval_loss ", 10)) s->done_eval_loss = strtod(line + 10, NULL);
    }
    fclose(f);
}

long kd_rd_latest_ckpt(const char *stage_dir) {
    char path[KD_PATH_MAX * 3];
    snprintf(path, sizeof path, "%s/ckpt", stage_dir);
    DIR *d = opendir(path);
    long best = -1;
    for (struct dirent *de; d && (de = readdir(d));) {
        char *end = NULL;
        if (strncmp(de->d_name, "step-", 5)) continue;
        long v = strtol(de->d_name + 5, &end, 10);
        if (end == de->d_name + 5 || *end) continue;
        snprintf(path, sizeof path, "%s/ckpt/%s/MANIFEST", stage_dir, de->d_name);
        if (access(path, R_OK) == 0 && v > best) best = v;
    }
    if (d) closedir(d);
    return best;
}

static void metrics_row(kd_rd_metrics *m, const kd_json *o) {
    if (m->n_rows == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->steps = kd_realloc(m->steps, (size_t)m->cap * sizeof *m->steps);
        m->vals = kd_realloc(m->vals, (size_t)m->cap * KD_RD_MAX_KEYS * sizeof *m->vals);
    }
    double *row = m->vals + (size_t)m->n_rows * KD_RD_MAX_KEYS;
    for (int k = 0; k < KD_RD_MAX_KEYS; k++) row[k] = NAN;
    m->steps[m->n_rows++] = kd_json_get(o, "step")->integer;
    for (size_t i = 0; i < o->n; i++) {
        const kd_json *v = &o->items[i];
        if (!strcmp(v->key, "step")) continue;
        int k = kd_rd_key(m, v->key);
        if (k < 0 && m->n_keys < KD_RD_MAX_KEYS) {
            k = m->n_keys++;
            snprintf(m->keys[k], sizeof m->keys[k], "%s", v->key);
        }
        if (k >= 0 && v->type == KD_JSON_NUMBER) row[k] = v->number;
    }
}

static void load_metrics(kd_rd_run *r, kd_rd_stage *s) {
    char path[KD_PATH_MAX * 2 + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", s->dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    for (int no = 1; (len = getline(&line, &cap, f)) > 0; no++) {
        kd_json *o = NULL;
        kd_error err = {0};
        const kd_json *step = NULL;
        if (kd_json_parse(line, (size_t)len, "metrics.jsonl", &o, &err) == KD_OK && o->type == KD_JSON_OBJECT)
            step = kd_json_get(o, "step");
        if (step && step->type == KD_JSON_NUMBER && step->is_int) metrics_row(&s->m, o);
        else if (s->m.bad_lines++ == 0) s->m.first_bad = no;
        kd_json_free(o);
    }
    free(line);
    fclose(f);
    if (s->m.bad_lines)
        note(r, "stages/%s/metrics.jsonl: %d damaged line(s) skipped (first: line %d)", s->tag,
             s->m.bad_lines, s->m.first_bad);
}

// A small JSON file's object into (key, number) pairs; 0 if absent, -1 if damaged.
static int load_json_numbers(const char *path, char keys[][80], double *vals, int max, int *n) {
    char *text = NULL;
    size_t len = 0;
    *n = 0;
    if (kd_read_file(path, 1 << 24, &text, &len, NULL) != KD_READ_OK) return 0;
    kd_json *o = NULL;
    kd_error err = {0};
    int rc = kd_json_parse(text, len, path, &o, &err) || o->type != KD_JSON_OBJECT ? -1 : 1;
    for (size_t i = 0; rc > 0 && i < o->n && *n < max; i++) {
        if (o->items[i].type != KD_JSON_NUMBER) continue;
        snprintf(keys[*n], 80, "%s", o->items[i].key);
        vals[(*n)++] = o->items[i].number;
    }
    kd_json_free(o);
    free(text);
    return rc;
}

// A number read from the run's own files, or 0 when it is not one or lies outside [lo, hi]
// (a damaged file must not turn into an out-of-range conversion).
static double num_in(const kd_json *v, double lo, double hi) {
    return v->type == KD_JSON_NUMBER && v->number >= lo && v->number <= hi ? v->number : 0;
}

static void load_attempts(kd_rd_stage *s) {
    char path[KD_PATH_MAX * 2 + 32];
    snprintf(path, sizeof path, "%s/attempts.jsonl", s->dir);
    FILE *f = fopen(path, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        kd_json *o = NULL;
        kd_error err = {0};
        if (kd_json_parse(line, strlen(line), path, &o, &err) || o->type != KD_JSON_OBJECT) {
            kd_json_free(o);
            continue;
        }
        const kd_json *v;
        kd_rd_attempts *a = &s->at;
        if ((v = kd_json_get(o, "time")) && a->n == 0) a->first_time = v->number;
        if ((v = kd_json_get(o, "time"))) a->last_time = v->number;
        if ((v = kd_json_get(o, "start_ticks"))) a->start_ticks = (unsigned long long)num_in(v, 0, 1e18);
        if ((v = kd_json_get(o, "host")) && v->type == KD_JSON_STRING) snprintf(a->host, sizeof a->host, "%s", v->str);
        if ((v = kd_json_get(o, "backend")) && v->type == KD_JSON_STRING)
            snprintf(a->backend, sizeof a->backend, "%s", v->str);
        if ((v = kd_json_get(o, "ranks"))) a->ranks = (int)num_in(v, 0, 2147483647.0);
        if ((v = kd_json_get(o, "cpus"))) a->cpus = (int)num_in(v, 0, 2147483647.0);
        if ((v = kd_json_get(o, "pid"))) a->pid = (int)num_in(v, 0, 2147483647.0);
        a->n++;
        kd_json_free(o);
    }
    if (f) fclose(f);
}

static void load_stage(kd_rd_run *r, kd_rd_stage *s) {
    char path[KD_PATH_MAX * 2 + 32];
    snprintf(s->dir, sizeof s->dir, "%s/stages/%s", r->dir, s->tag);
    struct stat st;
    s->exists = stat(s->dir, &st) == 0 && S_ISDIR(st.st_mode);
    s->latest_ckpt = -1;
    s->done_eval_loss = NAN;
    if (!s->exists) return;
    load_done(s);
    s->latest_ckpt = kd_rd_latest_ckpt(s->dir);
    load_metrics(r, s);
    snprintf(path, sizeof path, "%s/eval.json", s->dir);
    if (load_json_numbers(path, s->eval_keys, s->eval_vals, KD_RD_MAX_EVAL, &s->n_eval) < 0)
        note(r, "stages/%s/eval.json is damaged: its values are not shown", s->tag);
    load_attempts(s);
    const char *files[] = {"metrics.jsonl", "events.out.tfevents.kdtrain", "DONE", "attempts.jsonl"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", s->dir, files[i]);
        double t = mtime_of(path);
        if (t > s->last_write) s->last_write = t;
    }
}

// ----------------------------------------------------------------------------- process

// The launch that ran last: the newest attempts.jsonl line of all stages.
static void find_process(kd_rd_run *r) {
    for (int i = 0; i < r->n_stages; i++) {
        const kd_rd_attempts *a = &r->stages[i].at;
        if (!a->n || (r->has_process && a->last_time <= r->proc.started)) continue;
        r->has_process = 1;
        r->proc.pid = a->pid, r->proc.ranks = a->ranks, r->proc.start_ticks = a->start_ticks;
        r->proc.started = a->last_time;
        snprintf(r->proc.host, sizeof r->proc.host, "%s", a->host);
    }
}

void kd_rd_eval_events(const char *stage_dir, const char *name, int training, int64_t step) {
    char path[KD_PATH_MAX * 2 + 32], keys[KD_RD_MAX_EVAL][80], tags[KD_RD_MAX_EVAL][KD_NAME_MAX + 90];
    double vals[KD_RD_MAX_EVAL];
    const char *tp[KD_RD_MAX_EVAL];
    float fv[KD_RD_MAX_EVAL];
    int n = 0;
    snprintf(path, sizeof path, "%s/eval.json", stage_dir);
    if (load_json_numbers(path, keys, vals, KD_RD_MAX_EVAL, &n) <= 0 || n == 0) return;
    for (int i = 0; i < n; i++) {
        char num[40];
        snprintf(num, sizeof num, "%.9g", vals[i]); // the decimal eval.json holds
        snprintf(tags[i], sizeof tags[i], "%s/%s%s", name, training ? "eval_" : "", keys[i]);
        tp[i] = tags[i], fv[i] = (float)strtod(num, NULL);
    }
    kd_tfevents w = {0};
    kd_error err = {0};
    snprintf(path, sizeof path, "%s/%s", stage_dir, KD_TFEVENTS_FILE);
    if (kd_tfevents_open(&w, path, &err)) return;
    kd_tfevents_scalars(&w, step, (double)time(NULL), tp, fv, n);
    kd_tfevents_close(&w);
}

int kd_rd_process_alive(const kd_rd_process *p) {
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    if (strcmp(host, p->host)) return -1;
    if (p->pid <= 0 || (kill(p->pid, 0) != 0 && errno == ESRCH)) return 0;
    // a reused pid is another process: its start time differs
    return kd_proc_start_ticks(p->pid) == p->start_ticks ? 1 : 0;
}

// ----------------------------------------------------------------------------- load

int kd_rd_load(kd_rd_run *r, const char *dir, kd_error *err) {
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    char p1[KD_PATH_MAX + 32], p2[KD_PATH_MAX + 32];
    snprintf(p1, sizeof p1, "%s/recipe.resolved.yaml", dir);
    snprintf(p2, sizeof p2, "%s/stages", dir);
    struct stat st;
    if (stat(p1, &st) != 0 && (stat(p2, &st) != 0 || !S_ISDIR(st.st_mode)))
        return kd_fail(err, KD_EINPUT,
                       "%s: not a run directory (expected recipe.resolved.yaml or stages/ in it, "
                       "as `kdtrain run` writes them)", dir);
    load_recipe(r);
    add_unlisted(r);
    int last_present = -1;
    for (int i = 0; i < r->n_stages; i++) {
        load_stage(r, &r->stages[i]);
        if (r->stages[i].exists) last_present = i;
    }
    find_process(r);
    for (int i = 0; i < last_present; i++)
        if (!r->stages[i].exists)
            note(r, "stage %s: its directory stages/%s is missing, though later stages ran",
                 r->stages[i].name, r->stages[i].tag);
    return KD_OK;
}

void kd_rd_free(kd_rd_run *r) {
    for (int i = 0; i < r->n_stages; i++) {
        free(r->stages[i].m.steps);
        free(r->stages[i].m.vals);
    }
    free(r->recipe_text);
    r->recipe_text = NULL;
}
