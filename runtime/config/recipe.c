// recipe.c: kd_recipe_load: read the file, parse it (yaml_tree.c), apply --set overrides
// (recipe_override.c), walk the schema (recipe_walk.c), then fill the derived defaults and
// run the kind-independent checks that span several keys (model flow, hybrid layouts, batch
// divisibility) with the caller's kind rules in between (recipe.h), and finally render the
// canonical resolved YAML (recipe_emit.c).
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/fs.h"
#include "runtime/base/hash.h"
#include "runtime/config/recipe_schema.h"

// ---------------------------------------------------------------------------- small API

const char *kd_stage_kind_name(kd_stage_kind k) {
    if ((int)k < 0 || k >= KD_STAGE_KIND_COUNT) return "?";
    return kd_stage_kind_names[k];
}

int kd_recipe_stage_index(const kd_recipe *r, const char *name) {
    for (int i = 0; i < r->n_stages; i++)
        if (!strcmp(r->stages[i].name, name)) return i;
    return -1;
}

kd_from kd_recipe_stage_source(const kd_recipe *r, int stage) {
    kd_from f = r->stages[stage].from;
    if (f.kind != KD_FROM_PREV) return f;
    if (stage == 0) return r->model.from;
    f.kind = KD_FROM_STAGE;
    snprintf(f.ref, sizeof f.ref, "%s", r->stages[stage - 1].name);
    return f;
}

void kd_recipe_stage_dir(const kd_recipe *r, int stage, char *buf, size_t n) {
    snprintf(buf, n, "%s/stages/%02d-%s", r->run.out_dir, stage, r->stages[stage].name);
}

void kd_recipe_free(kd_recipe *r) {
    if (!r) return;
    free(r->resolved_yaml);
    r->resolved_yaml = NULL;
}

int kd_hybrid_resolve(kd_hybrid *h, int n_layers, const char *where, kd_error *err) {
    const int *list = h->layers_by_attn ? h->attn_layers : h->ssm_layers;
    int n_given = h->layers_by_attn ? h->n_attn_layers : h->n_ssm_layers;
    if (n_layers < 1 || n_layers > KD_MAX_LAYERS)
        return kd_fail(err, KD_EINPUT, "%s: expected n_layers in [1, %d], found %d", where,
                       KD_MAX_LAYERS, n_layers);
    char mark[KD_MAX_LAYERS] = {0};
    for (int k = 0; k < n_given; k++) {
        if (list[k] < 0 || list[k] >= n_layers)
            return kd_fail(err, KD_EINPUT, "%s.%s[%d]: expected a layer index in [0, %d), found %d",
                           where, h->layers_by_attn ? "attn_layers" : "ssm_layers", k, n_layers,
                           list[k]);
        if (mark[list[k]])
            return kd_fail(err, KD_EINPUT, "%s.%s[%d]: expected no duplicates, found %d twice",
                           where, h->layers_by_attn ? "attn_layers" : "ssm_layers", k, list[k]);
        mark[list[k]] = 1;
    }
    int ssm_mark = h->layers_by_attn ? 0 : 1;
    h->n_ssm_layers = h->n_attn_layers = 0;
    for (int l = 0; l < n_layers; l++) {
        if ((mark[l] != 0) == ssm_mark)
            h->ssm_layers[h->n_ssm_layers++] = l;
        else
            h->attn_layers[h->n_attn_layers++] = l;
    }
    h->layers_by_attn = 0;
    return KD_OK;
}

// ---------------------------------------------------------------------------- checks

struct kd_recipe_checker {
    kd_recipe *r;
    kd_posmap *pm;
    kd_error *err;
    int arch_known; // every stage's model descends from random init with model.arch
};

int kd_recipe_bad(kd_recipe_checker *c, const char *path, const char *fmt, ...) {
    char msg[700], p[512], w[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p, sizeof p, "%s", path);
    while (kd_posmap_find(c->pm, p) < 0) { // fall back to the closest written parent
        char *cut = strrchr(p, '.');
        char *br = strrchr(p, '[');
        if (br && (!cut || br > cut)) cut = br;
        if (!cut) break;
        *cut = '\0';
    }
    int i = kd_posmap_find(c->pm, p);
    if (i >= 0)
        kd_yaml_where(c->pm->src[i], c->pm->line[i], c->pm->col[i], w, sizeof w);
    else
        snprintf(w, sizeof w, "%s", c->r->path);
    return kd_fail(c->err, KD_EINPUT, "%s: %s: %s", w, path, msg);
}

static int given(kd_recipe_checker *c, const char *path) {
    return kd_posmap_find(c->pm, path) >= 0;
}

static int check_arch(kd_recipe_checker *c) {
    kd_arch *a = &c->r->model.arch;
    if (!a->n_kv_heads) a->n_kv_heads = a->n_heads;
    if (a->n_heads % a->n_kv_heads)
        return kd_recipe_bad(c, "model.arch.n_kv_heads",
                             "expected a divisor of n_heads (%d), found %d", a->n_heads,
                             a->n_kv_heads);
    if (!a->head_dim) {
        if (a->d_model % a->n_heads)
            return kd_recipe_bad(
                c, "model.arch.n_heads",
                "expected a divisor of d_model (%d) when head_dim is not given, found %d",
                a->d_model, a->n_heads);
        a->head_dim = a->d_model / a->n_heads;
    }
    if (!a->ffn_dim) a->ffn_dim = (8 * a->d_model / 3 + 63) / 64 * 64;
    c->r->teacher.arch = *a;
    return KD_OK;
}

int kd_recipe_check_hybrid(kd_recipe_checker *c, kd_hybrid *h, const char *path) {
    char ps[512], pa[512];
    snprintf(ps, sizeof ps, "%s.ssm_layers", path);
    snprintf(pa, sizeof pa, "%s.attn_layers", path);
    if (given(c, ps) && given(c, pa))
        return kd_recipe_bad(
            c, pa, "expected either ssm_layers or attn_layers (its complement), found both");
    h->layers_by_attn = given(c, pa);
    if (!c->arch_known) return KD_OK;
    int n = c->r->model.arch.n_layers;
    const int *l = h->layers_by_attn ? h->attn_layers : h->ssm_layers;
    int cnt = h->layers_by_attn ? h->n_attn_layers : h->n_ssm_layers;
    for (int k = 0; k < cnt; k++)
        if (l[k] >= n) {
            char ip[560];
            snprintf(ip, sizeof ip, "%s[%d]", h->layers_by_attn ? pa : ps, k);
            return kd_recipe_bad(
                c, ip, "expected a layer index in [0, %d) (model.arch.n_layers), found %d", n,
                l[k]);
        }
    return kd_hybrid_resolve(h, n, path, c->err);
}

int kd_recipe_check_from_stage(kd_recipe_checker *c, const kd_from *f, int before,
                               const char *path, const char *why) {
    if (f->kind != KD_FROM_STAGE) return KD_OK;
    int j = kd_recipe_stage_index(c->r, f->ref);
    if (j < 0 || j >= before)
        return kd_recipe_bad(c, path, "expected the name of a stage before %s, found '%s'%s", why,
                             f->ref, j < 0 ? " (no such stage)" : "");
    return KD_OK;
}

int kd_recipe_check_reference(kd_recipe_checker *c, const kd_from *f, int i) {
    char q[64];
    snprintf(q, sizeof q, "stages[%d].reference.from", i);
    if (f->kind == KD_FROM_RANDOM)
        return kd_recipe_bad(c, q, "expected {stage: NAME}, {checkpoint: PATH} or {hf: DIR} (a "
                             "trained model), found {random: true}");
    snprintf(q, sizeof q, "stages[%d].reference.from.stage", i);
    return kd_recipe_check_from_stage(c, f, i, q, "this one");
}

// The kind-independent keys of stage i, with the kind's own rules in between.
static int check_stage(kd_recipe_checker *c, const kd_recipe_rules *rules, int i) {
    kd_recipe *r = c->r;
    kd_stage_spec *s = &r->stages[i];
    char p[64], q[600];
    snprintf(p, sizeof p, "stages[%d]", i);
    int k = kd_posmap_find(c->pm, p);
    s->line = k >= 0 ? c->pm->line[k] : 0;
    for (int j = 0; j < i; j++)
        if (!strcmp(r->stages[j].name, s->name)) {
            snprintf(q, sizeof q, "%s.name", p);
            return kd_recipe_bad(
                c, q, "expected a unique stage name, found '%s' again (first at stages[%d])",
                s->name, j);
        }
    snprintf(q, sizeof q, "%s.from.stage", p);
    if (kd_recipe_check_from_stage(c, &s->from, i, q, "this one")) return c->err->code;
    if (!s->batch.micro) s->batch.micro = s->batch.global;
    if (s->batch.global % s->batch.micro) {
        snprintf(q, sizeof q, "%s.batch.micro", p);
        return kd_recipe_bad(c, q, "expected a divisor of batch.global (%d), found %d",
                             s->batch.global, s->batch.micro);
    }
    if (rules && rules->stage && rules->stage(c, r, i)) return c->err->code;
    if (s->eval_every > 0 && !s->eval_data[0]) {
        snprintf(q, sizeof q, "%s.eval_every", p);
        return kd_recipe_bad(c, q,
                             "expected 0 without eval_data (held-out evaluation needs a "
                             "dataset), found %d",
                             s->eval_every);
    }
    return KD_OK;
}

static int finish(kd_recipe *r, kd_posmap *pm, const kd_recipe_rules *rules, kd_error *err) {
    kd_recipe_checker c = {.r = r, .pm = pm, .err = err};
    if (!r->run.name[0]) { // default: the recipe file's stem
        const char *base = strrchr(r->path, '/');
        base = base ? base + 1 : r->path;
        size_t n = strcspn(base, ".");
        if (n == 0) base = "recipe", n = 6;
        if (n >= sizeof r->run.name) n = sizeof r->run.name - 1;
        memcpy(r->run.name, base, n);
        r->run.name[n] = '\0';
    }
    if (!r->run.out_dir[0]) snprintf(r->run.out_dir, sizeof r->run.out_dir, "runs/%s", r->run.name);
    if (check_arch(&c)) return err->code;
    if (r->model.from.kind == KD_FROM_STAGE)
        return kd_recipe_bad(&c, "model.from.stage",
                             "expected checkpoint|hf|random (no stage precedes the first; use "
                             "stages[i].from), found a stage reference");
    c.arch_known = r->model.from.kind == KD_FROM_RANDOM;
    for (int i = 0; i < r->n_stages; i++) {
        kd_from_kind k = r->stages[i].from.kind;
        if (k == KD_FROM_CHECKPOINT || k == KD_FROM_HF) c.arch_known = 0;
    }
    if (kd_recipe_check_hybrid(&c, &r->model.hybrid, "model.hybrid")) return err->code;
    for (int i = 0; i < r->n_stages; i++)
        if (check_stage(&c, rules, i)) return err->code;
    for (int i = 0; rules && rules->linked && i < r->n_stages; i++)
        if (rules->linked(&c, r, i)) return err->code;
    return KD_OK;
}

// ---------------------------------------------------------------------------- load

static int read_file(const char *path, char **text, size_t *len, kd_error *err) {
    int e;
    kd_read_status rs = kd_read_file(path, (size_t)16 << 20, text, len, &e);
    if (rs == KD_READ_EOPEN)
        return kd_fail(err, KD_EINPUT, "%s: cannot read the recipe (%s)", path, strerror(e));
    if (rs == KD_READ_EBIG) return kd_fail(err, KD_EINPUT, "%s: expected a recipe under 16 MiB", path);
    if (rs == KD_READ_EIO)
        return kd_fail(err, KD_EINPUT, "%s: cannot read the recipe (I/O error or a directory)",
                       path);
    return KD_OK;
}

int kd_recipe_load(kd_recipe *r, const char *path, const char *const *overrides, int n_overrides,
                   const kd_recipe_rules *rules, kd_error *err) {
    memset(r, 0, sizeof *r);
    if (strlen(path) >= sizeof r->path)
        return kd_fail(err, KD_EINPUT, "%s: expected a path under %d bytes", path, KD_PATH_MAX);
    snprintf(r->path, sizeof r->path, "%s", path);
    char *text = NULL;
    size_t len = 0;
    if (read_file(path, &text, &len, err)) return err->code;

    kd_yaml_node *root = NULL;
    kd_posmap pm = {0};
    char **srcs = kd_calloc((size_t)n_overrides + 1, sizeof(char *));
    int rc = kd_yaml_parse(text, len, r->path, 1, &root, err);
    if (rc == KD_OK && !root)
        rc = kd_fail(err, KD_EINPUT,
                     "%s: expected a recipe (a map with a 'stages' list), found an "
                     "empty document",
                     path);
    for (int i = 0; rc == KD_OK && i < n_overrides; i++) {
        size_t n = strlen(overrides[i]) + 8;
        srcs[i] = kd_malloc(n);
        snprintf(srcs[i], n, "--set %s", overrides[i]);
        rc = kd_recipe_apply_override(&root, overrides[i], srcs[i], err);
    }
    if (rc == KD_OK) rc = kd_schema_walk(&kd_recipe_schema, r, root, "", &pm, err);
    if (rc == KD_OK) rc = finish(r, &pm, rules, err);
    if (rc == KD_OK) {
        kd_strbuf b = {0};
        kd_schema_emit(&b, &kd_recipe_schema, r, 0);
        r->resolved_yaml = b.s;
        r->hash = kd_fnv1a64(b.s, b.n);
    }
    kd_yaml_free(root);
    kd_posmap_free(&pm);
    for (int i = 0; i < n_overrides; i++) free(srcs[i]);
    free(srcs);
    free(text);
    if (rc != KD_OK) kd_recipe_free(r);
    return rc;
}
