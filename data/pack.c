// pack.c: `data pack`, text files -> token dataset (any tokenizer, data/tokenizer.h). inspect.c and
// synth.c hold the other data tools; their command line is runtime/cli/data_cli.c.
#include "data/tools.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data/chat.h"
#include "data/prefs.h"
#include "data/tokenizer.h"
#include "data/writer.h"
#include "runtime/base/fs.h"

// ============================================================================ pack

// The tokenizer and the ids buffer of one pack.
typedef struct {
    kd_dataset_writer *w;
    const kd_tokenizer *tok;
    int32_t bos, eos; // bos -1: the tokenizer has none, documents start with the text
    kd_ids ids;
} pack_ctx;

// Append one document [BOS] + ids of text + EOS (skipped when text is empty). Special
// tokens written in the text stay text.
static int add_doc(pack_ctx *c, const char *text, size_t n, kd_error *err) {
    if (n == 0) return KD_OK;
    c->ids.n = 0;
    if (c->bos >= 0) kd_ids_push(&c->ids, c->bos);
    int rc = kd_tokenizer_encode(c->tok, text, n, 0, &c->ids, err);
    if (rc) return rc;
    kd_ids_push(&c->ids, c->eos);
    return kd_dataset_writer_add(c->w, c->ids.v, NULL, c->ids.n, err);
}

static int is_blank_line(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

// Paragraph mode: a paragraph is a run of non-blank lines; it is stored without the
// newline that ends its last line.
static int add_paragraphs(pack_ctx *c, const char *text, size_t n, kd_error *err) {
    size_t start = 0, i = 0;
    int rc = KD_OK, in_par = 0;
    while (rc == KD_OK && i <= n) {
        size_t e = i;
        while (e < n && text[e] != '\n') e++; // line is [i, e)
        int blank = is_blank_line(text + i, e - i);
        if (!blank && !in_par) {
            start = i;
            in_par = 1;
        }
        if (in_par && (blank || e >= n)) {
            size_t end = blank ? (i > start ? i - 1 : start) : e; // drop the '\n' before
            rc = add_doc(c, text + start, end - start, err);
            in_par = 0;
        }
        i = e + 1;
    }
    return rc;
}

static int read_file(const char *path, char **buf, size_t *n, kd_error *err) {
    int e;
    kd_read_status rs = kd_read_file(path, 0, buf, n, &e);
    if (rs == KD_READ_EOPEN)
        return kd_fail(err, KD_EINPUT, "%s: cannot read text file: %s", path, strerror(e));
    if (rs != KD_READ_OK) return kd_fail(err, KD_EINPUT, "%s: read error (is it a directory?)", path);
    return KD_OK;
}

int kd_data_pack(const char *const *files, int n_files, const char *out, int paragraphs,
                 const char *tokenizer, kd_error *err) {
    kd_tokenizer *tok = NULL;
    int rc = kd_tokenizer_open(&tok, tokenizer ? tokenizer : KD_TOK_BYTES_NAME, err);
    if (rc) return rc;
    kd_vocab voc;
    kd_vocab_from_tokenizer(&voc, tok);
    pack_ctx c = {.tok = tok, .bos = voc.bos, .eos = voc.eos};
    if (c.eos < 0)
        rc = kd_fail(err, KD_EINPUT, "%s: tokenizer '%s' has no EOS id to end documents with", out,
                     kd_tokenizer_name(tok));
    if (rc == KD_OK) rc = kd_dataset_writer_open_vocab(&c.w, out, "tokens", &voc, 0, err);
    if (rc) {
        kd_tokenizer_free(tok);
        return rc;
    }
    for (int i = 0; rc == KD_OK && i < n_files; i++) {
        char *text = NULL;
        size_t n = 0;
        if ((rc = read_file(files[i], &text, &n, err))) break;
        rc = paragraphs ? add_paragraphs(&c, text, n, err) : add_doc(&c, text, n, err);
        if (rc) kd_error_prefix(err, "%s: ", files[i]);
        free(text);
    }
    kd_ids_free(&c.ids);
    if (rc == KD_OK && kd_dataset_writer_n_tokens(c.w) == 0)
        rc = kd_fail(err, KD_EINPUT, "%s: the input text files are empty, nothing to pack", out);
    int rc2 = kd_dataset_writer_close(c.w, rc == KD_OK, err);
    kd_tokenizer_free(tok);
    return rc ? rc : rc2;
}

// ============================================================================ CLI
