// jsonl.c: the JSON Lines reader (see jsonl.h): getline + kd_json_parse, and the
// rewrite of the parser's "WHERE: line 1 col C: ..." into "PATH:LINE:COL: ...".
#include "data/jsonl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kd_jsonl {
    char *path;
    FILE *f;
    char *line; // getline buffer
    size_t cap;
    long lineno;
};

int kd_jsonl_open(kd_jsonl **out, const char *path, kd_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return kd_fail(err, KD_EINPUT, "%s: cannot read JSONL file: %s", path, strerror(errno));
    kd_jsonl *r = kd_calloc(1, sizeof *r);
    r->path = kd_strdup(path);
    r->f = f;
    *out = r;
    return KD_OK;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

int kd_jsonl_next(kd_jsonl *r, kd_json **v, kd_error *err) {
    *v = NULL;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->line, &r->cap, r->f);
        if (n < 0) {
            if (ferror(r->f))
                return kd_fail(err, KD_ERUNTIME, "%s:%ld: read error: %s (is it a directory?)",
                               r->path, r->lineno + 1, strerror(errno ? errno : EIO));
            return KD_OK; // end of file
        }
        r->lineno++;
        size_t len = (size_t)n;
        if (len && r->line[len - 1] == '\n') len--;
        if (len && r->line[len - 1] == '\r') len--;
        if (is_blank(r->line, len)) continue;

        char where[1100];
        snprintf(where, sizeof where, "%s:%ld", r->path, r->lineno);
        kd_error e = {0};
        if (kd_json_parse(r->line, len, where, v, &e) == KD_OK) return KD_OK;
        // one line of input is always "line 1" of the parser: fold the column into
        // the standard PATH:LINE:COL form
        size_t wl = strlen(where);
        unsigned long ln = 0, col = 0;
        int used = 0;
        if (!strncmp(e.msg, where, wl) &&
            sscanf(e.msg + wl, ": line %lu col %lu: %n", &ln, &col, &used) == 2 && used > 0)
            return kd_fail(err, KD_EINPUT, "%s:%lu: %s", where, col, e.msg + wl + used);
        return kd_fail(err, e.code ? e.code : KD_EINPUT, "%s", e.msg);
    }
}

long kd_jsonl_line(const kd_jsonl *r) {
    return r->lineno;
}

void kd_jsonl_close(kd_jsonl *r) {
    if (!r) return;
    if (r->f) fclose(r->f);
    free(r->line);
    free(r->path);
    free(r);
}
