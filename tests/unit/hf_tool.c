// hf_tool.c: kdtrain's side of the Hugging Face reference test (tests/reference/
// hf_llama3_test.py), through the library the CLI uses:
//   hf_tool eval DIR IDS_FILE N_PROMPT N_NEW
//       loads the HF directory DIR, prints "loss L" (mean next-token cross-entropy over the
//       ids of IDS_FILE, one sequence) and "greedy t..." (N_NEW greedy tokens after the
//       first N_PROMPT ids, no EOS stop).
//   hf_tool hybrid SRC OUT SEED LAYER...
//       turns the listed layers of the HF model SRC into Mamba-2 layers (random init from
//       SEED, every other tensor copied from SRC) and exports the hybrid to OUT.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/generate.h"
#include "runtime/store/hf.h"

static int32_t *read_ids(const char *path, int *n) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    int cap = 1024, k = 0, v;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
    while (k < cap && fscanf(f, "%d", &v) == 1) ids[k++] = v;
    fclose(f);
    *n = k;
    return ids;
}

static int eval(const char *dir, const char *ids_path, int n_prompt, int n_new) {
    kd_error err = {0};
    kd_model *m = NULL;
    if (kd_hf_load(dir, kd_ops_cpu(), 0, &m, &err))
        return fprintf(stderr, "load: %s\n", err.msg), 2;
    int T = 0;
    int32_t *ids = read_ids(ids_path, &T);
    if (!ids || T < 2 || n_prompt < 1 || n_prompt > T)
        return fprintf(stderr, "bad ids file %s\n", ids_path), 2;
    int32_t *tgt = malloc(sizeof(int32_t) * (size_t)T);
    for (int t = 0; t < T; t++) tgt[t] = t + 1 < T ? ids[t + 1] : -1;
    if (kd_model_forward(m, ids, NULL, NULL, 1, T, &err))
        return fprintf(stderr, "forward: %s\n", err.msg), 3;
    printf("loss %.12g\n", kd_model_ce_loss(m, tgt, NULL, 0, 0) / (T - 1));
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.greedy = 1, p.max_new_tokens = n_new, p.eos_id = -1, p.batch = 1;
    kd_gen_seq s = {.prompt = ids, .n_prompt = n_prompt};
    if (kd_generate(m, &s, 1, &p, 0, &err)) return fprintf(stderr, "generate: %s\n", err.msg), 3;
    printf("greedy");
    for (int i = 0; i < s.n_gen; i++) printf(" %d", (int)s.tokens[n_prompt + i]);
    printf("\n");
    kd_gen_seq_clear(&s);
    free(ids), free(tgt);
    kd_model_free(m);
    return 0;
}

static int hybrid(const char *src, const char *out, uint64_t seed, int n, char **layers) {
    kd_error err = {0};
    kd_model *t = NULL, *h = NULL;
    if (kd_hf_load(src, kd_ops_cpu(), 0, &t, &err))
        return fprintf(stderr, "load: %s\n", err.msg), 2;
    kd_model_config c = *kd_model_cfg(t);
    for (int i = 0; i < n; i++) c.mixer[atoi(layers[i])] = KD_MIXER_MAMBA2;
    if (kd_model_create(&h, &c, kd_ops_cpu(), 0, &err))
        return fprintf(stderr, "create: %s\n", err.msg), 2;
    kd_model_init_random(h, seed, 0.1f);
    const kd_param_table *ht = kd_model_table(h), *tt = kd_model_table(t);
    for (int i = 0; i < ht->n; i++) { // CPU backend: parameters are host memory
        int j = kd_params_find(tt, ht->t[i].name);
        if (j >= 0)
            memcpy(kd_model_params(h) + ht->t[i].offset, kd_model_params(t) + tt->t[j].offset,
                   ht->t[i].numel * sizeof(float));
    }
    int rc = kd_hf_export(h, out, NULL, &err);
    if (rc) fprintf(stderr, "export: %s\n", err.msg);
    kd_model_free(t), kd_model_free(h);
    return rc ? 3 : 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && !strcmp(argv[1], "eval"))
        return eval(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (argc >= 6 && !strcmp(argv[1], "hybrid"))
        return hybrid(argv[2], argv[3], strtoull(argv[4], NULL, 10), argc - 5, argv + 5);
    fprintf(stderr,
            "usage: hf_tool eval DIR IDS_FILE N_PROMPT N_NEW | hybrid SRC OUT SEED LAYER...\n");
    return 2;
}
