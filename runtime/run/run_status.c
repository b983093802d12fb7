// run_status.c: kd_run_status (run_status.h): one screen about a run started with mpirun,
// from what run_read.c reads back.
#include "runtime/run/run_status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/run/run_read.h"

static void fmt_time(double t, char *out, size_t n) {
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void fmt_dur(double s, char *out, size_t n) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)s;
    snprintf(out, n, "%ldh%02ldm%02lds", t / 3600, (t / 60) % 60, t % 60);
}

static void print_process(const kd_rd_run *r, int finished) {
    if (!r->has_process) {
        if (finished) printf("%-11s alive: no (the run finished)\n", "process");
        else printf("%-11s alive: no (no attempts.jsonl in %s/stages: no stage started, or an older kdtrain ran it)\n",
                    "process", r->dir);
        return;
    }
    const kd_rd_process *p = &r->proc;
    char when[64], host[128] = "";
    fmt_time(p->started, when, sizeof when);
    gethostname(host, sizeof host - 1);
    int alive = kd_rd_process_alive(p);
    printf("%-11s pid %d on host %s (%d ranks), newest stage start %s; ", "process", p->pid, p->host, p->ranks, when);
    if (alive > 0) printf("alive: yes\n");
    else if (alive == 0) printf("alive: no (pid %d is gone)\n", p->pid);
    else
        printf("alive: unknown (rank 0 runs on host %s, this is %s: see 'last write')\n", p->host, host);
}

// Seconds per step from the last two rows with increasing elapsed_s (one attempt).
static double sec_per_step(const kd_rd_metrics *m) {
    int ke = kd_rd_key(m, "elapsed_s");
    if (ke < 0) return NAN;
    int last = -1;
    for (int i = m->n_rows - 1; i >= 0; i--) {
        double e = m->vals[(size_t)i * KD_RD_MAX_KEYS + ke];
        if (isnan(e)) continue;
        if (last < 0) {
            last = i;
            continue;
        }
        double el = m->vals[(size_t)last * KD_RD_MAX_KEYS + ke];
        if (el <= e || m->steps[last] <= m->steps[i]) return NAN; // a restart in between
        return (el - e) / (double)(m->steps[last] - m->steps[i]);
    }
    return NAN;
}

static void print_stage(const kd_rd_run *r, int i) {
    const kd_rd_stage *s = &r->stages[i];
    const kd_rd_metrics *m = &s->m;
    int kl = kd_rd_key(m, "loss");
    int row = -1;
    for (int j = m->n_rows - 1; j >= 0 && kl >= 0 && row < 0; j--)
        if (!isnan(m->vals[(size_t)j * KD_RD_MAX_KEYS + kl])) row = j;
    long long step = m->n_rows ? (long long)m->steps[m->n_rows - 1] : 0;
    printf("%-11s %s (%d/%d, %s): ", "stage", s->tag, i + 1, r->n_stages, s->kind);
    if (s->steps > 0) printf("step %lld/%d", step, s->steps);
    else printf("%s", s->exists ? "running (no steps)" : "not started");
    if (row >= 0)
        printf(", last loss %.6f at step %lld", m->vals[(size_t)row * KD_RD_MAX_KEYS + kl],
               (long long)m->steps[row]);
    printf("\n");
    double sps = sec_per_step(m);
    char d[32];
    if (s->steps > 0 && isfinite(sps)) {
        fmt_dur(sps * (double)(s->steps - step), d, sizeof d);
        printf("%-11s %s for this stage (%.3f s/step at the last log lines)\n", "eta", d, sps);
    } else {
        printf("%-11s unknown (fewer than two log lines of this attempt)\n", "eta");
    }
    if (s->latest_ckpt >= 0) printf("%-11s %s/ckpt/step-%08ld\n", "checkpoint", s->dir, s->latest_ckpt);
    else printf("%-11s none yet\n", "checkpoint");
}

int kd_run_status(const char *run_dir, kd_error *err) {
    kd_rd_run *r = kd_calloc(1, sizeof *r);
    int rc = kd_rd_load(r, run_dir, err);
    if (rc) {
        free(r);
        return rc;
    }
    int done = 0, cur = -1;
    for (int i = 0; i < r->n_stages; i++) {
        if (r->stages[i].done) done++;
        else if (cur < 0) cur = i;
    }
    printf("%-11s %s%s%s%s\n", "run", r->dir, r->run_name[0] ? " (" : "", r->run_name,
           r->run_name[0] ? ")" : "");
    print_process(r, cur < 0 && r->n_stages > 0);
    printf("%-11s %d of %d stages finished%s\n", "progress", done, r->n_stages,
           cur < 0 && r->n_stages ? ": finished" : "");
    if (cur >= 0) print_stage(r, cur);
    double last = 0;
    for (int i = 0; i < r->n_stages; i++)
        if (r->stages[i].last_write > last) last = r->stages[i].last_write;
    if (last > 0) {
        char when[64];
        fmt_time(last, when, sizeof when);
        printf("%-11s %s (%.0f s ago)\n", "last write", when, difftime(time(NULL), (time_t)last));
    }
    for (int i = 0; i < r->n_notes; i++) printf("%-11s %s\n", "note", r->notes[i]);
    kd_rd_free(r);
    free(r);
    return KD_OK;
}
