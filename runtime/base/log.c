// log.c: console and metrics.jsonl output (log.h).
#include "runtime/base/log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void kd_log_table_begin(const char *title) {
    printf("+-%s\n", "------------------------------------------------------------");
    printf("| %s\n", title);
    printf("+-%s\n", "------------------------------------------------------------");
}

void kd_log_kv(const char *key, const char *fmt, ...) {
    char val[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(val, sizeof val, fmt, ap);
    va_end(ap);
    printf("| %-26s %s\n", key, val);
}

void kd_log_table_end(void) {
    printf("+-%s\n", "------------------------------------------------------------");
    fflush(stdout);
}

void kd_log_info(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("kdtrain: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

void kd_log_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kdtrain: warning: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
}

int kd_metrics_open(kd_metrics *m, const char *path, kd_error *err) {
    snprintf(m->path, sizeof m->path, "%s", path);
    m->f = fopen(path, "a");
    if (!m->f) return kd_fail(err, KD_ERUNTIME, "%s: cannot open for append: %s", path, strerror(errno));
    return KD_OK;
}

void kd_metrics_write(kd_metrics *m, long step, const char *const *keys, const double *vals, int n) {
    if (!m->f) return;
    fprintf(m->f, "{\"step\": %ld", step);
    for (int i = 0; i < n; i++) {
        if (isfinite(vals[i])) fprintf(m->f, ", \"%s\": %.9g", keys[i], vals[i]);
        else fprintf(m->f, ", \"%s\": null", keys[i]);
    }
    fprintf(m->f, "}\n");
    fflush(m->f);
}

void kd_metrics_close(kd_metrics *m) {
    if (m->f) fclose(m->f);
    m->f = NULL;
}

int kd_metrics_truncate_after(const char *path, long last_step, kd_error *err) {
    FILE *f = fopen(path, "r");
    if (!f) return KD_OK;  // nothing logged yet
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *g = fopen(tmp, "w");
    if (!g) {
        fclose(f);
        return kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", tmp, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        long step = -1;
        if (sscanf(line, "{\"step\": %ld", &step) == 1 && step > last_step) continue;
        if (!strchr(line, '\n')) continue;  // a torn last line from a kill
        fputs(line, g);
    }
    free(line);
    fclose(f);
    int bad = fflush(g) != 0 || fsync(fileno(g)) != 0;
    bad |= fclose(g) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return kd_fail(err, KD_ERUNTIME, "%s: cannot rewrite: %s", path, strerror(errno));
    }
    return KD_OK;
}
