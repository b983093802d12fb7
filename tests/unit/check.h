// check.h: the one assertion kit of the C unit tests (header-only, all static). Owns the
// check and failure counters; CHECK(cond, fmt, ...), which counts a check and on failure
// prints "FAIL file:line: cond: message" (the message must carry the disagreeing values);
// a scratch directory under $TMPDIR or /tmp (check_tmpdir / check_rmtree); check_done(),
// which prints the summary and returns the exit status (0 all passed, 1 any failed).
// MPI tests set check_rank/check_world so FAIL lines name the rank, and sum check_failures
// over ranks themselves (see test_ckpt_fixture.h). Included by tests/unit/test_*.c and the
// tests/unit/*_util.h headers (through those also by tests/bench/bench_mamba2.c).
#pragma once
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int check_failures __attribute__((unused)) = 0;
static int check_count __attribute__((unused)) = 0;
static int check_rank __attribute__((unused)) = -1; // >= 0 in MPI tests: FAIL lines name it
static int check_world __attribute__((unused)) = 0;

// Counts one failure and prints the location; CHECK prints the message after it.
static inline void check_fail_at(const char *file, int line, const char *cond) {
    check_failures++;
    if (check_rank >= 0)
        fprintf(stderr, "FAIL rank %d/%d %s:%d: ", check_rank, check_world, file, line);
    else
        fprintf(stderr, "FAIL %s:%d: ", file, line);
    if (strcmp(cond, "0") != 0) fprintf(stderr, "%s: ", cond); // CHECK(0, ...) says it all
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_fail_at(__FILE__, __LINE__, #cond);                                              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

// Prints "<name>: all N checks passed" or "<name>: F of N checks FAILED"; the exit status.
static inline int check_done(const char *name) {
    if (check_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, check_failures, check_count);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, check_count);
    return 0;
}

// Makes a fresh directory $TMPDIR/kd_<tag>_XXXXXX (TMPDIR unset: /tmp) into dir (size n);
// 0 on success, else prints why and returns -1.
static inline int check_tmpdir(char *dir, size_t n, const char *tag) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, n, "%s/kd_%s_XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    if (mkdtemp(dir)) return 0;
    perror("mkdtemp");
    return -1;
}

static inline int check_rm_entry(const char *path, const struct stat *sb, int flag,
                                 struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

// Removes dir and everything below it (links are removed, not followed); warns on failure.
static inline void check_rmtree(const char *dir) {
    if (nftw(dir, check_rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}
