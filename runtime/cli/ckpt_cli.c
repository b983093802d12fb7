// ckpt_cli.c: `kdtrain ckpt list|verify|digest` (docs/checkpoints.md). kd_ckpt_main gets
// argv starting at "ckpt" and returns the exit status: 0 ok, 2 bad usage or input,
// 3 an invalid checkpoint (verify, digest). Needs no MPI.
#include <dirent.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/cli/cli.h"
#include "runtime/store/checkpoint.h"

static const char *usage_all =
    "usage: kdtrain ckpt <command> ...\n"
    "  list RUN_DIR   every checkpoint under RUN_DIR/stages/*/ckpt/: stage, step, size, validity\n"
    "  verify PATH    check a checkpoint's MANIFEST, sizes and SHA-256 (exit 0 valid, 3 invalid)\n"
    "  digest PATH    print the SHA-256 of its parameters (float32 LE, stored order)\n"
    "Each command takes --help.\n";

static int usage_error(const char *msg) {
    fprintf(stderr, "kdtrain ckpt: %s\n%s", msg, usage_all);
    return KD_EINPUT;
}

// Sum of the sizes of the plain files in dir.
static uint64_t dir_bytes(const char *dir) {
    uint64_t sum = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    for (struct dirent *de; (de = readdir(d));) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) sum += (uint64_t)st.st_size;
    }
    closedir(d);
    return sum;
}

static void human(uint64_t b, char *out, size_t n) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    snprintf(out, n, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_list(const char *run_dir) {
    struct stat st;
    if (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "kdtrain ckpt list: %s: not a directory\n", run_dir);
        return KD_EINPUT;
    }
    char pat[4096];
    snprintf(pat, sizeof pat, "%s/stages/*/ckpt/*", run_dir);
    glob_t g;
    int n = 0;
    if (glob(pat, GLOB_PERIOD, NULL, &g) != 0) g.gl_pathc = 0;
    if (g.gl_pathc) qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), cmp_str);
    printf("%-24s %10s %10s  %s\n", "STAGE", "STEP", "SIZE", "STATUS");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *p = g.gl_pathv[i], *base = strrchr(p, '/') + 1;
        int is_step = strncmp(base, "step-", 5) == 0, is_tmp = strncmp(base, ".tmp-", 5) == 0;
        if (!is_step && !is_tmp) continue;
        // stage = the directory two levels above the checkpoint: stages/<stage>/ckpt/<ckpt>
        char stage[256];
        const char *s = p + strlen(run_dir) + strlen("/stages/");
        snprintf(stage, sizeof stage, "%.*s", (int)(strchr(s, '/') - s), s);
        char size[32], why[1024];
        human(dir_bytes(p), size, sizeof size);
        if (is_tmp) {
            printf("%-24s %10s %10s  unfinished: %s (an interrupted save; removed by the next "
                   "prune)\n",
                   stage, "-", size, base);
        } else {
            int ok = kd_ckpt_verify(p, why, sizeof why);
            printf("%-24s %10" PRId64 " %10s  %s%s\n", stage, (int64_t)strtoll(base + 5, NULL, 10),
                   size, ok ? "valid" : "invalid: ", ok ? "" : why);
        }
        n++;
    }
    if (n == 0) printf("(no checkpoints under %s/stages/*/ckpt/)\n", run_dir);
    globfree(&g);
    return KD_OK;
}

static int cmd_verify(const char *path) {
    char why[1024];
    if (kd_ckpt_verify(path, why, sizeof why)) {
        printf("%s: valid\n", path);
        return KD_OK;
    }
    printf("%s: invalid: %s\n", path, why);
    return KD_ERUNTIME;
}

static int cmd_digest(const char *path) {
    char why[1024], hex[65];
    if (!kd_ckpt_verify(path, why, sizeof why)) {
        fprintf(stderr, "kdtrain ckpt digest: %s: invalid: %s\n", path, why);
        return KD_ERUNTIME;
    }
    kd_error err = {0};
    int rc = kd_ckpt_digest(path, hex, &err);
    if (rc) {
        fprintf(stderr, "kdtrain ckpt digest: %s\n", err.msg);
        return rc;
    }
    printf("%s\n", hex);
    return KD_OK;
}

int kd_ckpt_main(int argc, char **argv) {
    static const struct {
        const char *name, *arg, *help;
        int (*fn)(const char *);
    } cmds[] = {
        {"list", "RUN_DIR",
         "List every checkpoint under RUN_DIR/stages/*/ckpt/ with its stage, step, size and\n"
         "whether it is valid (MANIFEST, sizes and SHA-256 checked), or why not.\n",
         cmd_list},
        {"verify", "PATH",
         "Check that PATH (a ckpt/step-XXXXXXXX directory) has a MANIFEST and that every file\n"
         "it lists has the listed size and SHA-256. Exit 0 if valid, 3 (with why) if not.\n",
         cmd_verify},
        {"digest", "PATH",
         "Print the SHA-256 over all parameters (float32 little-endian, in stored order) of a\n"
         "valid checkpoint. Equal digests mean equal weights. Exit 3 if PATH is invalid.\n",
         cmd_digest},
    };
    if (argc < 2) return usage_error("missing command");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("%s", usage_all);
        return KD_OK;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name) != 0) continue;
        if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            printf("usage: kdtrain ckpt %s %s\n%s", cmds[i].name, cmds[i].arg, cmds[i].help);
            return KD_OK;
        }
        if (argc != 3 || argv[2][0] == '-') {
            fprintf(stderr,
                    "kdtrain ckpt %s: expected one argument %s\nusage: kdtrain ckpt %s %s\n",
                    cmds[i].name, cmds[i].arg, cmds[i].name, cmds[i].arg);
            return KD_EINPUT;
        }
        return cmds[i].fn(argv[2]);
    }
    char msg[256];
    snprintf(msg, sizeof msg, "unknown command '%s'", argv[1]);
    return usage_error(msg);
}
