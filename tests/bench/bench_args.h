// bench_args.h: the command line and model configuration the whole-model benchmarks share
// (tests/bench/bench_train.c, tests/bench/bench_kd.c): the bench model of
// docs/performance.md by default (V=4096, d=384, 6 layers, 6/2 heads of 64, SwiGLU 1024,
// seq 256, batch 8, Mamba-2 d_state = head_dim, chunk 64, conv 4), every size settable by
// a flag, and `--ssm-layers i,j,...` for the layers that become Mamba-2. Header-only
// (static functions); benchmarks only. A bad command line gives exit status 2.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/model.h"

typedef struct {
    int vocab, d_model, layers, heads, kv_heads, head_dim, ffn, seq, batch, warmup, steps;
    int chunk;     // Mamba-2 chunk size (--chunk, only where the bench takes it)
    int topk;      // cached teacher ids per token (--topk, only where the bench takes it)
    char ssm[256]; // --ssm-layers: comma-separated layer indices, "" for none
} bench_args;

// The optional flags a bench may take besides the shared ones.
enum { BENCH_FLAG_CHUNK = 1, BENCH_FLAG_TOPK = 2 };

// The bench model with this bench's warm-up and timed step counts.
static inline bench_args bench_args_default(int warmup, int steps) {
    return (bench_args){4096, 384, 6, 6, 2, 64, 1024, 256, 8, warmup, steps, 64, 16, ""};
}

// Parses argv over the defaults already in *a; `extra` (BENCH_FLAG_*) says which optional
// flags this bench takes. Returns 0, or prints the usage and returns 2.
static inline int bench_parse_args(int argc, char **argv, const char *prog, unsigned extra,
                                   bench_args *a) {
    const struct {
        const char *flag, *meta;
        int *dst;
        unsigned need; // 0: every bench; else the BENCH_FLAG_* that enables it
    } ints[] = {{"--vocab", "V", &a->vocab, 0},
                {"--d-model", "C", &a->d_model, 0},
                {"--layers", "L", &a->layers, 0},
                {"--heads", "H", &a->heads, 0},
                {"--kv-heads", "K", &a->kv_heads, 0},
                {"--head-dim", "D", &a->head_dim, 0},
                {"--ffn", "F", &a->ffn, 0},
                {"--seq", "T", &a->seq, 0},
                {"--batch", "B", &a->batch, 0},
                {"--warmup", "W", &a->warmup, 0},
                {"--steps", "S", &a->steps, 0},
                {"--chunk", "Q", &a->chunk, BENCH_FLAG_CHUNK},
                {"--topk", "K", &a->topk, BENCH_FLAG_TOPK}};
    const size_t n_ints = sizeof ints / sizeof ints[0];
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (i + 1 >= argc) {
            bad = 1;
            break;
        }
        int found = 0;
        for (size_t k = 0; k < n_ints && !found; k++)
            if ((!ints[k].need || (ints[k].need & extra)) && !strcmp(argv[i], ints[k].flag)) {
                *ints[k].dst = atoi(argv[++i]);
                found = 1;
            }
        if (!found && !strcmp(argv[i], "--ssm-layers")) {
            snprintf(a->ssm, sizeof a->ssm, "%s", argv[++i]);
            found = 1;
        }
        bad = !found;
    }
    if (a->steps < 1 || a->batch < 1 || a->seq < 2) bad = 1;
    if ((extra & BENCH_FLAG_TOPK) && (a->topk < 1 || a->topk > a->vocab)) bad = 1;
    if (!bad) return 0;
    fprintf(stderr, "usage: %s", prog);
    for (size_t k = 0; k < n_ints; k++)
        if (!ints[k].need || (ints[k].need & extra))
            fprintf(stderr, " [%s %s]", ints[k].flag, ints[k].meta);
    fprintf(stderr, " [--ssm-layers i,j,...]\n");
    return 2;
}

// The model configuration of *a; with_ssm makes the --ssm-layers layers Mamba-2 (a teacher
// passes 0). Returns 0, or prints the bad entry and returns 2.
static inline int bench_model_config(const bench_args *a, int with_ssm, kd_model_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = a->vocab, cfg->d_model = a->d_model, cfg->n_layers = a->layers;
    cfg->n_heads = a->heads, cfg->n_kv_heads = a->kv_heads, cfg->head_dim = a->head_dim;
    cfg->ffn_dim = a->ffn, cfg->rope_theta = 10000.0f, cfg->norm_eps = 1e-5f;
    cfg->d_state = a->head_dim, cfg->chunk_size = a->chunk, cfg->conv_width = 4;
    for (const char *s = a->ssm; with_ssm && *s;) {
        char *end;
        long l = strtol(s, &end, 10);
        if (end == s || l < 0 || l >= a->layers) {
            fprintf(stderr, "--ssm-layers: '%s' is not a layer index below %d\n", s, a->layers);
            return 2;
        }
        cfg->mixer[l] = KD_MIXER_MAMBA2;
        for (s = end; *s == ',' || *s == ' ';) s++;
    }
    return 0;
}
