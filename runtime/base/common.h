// common.h: what every kdtrain module shares: the error record that library code fills
// (kd_error), the exit statuses only main() turns errors into, checked allocation, and
// small helpers. Library code never calls exit(): it returns a status and fills kd_error.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// Exit statuses (docs/cli.md). Library functions return these as error codes too.
enum {
    KD_OK = 0,
    KD_EINTERNAL = 1,   // a bug: an invariant did not hold
    KD_EINPUT = 2,      // bad input: recipe, data file, CLI; nothing was written
    KD_ERUNTIME = 3,    // runtime failure (I/O, divergence); saved state is intact
    KD_EREQUEUE = 75,   // saved on a signal or time budget: please requeue
};

// kd_error: one message, "where: what was expected, what was found". `where` is a
// file:line:col, a key path or a file name; the message is a single line.
typedef struct {
    int code;
    char msg[1024];
} kd_error;

// Fill err (if not NULL) and return code. Format like printf. Keeps the first error.
int kd_fail(kd_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Prefix an existing message with more context ("stage 'kd': ...").
void kd_error_prefix(kd_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kd_error_clear(kd_error *err);

// Allocation that never returns NULL: on failure prints file:line and aborts the process
// (running out of host memory is not recoverable; sizes are checked against limits first).
#define kd_malloc(n) kd_malloc_at((n), __FILE__, __LINE__)
#define kd_calloc(n, sz) kd_calloc_at((n), (sz), __FILE__, __LINE__)
#define kd_realloc(p, n) kd_realloc_at((p), (n), __FILE__, __LINE__)
void *kd_malloc_at(size_t n, const char *file, int line);
void *kd_calloc_at(size_t n, size_t sz, const char *file, int line);
void *kd_realloc_at(void *p, size_t n, const char *file, int line);
char *kd_strdup(const char *s);

// Internal invariant: prints file:line and aborts. Never for user input.
#define KD_ASSERT(cond)                                                                    \
    do {                                                                                   \
        if (!(cond)) kd_panic(__FILE__, __LINE__, "internal error: %s", #cond);          \
    } while (0)
_Noreturn void kd_panic(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Monotonic wall clock in seconds.
double kd_now(void);

// Portable string helpers.
int kd_str_endswith(const char *s, const char *suffix);
// glob match with '*' (any run of chars, including '.') and '?'; used for freezing.
int kd_glob_match(const char *pattern, const char *s);
