// tokenize_cli.c: `kdtrain tokenize --tokenizer SPEC [--decode] [--special] [--whole]
// [--info] [FILE|-]` (docs/cli.md): text to ids or ids to text with any tokenizer spec of
// data/tokenizer.h, for checking a tokenizer against another implementation. By default
// each input line (without its '\n') is one text and gives one output line; --whole takes
// the input as one text. Exit status: 0 done, 2 bad usage or input.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "runtime/cli/cli.h"

static const char *usage =
    "usage: kdtrain tokenize --tokenizer SPEC [--decode] [--special] [--whole] [--info] [FILE|-]\n"
    "  --tokenizer SPEC  'bytes', a directory holding tokenizer.json, or the file itself\n"
    "  (default)         each input line -> one line of space-separated ids\n"
    "  --decode          each input line of ids -> one line of text\n"
    "  --special         match special tokens written in the text (decode: print them)\n"
    "  --whole           the whole input is one text (one line of ids; decode: raw text)\n"
    "  --info            print name, fingerprint, vocab size and special ids, then exit\n"
    "FILE defaults to stdin ('-').\n";

typedef struct {
    const char *spec, *file;
    int decode, special, whole, info;
} tok_args;

static int parse_args(int argc, char **argv, tok_args *a) {
    *a = (tok_args){.file = "-"};
    int nfile = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) return fputs(usage, stdout), -1;
        if (!strcmp(s, "--tokenizer") && i + 1 < argc)
            a->spec = argv[++i];
        else if (!strcmp(s, "--decode"))
            a->decode = 1;
        else if (!strcmp(s, "--special"))
            a->special = 1;
        else if (!strcmp(s, "--whole"))
            a->whole = 1;
        else if (!strcmp(s, "--info"))
            a->info = 1;
        else if ((s[0] != '-' || !strcmp(s, "-")) && !nfile++)
            a->file = s;
        else
            return fprintf(stderr, "kdtrain tokenize: unexpected argument '%s'\n%s", s, usage),
                   KD_EINPUT;
    }
    if (!a->spec)
        return fprintf(stderr, "kdtrain tokenize: --tokenizer SPEC is required\n%s", usage),
               KD_EINPUT;
    return KD_OK;
}

// The whole input in a new buffer (*n bytes).
static char *read_input(const char *file, size_t *n) {
    FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 1 << 16;
    char *buf = kd_malloc(cap);
    *n = 0;
    for (size_t k; (k = fread(buf + *n, 1, cap - *n, f)) > 0;) {
        *n += k;
        if (*n == cap) buf = kd_realloc(buf, cap *= 2);
    }
    int bad = ferror(f);
    if (f != stdin) fclose(f);
    if (bad) free(buf), buf = NULL;
    return buf;
}

// One line of space-separated ids (formatted by hand: printf per id dominated the time).
static void print_ids(const kd_ids *ids) {
    char buf[16 * 256];
    size_t n = 0;
    for (size_t i = 0; i < ids->n; i++) {
        char d[12];
        int k = 0;
        uint32_t v = (uint32_t)ids->v[i]; // ids are >= 0
        do d[k++] = (char)('0' + v % 10), v /= 10;
        while (v);
        if (i) buf[n++] = ' ';
        while (k) buf[n++] = d[--k];
        if (n > sizeof buf - 16) fwrite(buf, 1, n, stdout), n = 0;
    }
    buf[n++] = '\n';
    fwrite(buf, 1, n, stdout);
}

// Parses the ids of one line (src:line in messages) onto ids.
static int parse_ids(const kd_tokenizer *t, const char *s, size_t n, const char *src, size_t line,
                     kd_ids *ids) {
    char *tmp = kd_malloc(n + 1), *p = tmp;
    memcpy(tmp, s, n), tmp[n] = '\0';
    int rc = KD_OK;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || (*end && !strchr(" \t\r\n", *end)) || v < 0 ||
            v >= kd_tokenizer_vocab_size(t)) {
            fprintf(stderr, "kdtrain tokenize: %s:%zu: '%.*s': expected an id in [0, %d)\n", src,
                    line, (int)strcspn(p, " \t\r\n"), p, (int)kd_tokenizer_vocab_size(t));
            rc = KD_EINPUT;
            break;
        }
        kd_ids_push(ids, (int32_t)v);
        p = end;
    }
    free(tmp);
    return rc;
}

// One text (or line of ids) through the tokenizer, printed.
static int one(const kd_tokenizer *t, const tok_args *a, const char *s, size_t n, size_t line,
               kd_ids *ids, kd_strbuf *text, kd_error *err) {
    ids->n = 0, text->n = 0;
    if (!a->decode) {
        if (kd_tokenizer_encode(t, s, n, a->special, ids, err)) return err->code;
        print_ids(ids);
        return KD_OK;
    }
    int rc = parse_ids(t, s, n, strcmp(a->file, "-") ? a->file : "stdin", line, ids);
    if (!rc) rc = kd_tokenizer_decode(t, ids->v, ids->n, !a->special, text, err);
    if (rc) return rc;
    if (text->n) fwrite(text->s, 1, text->n, stdout);
    if (!a->whole) putchar('\n');
    return KD_OK;
}

static void print_info(const kd_tokenizer *t) {
    int32_t stop[KD_TOK_MAX_STOP];
    int n = kd_tokenizer_stop_ids(t, stop);
    printf("name %s\nfingerprint %s\nvocab_size %d\nbos %d\npad %d\nstop", kd_tokenizer_name(t),
           kd_tokenizer_fingerprint(t), (int)kd_tokenizer_vocab_size(t), (int)kd_tokenizer_bos(t),
           (int)kd_tokenizer_pad(t));
    for (int i = 0; i < n; i++) printf(" %d", (int)stop[i]);
    putchar('\n');
}

int kd_tokenize_main(int argc, char **argv) {
    tok_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? KD_OK : rc;
    kd_error err = {0};
    kd_tokenizer *t;
    if (kd_tokenizer_open(&t, a.spec, &err)) {
        fprintf(stderr, "kdtrain tokenize: %s\n", err.msg);
        return err.code;
    }
    if (a.info) {
        print_info(t);
        kd_tokenizer_free(t);
        return KD_OK;
    }
    size_t n;
    char *in = read_input(a.file, &n);
    if (!in) {
        fprintf(stderr, "kdtrain tokenize: %s: cannot read: %s\n", a.file, strerror(errno));
        kd_tokenizer_free(t);
        return KD_EINPUT;
    }
    kd_ids ids = {0};
    kd_strbuf text = {0};
    size_t line = 1;
    for (size_t i = 0; !rc && i < n; line++) {
        size_t e = a.whole ? n : i;
        while (e < n && in[e] != '\n') e++;
        rc = one(t, &a, in + i, e - i, line, &ids, &text, &err);
        i = e + 1;
    }
    if (rc && err.msg[0]) fprintf(stderr, "kdtrain tokenize: %s\n", err.msg);
    fflush(stdout);
    free(in), kd_ids_free(&ids), kd_strbuf_free(&text);
    kd_tokenizer_free(t);
    return rc;
}
