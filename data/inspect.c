// inspect.c: `kdtrain data inspect`: a human- and script-readable summary of a token or
// preference dataset. Output is "key: value" lines; tests parse unigram_entropy_nats and
// the tokenizer lines from it.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/h5util.h"
#include "data/prefs.h"
#include "data/tokenizer.h"
#include "data/tools.h"

#define BLOCK (1u << 20)

// The tokenizer lines shared by both kinds.
static void print_tokenizer(FILE *f, const char *name, const char *fp, const int32_t *stop, int n) {
    fprintf(f, "tokenizer: %s\ntokenizer_fingerprint: %s\nstop_ids:", name, fp[0] ? fp : "unknown");
    for (int i = 0; i < n; i++) fprintf(f, " %d", (int)stop[i]);
    fprintf(f, "%s\n", n ? "" : " none");
}

// ids as " 1 2 3" then, for the byte tokenizer, their text.
static void print_ids(FILE *f, const char *key, const int32_t *ids, int n, int bytes) {
    fprintf(f, "%s_ids:", key);
    for (int i = 0; i < n; i++) fprintf(f, " %d", (int)ids[i]);
    fprintf(f, "\n");
    if (!bytes) return;
    char piece[16];
    fprintf(f, "%s_text: \"", key);
    for (int i = 0; i < n; i++) fputs(kd_tokenizer_bytes_piece(ids[i], piece), f);
    fprintf(f, "\"\n");
}

// 1 if path is an HDF5 file whose kind attribute says "preference".
static int is_preference_file(const char *path) {
    char kind[32] = "";
    H5E_BEGIN_TRY {
        hid_t h = H5Fis_hdf5(path) > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
        if (h >= 0) {
            if (kd_h5_read_str_attr(h, "kind", kind, sizeof kind) < 0) kind[0] = '\0';
            H5Fclose(h);
        }
    }
    H5E_END_TRY;
    return !strcmp(kind, "preference");
}

// Preference datasets: counts per part and the first example (first K ids of each part).
static int inspect_prefs(const char *path, int first, FILE *f, kd_error *err) {
    kd_prefs *p;
    int rc = kd_prefs_open(&p, path, err);
    if (rc) return rc;
    const kd_prefs_info *in = kd_prefs_get_info(p);
    int32_t *part[3] = {NULL, NULL, NULL};
    int len[3] = {0, 0, 0};
    rc = kd_prefs_read(p, 0, &part[0], &len[0], &part[1], &len[1], &part[2], &len[2], err);
    if (rc == KD_OK) {
        fprintf(f, "file: %s\nkind: preference\n", path);
        print_tokenizer(f, in->tokenizer, in->fingerprint, in->stop_ids, in->n_stop);
        fprintf(f, "vocab_size: %d\nbos_id: %d\neos_id: %d\npad_id: %d\n", in->vocab_size,
                in->bos_id, in->eos_id, in->pad_id);
        fprintf(f,
                "examples: %llu\nprompt_tokens: %llu\nchosen_tokens: %llu\nrejected_tokens: %llu\n",
                (unsigned long long)in->count, (unsigned long long)in->n_tokens[0],
                (unsigned long long)in->n_tokens[1], (unsigned long long)in->n_tokens[2]);
        static const char *key[3] = {"first_prompt", "first_chosen", "first_rejected"};
        int bytes = strcmp(in->tokenizer, KD_TOK_BYTES_NAME) == 0;
        for (int k = 0; k < 3; k++)
            print_ids(f, key[k], part[k], len[k] < first ? len[k] : first, bytes);
    }
    for (int k = 0; k < 3; k++) free(part[k]);
    kd_prefs_close(p);
    return rc;
}

int kd_data_inspect(const char *path, int first, FILE *f, kd_error *err) {
    if (first < 0) first = 0;
    if (first > 256) first = 256;
    if (is_preference_file(path)) return inspect_prefs(path, first, f, err);
    kd_dataset *d;
    int rc = kd_dataset_open(&d, path, err);
    if (rc) return rc;
    const kd_dataset_info *in = kd_dataset_get_info(d);
    const uint64_t *off = kd_dataset_offsets(d);
    uint64_t n = in->n_tokens, dmin = UINT64_MAX, dmax = 0;
    for (uint64_t i = 0; i < in->n_docs; i++) {
        uint64_t l = off[i + 1] - off[i];
        dmin = l < dmin ? l : dmin;
        dmax = l > dmax ? l : dmax;
    }
    if (in->n_docs == 0) dmin = 0;

    // one streaming pass: unigram counts and mask coverage
    uint64_t *count = kd_calloc((size_t)in->vocab_size, sizeof *count), masked = 0;
    size_t bn = n < BLOCK ? (size_t)n : BLOCK;
    int32_t *tok = kd_malloc(bn * sizeof *tok);
    uint8_t *mask = kd_malloc(bn);
    int32_t head[256];
    int nhead = first < 0 ? 0 : first > 256 ? 256 : first;
    if ((uint64_t)nhead > n) nhead = (int)n;
    for (uint64_t s = 0; rc == KD_OK && s < n; s += bn) {
        size_t k = n - s < bn ? (size_t)(n - s) : bn;
        rc = kd_dataset_read_tokens(d, s, k, tok, mask, err);
        if (rc) break;
        for (size_t i = 0; i < k; i++) {
            count[tok[i]]++; // ids were validated at open
            masked += mask[i];
        }
        if (s == 0) memcpy(head, tok, (size_t)nhead * sizeof *head);
    }
    double h = 0.0; // entropy of the empirical unigram distribution, summed in double
    int distinct = 0;
    for (int v = 0; v < in->vocab_size; v++)
        if (count[v]) {
            double p = (double)count[v] / (double)n;
            h -= p * log(p);
            distinct++;
        }
    if (rc == KD_OK) {
        fprintf(f, "file: %s\nkind: %s\n", path, in->kind);
        print_tokenizer(f, in->tokenizer, in->fingerprint, in->stop_ids, in->n_stop);
        fprintf(f, "vocab_size: %d\nbos_id: %d\neos_id: %d\npad_id: %d\n", in->vocab_size,
                in->bos_id, in->eos_id, in->pad_id);
        fprintf(f, "tokens: %llu\ndocs: %llu\n", (unsigned long long)n,
                (unsigned long long)in->n_docs);
        fprintf(f, "doc_tokens_min: %llu\ndoc_tokens_mean: %.1f\ndoc_tokens_max: %llu\n",
                (unsigned long long)dmin, in->n_docs ? (double)n / (double)in->n_docs : 0.0,
                (unsigned long long)dmax);
        if (in->has_loss_mask)
            fprintf(f, "loss_mask: %llu of %llu tokens (%.4f)\n", (unsigned long long)masked,
                    (unsigned long long)n, (double)masked / (double)n);
        else
            fprintf(f, "loss_mask: none (all tokens count)\n");
        fprintf(f, "distinct_tokens: %d\n", distinct);
        fprintf(f, "unigram_entropy_nats: %.6f\nunigram_entropy_bits: %.6f\n", h, h / log(2.0));
        fprintf(f, "first_ids:");
        for (int i = 0; i < nhead; i++) fprintf(f, " %d", (int)head[i]);
        fprintf(f, "\n");
        if (strcmp(in->tokenizer, KD_TOK_BYTES_NAME) == 0) {
            char piece[16];
            fprintf(f, "first_text: \"");
            for (int i = 0; i < nhead; i++) fputs(kd_tokenizer_bytes_piece(head[i], piece), f);
            fprintf(f, "\"\n");
        }
    }
    free(count);
    free(tok);
    free(mask);
    kd_dataset_close(d);
    return rc;
}
