// attempt.c: STAGE/attempts.jsonl lines and process start times (attempt.h).
#include "runtime/base/attempt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/base/json.h"

unsigned long long kd_proc_start_ticks(int pid) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); // the command name (field 2) may hold spaces
    for (int field = 2; p && *p && field < 22; p++)
        if (*p == ' ') field++;
    return p ? strtoull(p, NULL, 10) : 0;
}

double kd_unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int kd_attempt_noted(const char *stage_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/attempts.jsonl", stage_dir);
    return access(path, F_OK) == 0;
}

void kd_attempt_note(const char *stage_dir, int ranks, const char *backend, double time) {
    char path[4096], host[128] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(path, sizeof path, "%s/attempts.jsonl", stage_dir);
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "{\"time\": %.3f, \"host\": ", time > 0 ? time : kd_unix_now());
    kd_json_write_string(f, host);
    fprintf(f, ", \"pid\": %d, \"start_ticks\": %llu, \"ranks\": %d, \"backend\": ", (int)getpid(),
            kd_proc_start_ticks((int)getpid()), ranks);
    kd_json_write_string(f, backend);
    fprintf(f, ", \"cpus\": %ld}\n", sysconf(_SC_NPROCESSORS_ONLN));
    fclose(f);
}
