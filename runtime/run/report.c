// report.c: kd_run_report (report.h): the page of a run directory, section by section, from
// what run_read.c reads back. Everything is written into memory first, then to the file
// atomically, so a failed write leaves no half page.
#include "runtime/run/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/base/fs.h"

typedef enum { ST_DONE, ST_RUNNING, ST_STOPPED, ST_NOT_STARTED, ST_MISSING } stage_state;
static const char *const state_names[] = {"done", "running", "stopped", "not started", "missing"};
static const char *const state_colors[] = {"#2ca02c", "#1f77b4", "#ff7f0e", "#bbbbbb", "#d62728"};

typedef struct {
    kd_rd_run *r;
    int alive;                       // the launch's process runs (on this host)
    stage_state st[KD_MAX_STAGES];
} page;

static int64_t last_step(const kd_rd_stage *s) {
    return s->done ? s->done_step : s->m.n_rows ? s->m.steps[s->m.n_rows - 1] : 0;
}

static void classify(page *p) {
    kd_rd_run *r = p->r;
    int last_present = -1, cur = -1;
    for (int i = 0; i < r->n_stages; i++)
        if (r->stages[i].exists) last_present = i;
    for (int i = 0; i < r->n_stages; i++) {
        const kd_rd_stage *s = &r->stages[i];
        if (s->done) p->st[i] = ST_DONE;
        else if (!s->exists) p->st[i] = i < last_present ? ST_MISSING : ST_NOT_STARTED;
        else p->st[i] = cur < 0 && p->alive ? ST_RUNNING : ST_STOPPED;
        if (!s->done && cur < 0) cur = i;
    }
}

static void fmt_dur(double s, char *out, size_t n) {
    if (!isfinite(s) || s <= 0) {
        snprintf(out, n, "-");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ldh%02ldm%02lds", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
}

// Wall time of a stage: first start to DONE (or to its last write), else the training
// time its last metrics line measured (runs written before attempts.jsonl existed).
static double wall_time(const kd_rd_stage *s) {
    if (s->at.n && s->done_time > 0) return s->done_time - s->at.first_time;
    if (s->at.n && s->last_write > 0) return s->last_write - s->at.first_time;
    int k = kd_rd_key(&s->m, "elapsed_s");
    for (int i = s->m.n_rows - 1; k >= 0 && i >= 0; i--)
        if (isfinite(s->m.vals[(size_t)i * KD_RD_MAX_KEYS + k])) return s->m.vals[(size_t)i * KD_RD_MAX_KEYS + k];
    return NAN;
}

// ----------------------------------------------------------------------------- sections

static void head(FILE *f, const page *p) {
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "style-src 'unsafe-inline'\">\n<title>kdtrain report: ");
    kd_html_text(f, p->r->run_name[0] ? p->r->run_name : p->r->dir);
    fprintf(f, "</title>\n<style>\n"
               "body{font-family:sans-serif;background:#fafafa;color:#222;margin:24px;max-width:1240px}\n"
               "table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;"
               "font-size:13px;text-align:left}th{background:#eee}td.num{text-align:right;font-family:monospace}\n"
               ".plots{display:flex;flex-wrap:wrap;gap:12px}.note{color:#a00}section{margin-bottom:28px}\n"
               "pre{background:#fff;border:1px solid #ccc;padding:8px;font-size:12px;overflow:auto}\n"
               "</style></head><body>\n");
}

static void summary(FILE *f, const page *p) {
    const kd_rd_run *r = p->r;
    int done = 0, cur = -1;
    for (int i = 0; i < r->n_stages; i++) {
        if (p->st[i] == ST_DONE) done++;
        else if (cur < 0) cur = i;
    }
    fprintf(f, "<h1>Run ");
    kd_html_text(f, r->run_name[0] ? r->run_name : r->dir);
    fprintf(f, "</h1>\n<p>Directory <code>");
    kd_html_text(f, r->dir);
    fprintf(f, "</code>. ");
    if (r->n_stages == 0) fprintf(f, "<b>No stages found.</b>");
    else if (cur < 0) fprintf(f, "<b>Finished</b>: all %d stages done.", r->n_stages);
    else {
        const kd_rd_stage *s = &r->stages[cur];
        fprintf(f, "<b>%s</b>: %d of %d stages done; stage <b>", p->st[cur] == ST_RUNNING ? "Running" : "Unfinished",
                done, r->n_stages);
        kd_html_text(f, s->name);
        fprintf(f, "</b> %s", state_names[p->st[cur]]);
        if (s->steps > 0 && s->exists) fprintf(f, " at step %lld of %d", (long long)last_step(s), s->steps);
        if (s->latest_ckpt >= 0) fprintf(f, " (newest checkpoint: step %ld)", s->latest_ckpt);
        fprintf(f, ".%s", p->st[cur] == ST_STOPPED ? " The same <code>kdtrain run</code> command resumes it." : "");
    }
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    fprintf(f, " Report written %s.</p>\n", when);
}

static void notes(FILE *f, const page *p) {
    const kd_rd_run *r = p->r;
    int n = r->n_notes;
    for (int i = 0; i < r->n_stages; i++) n += p->st[i] == ST_NOT_STARTED || p->st[i] == ST_STOPPED;
    if (!n) return;
    fprintf(f, "<section id=\"missing\"><h2>Missing or damaged</h2><ul>\n");
    for (int i = 0; i < r->n_notes; i++) {
        fprintf(f, "<li class=\"note\">");
        kd_html_text(f, r->notes[i]);
        fprintf(f, "</li>\n");
    }
    for (int i = 0; i < r->n_stages; i++) {
        const kd_rd_stage *s = &r->stages[i];
        if (p->st[i] != ST_NOT_STARTED && p->st[i] != ST_STOPPED) continue;
        fprintf(f, "<li>stage ");
        kd_html_text(f, s->name);
        if (p->st[i] == ST_NOT_STARTED) fprintf(f, ": not started (no stages/");
        else fprintf(f, ": stopped before its end (no DONE in stages/");
        kd_html_text(f, s->tag);
        fprintf(f, ")</li>\n");
    }
    fprintf(f, "</ul></section>\n");
}

static void timeline(FILE *f, const page *p) {
    const kd_rd_run *r = p->r;
    fprintf(f, "<section id=\"timeline\"><h2>Stages</h2><table>\n<tr><th>#</th><th>stage</th><th>kind</th>"
               "<th>status</th><th>progress (| newest checkpoint)</th><th>steps</th><th>wall time</th>"
               "<th>checkpoint</th><th>held-out loss</th></tr>\n");
    for (int i = 0; i < r->n_stages; i++) {
        const kd_rd_stage *s = &r->stages[i];
        char wall[32];
        fmt_dur(wall_time(s), wall, sizeof wall);
        fprintf(f, "<tr><td>%d</td><td>", i);
        kd_html_text(f, s->name);
        fprintf(f, "</td><td>%s</td><td style=\"color:%s\">%s</td><td>", s->kind, state_colors[p->st[i]],
                state_names[p->st[i]]);
        int train = s->steps > 0;
        kd_svg_bar(f, train ? (double)last_step(s) : s->done, train ? s->steps : 1,
                   train ? (double)s->latest_ckpt : -1, state_colors[p->st[i]]);
        fprintf(f, "</td><td class=\"num\">");
        if (train) fprintf(f, "%lld / %d", (long long)last_step(s), s->steps);
        else fprintf(f, "-");
        fprintf(f, "</td><td class=\"num\">%s</td><td>", wall);
        if (s->done_ckpt[0]) kd_html_text(f, s->done_ckpt);
        else if (s->latest_ckpt >= 0) fprintf(f, "ckpt/step-%08ld (newest)", s->latest_ckpt);
        else fprintf(f, "-");
        fprintf(f, "</td><td class=\"num\">");
        if (isfinite(s->done_eval_loss)) fprintf(f, "%.4f", s->done_eval_loss);
        else fprintf(f, "-");
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table></section>\n");
}

// The eval stages side by side: one column per eval stage, one row per measured key.
static void evals(FILE *f, const page *p) {
    const kd_rd_run *r = p->r;
    int cols[KD_MAX_STAGES], nc = 0;
    for (int i = 0; i < r->n_stages; i++)
        if (!strcmp(r->stages[i].kind, "eval")) cols[nc++] = i;
    if (!nc) return;
    fprintf(f, "<section><h2>Evaluations</h2>\n<table id=\"eval\"><tr><th>metric</th>");
    for (int c = 0; c < nc; c++) {
        fprintf(f, "<th>");
        kd_html_text(f, r->stages[cols[c]].name);
        fprintf(f, "</th>");
    }
    fprintf(f, "</tr>\n");
    for (int c = 0; c < nc; c++) {
        const kd_rd_stage *s = &r->stages[cols[c]];
        for (int k = 0; k < s->n_eval; k++) {
            int seen = 0; // a key is one row, at its first column
            for (int c2 = 0; c2 < c && !seen; c2++)
                for (int k2 = 0; k2 < r->stages[cols[c2]].n_eval && !seen; k2++)
                    seen = !strcmp(r->stages[cols[c2]].eval_keys[k2], s->eval_keys[k]);
            if (seen) continue;
            fprintf(f, "<tr><td>");
            kd_html_text(f, s->eval_keys[k]);
            fprintf(f, "</td>");
            for (int c2 = 0; c2 < nc; c2++) {
                const kd_rd_stage *t = &r->stages[cols[c2]];
                int k2 = 0;
                while (k2 < t->n_eval && strcmp(t->eval_keys[k2], s->eval_keys[k])) k2++;
                if (k2 < t->n_eval) fprintf(f, "<td class=\"num\">%.4f</td>", t->eval_vals[k2]);
                else fprintf(f, "<td class=\"num\">-</td>");
            }
            fprintf(f, "</tr>\n");
        }
    }
    fprintf(f, "</table>\n");
    for (int c = 0; c < nc; c++)
        if (!r->stages[cols[c]].n_eval) {
            fprintf(f, "<p class=\"note\">");
            kd_html_text(f, r->stages[cols[c]].name);
            fprintf(f, ": no eval.json (%s)</p>\n", state_names[p->st[cols[c]]]);
        }
    fprintf(f, "</section>\n");
}

// ----------------------------------------------------------------------------- stage plots

#define MAX_SERIES (KD_RD_MAX_KEYS + 1)

typedef struct {
    kd_svg_series s[MAX_SERIES];
    double *buf[MAX_SERIES];
    int n;
} series_set;

// The rows of metric k that hold a value, as one series (markers for held-out metrics).
static void add_key(series_set *ss, const kd_rd_stage *st, int k, const char *name, int markers) {
    const kd_rd_metrics *m = &st->m;
    double *b = kd_malloc(2 * (size_t)(m->n_rows + 1) * sizeof *b);
    int n = 0;
    for (int i = 0; i < m->n_rows; i++) {
        double v = m->vals[(size_t)i * KD_RD_MAX_KEYS + k];
        if (isfinite(v)) b[n] = (double)m->steps[i], b[m->n_rows + 1 + n++] = v;
    }
    if (n == 0 || ss->n >= MAX_SERIES) {
        free(b);
        return;
    }
    ss->buf[ss->n] = b;
    ss->s[ss->n++] = (kd_svg_series){.name = name, .x = b, .y = b + m->n_rows + 1, .n = n, .stride = 1,
                                     .markers = markers};
}

static void plot_set(FILE *f, series_set *ss, const char *title) {
    if (ss->n) kd_svg_plot(f, title, "step", ss->s, ss->n, 560, 240);
    for (int i = 0; i < ss->n; i++) free(ss->buf[i]);
    ss->n = 0;
}

// Which plot a metric goes to: 0 the training curves (and held-out points), 1 DPO rewards,
// 2 log-probabilities, 3 learning rate, 4 gradient norm, -1 none (timing: the table).
static int group_of(const char *key) {
    if (!strcmp(key, "tokens_per_s") || !strcmp(key, "elapsed_s")) return -1;
    if (!strncmp(key, "rewards/", 8)) return 1;
    if (!strncmp(key, "logps/", 6)) return 2;
    if (!strcmp(key, "lr")) return 3;
    if (!strcmp(key, "grad_norm")) return 4;
    return 0;
}

static void stage_plots(FILE *f, const kd_rd_stage *s) {
    static const char *const titles[] = {"training curves (points: held-out)", "DPO rewards", "log-probabilities",
                                         "learning rate", "gradient norm"};
    series_set *ss = kd_calloc(1, sizeof *ss);
    double end[2] = {(double)s->done_step, s->done_eval_loss};
    fprintf(f, "<div class=\"plots\">\n");
    for (int g = 0; g < 5; g++) {
        for (int k = 0; k < s->m.n_keys; k++)
            if (group_of(s->m.keys[k]) == g) add_key(ss, s, k, s->m.keys[k], !strncmp(s->m.keys[k], "eval_", 5));
        if (g == 0 && ss->n && isfinite(s->done_eval_loss))
            ss->s[ss->n++] = (kd_svg_series){.name = "eval_loss (end)", .x = &end[0], .y = &end[1], .n = 1,
                                             .stride = 1, .markers = 1};
        plot_set(f, ss, titles[g]);
    }
    fprintf(f, "</div>\n");
    free(ss);
}

static void stages(FILE *f, const page *p) {
    const kd_rd_run *r = p->r;
    for (int i = 0; i < r->n_stages; i++) {
        const kd_rd_stage *s = &r->stages[i];
        if (!s->m.n_rows && !(s->n_eval && strcmp(s->kind, "eval"))) continue;
        fprintf(f, "<section class=\"stage\"><h2>Stage %d: ", i);
        kd_html_text(f, s->name);
        fprintf(f, " (%s, %s)</h2>\n", s->kind, state_names[p->st[i]]);
        if (s->n_eval && strcmp(s->kind, "eval")) { // kd: held-out KL and CE against the teacher
            fprintf(f, "<table><tr><th>held-out at the end</th><th>value</th></tr>\n");
            for (int k = 0; k < s->n_eval; k++) {
                fprintf(f, "<tr><td>");
                kd_html_text(f, s->eval_keys[k]);
                fprintf(f, "</td><td class=\"num\">%.4f</td></tr>\n", s->eval_vals[k]);
            }
            fprintf(f, "</table>\n");
        }
        if (s->m.n_rows) stage_plots(f, s);
        fprintf(f, "</section>\n");
    }
}

// ----------------------------------------------------------------------------- hardware

// Mean and last of a metric over the rows that hold it.
static int mean_last(const kd_rd_metrics *m, const char *key, double *mean, double *last) {
    int k = kd_rd_key(m, key), n = 0;
    double sum = 0;
    for (int i = 0; k >= 0 && i < m->n_rows; i++) {
        double v = m->vals[(size_t)i * KD_RD_MAX_KEYS + k];
        if (isfinite(v)) sum += v, *last = v, n++;
    }
    *mean = n ? sum / n : NAN;
    return n;
}

static void hardware(FILE *f, const page *p) {
    const kd_rd_run *r = p->r;
    fprintf(f, "<section id=\"hardware\"><h2>Hardware and throughput</h2><table>\n<tr><th>stage</th>"
               "<th>host</th><th>ranks</th><th>backend</th><th>CPUs</th><th>starts</th><th>wall time</th>"
               "<th>tokens/s (mean)</th><th>tokens/s (last)</th></tr>\n");
    for (int i = 0; i < r->n_stages; i++) {
        const kd_rd_stage *s = &r->stages[i];
        if (!s->exists) continue;
        double mean = NAN, last = NAN;
        char wall[32];
        fmt_dur(wall_time(s), wall, sizeof wall);
        fprintf(f, "<tr><td>");
        kd_html_text(f, s->name);
        fprintf(f, "</td><td>");
        kd_html_text(f, s->at.n ? s->at.host : "-");
        if (s->at.n)
            fprintf(f, "</td><td class=\"num\">%d</td><td>%s</td><td class=\"num\">%d</td><td class=\"num\">%d", s->at.ranks,
                    s->at.backend, s->at.cpus, s->at.n);
        else
            fprintf(f, "</td><td>-</td><td>-</td><td>-</td><td>-");
        fprintf(f, "</td><td class=\"num\">%s</td>", wall);
        if (mean_last(&s->m, "tokens_per_s", &mean, &last))
            fprintf(f, "<td class=\"num\">%.0f</td><td class=\"num\">%.0f</td></tr>\n", mean, last);
        else
            fprintf(f, "<td>-</td><td>-</td></tr>\n");
    }
    fprintf(f, "</table></section>\n");
}

static void recipe(FILE *f, const page *p) {
    fprintf(f, "<section id=\"recipe\"><h2>Recipe</h2><details><summary>recipe.resolved.yaml</summary><pre>");
    kd_html_text(f, p->r->recipe_text ? p->r->recipe_text : "(missing)");
    fprintf(f, "</pre></details></section>\n</body></html>\n");
}

// ----------------------------------------------------------------------------- API

int kd_run_report(const char *run_dir, const char *out, char *written, size_t n, kd_error *err) {
    page p = {.r = kd_calloc(1, sizeof *p.r)};
    int rc = kd_rd_load(p.r, run_dir, err);
    if (rc) {
        free(p.r);
        return rc;
    }
    p.alive = p.r->has_process && kd_rd_process_alive(&p.r->proc) == 1;
    classify(&p);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) rc = kd_fail(err, KD_ERUNTIME, "report: out of memory");
    if (f) {
        head(f, &p);
        summary(f, &p);
        notes(f, &p);
        timeline(f, &p);
        evals(f, &p);
        stages(f, &p);
        hardware(f, &p);
        recipe(f, &p);
        fclose(f);
        char def[KD_PATH_MAX + 16];
        snprintf(def, sizeof def, "%s/report.html", run_dir);
        snprintf(written, n, "%s", out ? out : def);
        rc = kd_write_file_atomic(written, text, len, err);
    }
    free(text);
    kd_rd_free(p.r);
    free(p.r);
    return rc;
}
