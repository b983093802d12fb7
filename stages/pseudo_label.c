// pseudo_label.c: resumable, rank-parallel pseudo-label generation (pseudo_label.h).
// work_dir holds PARAMS (what the parts were made with), part-XXXXXXXX.h5 (prompts
// [c*P, (c+1)*P), each a complete `kd` dataset plus /prompt_index and the top-K arrays,
// written through data/topk.h) and, once the output is published, COMPLETE. Every file
// appears by rename only.
#include "stages/pseudo_label.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/topk.h"
#include "data/writer.h"
#include "runtime/base/fs.h"
#include "runtime/base/hash.h"
#include "runtime/base/signals.h"

typedef struct {
    kd_comm *comm;
    kd_model *m;
    kd_dataset *ds;
    const kd_dataset_info *info;
    const char *work, *out;
    kd_gen_params p; // eos resolved
    int K, part;     // top-K logits, prompts per part
    uint64_t n;      // prompts
} pl_ctx;

// ----------------------------------------------------------------------------- files

// The output's tokenizer identity: the prompts dataset's, with the model's vocab_size.
static const kd_vocab *out_vocab(const pl_ctx *c, kd_vocab *v) {
    kd_dataset_info_vocab(c->info, v);
    v->vocab_size = kd_model_cfg(c->m)->vocab_size;
    return v;
}

static void part_path(const pl_ctx *c, uint64_t part, char *buf, size_t n) {
    snprintf(buf, n, "%s/part-%08llu.h5", c->work, (unsigned long long)part);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int fsync_rename(const char *from, const char *to, kd_error *err) {
    int fd = open(from, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return kd_fail(err, KD_ERUNTIME, "%s: fsync failed: %s", from, strerror(e));
    }
    close(fd);
    if (rename(from, to) != 0)
        return kd_fail(err, KD_ERUNTIME, "%s: cannot rename into %s: %s", from, to,
                       strerror(errno));
    return KD_OK;
}

// HDF5 1.10 cannot recover from a close that fails for lack of space (the file stays
// registered half-freed and the library crashes when MPI finalizes it), so a file is only
// started when the filesystem of `path` has room for about `bytes` (+1 MiB): otherwise the
// error says so and nothing is written. A disk filled by someone else meanwhile can still
// end the rank; the committed parts are kept either way.
static int room_for(const char *path, uint64_t bytes, kd_error *err) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    struct statvfs fs;
    if (statvfs(slash ? dir : ".", &fs) != 0) return KD_OK; // cannot tell: let the write say
    uint64_t free_b = (uint64_t)fs.f_bavail * fs.f_frsize, need = bytes + (1u << 20);
    if (free_b >= need) return KD_OK;
    return kd_fail(err, KD_ERUNTIME,
                   "%s: No space left on device: about %llu KiB needed, %llu KiB free; nothing was "
                   "written for it (committed parts are kept): free space, then rerun",
                   path, (unsigned long long)(need >> 10), (unsigned long long)(free_b >> 10));
}

// Rank 0: the parts of another configuration and leftovers of killed runs go.
static void clean_work_dir(const pl_ctx *c, int drop_parts) {
    DIR *d = opendir(c->work);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        const char *nm = e->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
        int part = strncmp(nm, "part-", 5) == 0 && kd_str_endswith(nm, ".h5");
        int leftover = nm[0] == '.' || strstr(nm, ".tmp") != NULL; // builds of killed runs
        if (leftover || (part && drop_parts)) {
            char p[4600];
            snprintf(p, sizeof p, "%s/%s", c->work, nm);
            unlink(p);
        }
    }
    closedir(d);
}

// ----------------------------------------------------------------------------- one part

// The part's /prompt_index and top-K arrays (rows of its n documents, ntok in all).
static int add_topk(const pl_ctx *c, const char *build, const kd_gen_seq *s, int n,
                    size_t ntok) {
    uint64_t *pidx = kd_malloc(sizeof(uint64_t) * (size_t)n);
    for (int i = 0; i < n; i++) pidx[i] = s[i].index;
    int32_t *ids = c->K ? kd_malloc(sizeof(int32_t) * ntok * c->K) : NULL;
    float *lp = c->K ? kd_malloc(sizeof(float) * ntok * c->K) : NULL;
    size_t row = 0;
    for (int i = 0; i < n && c->K; i++) {
        size_t L = (size_t)(s[i].n_prompt + s[i].n_gen);
        memcpy(ids + row * c->K, s[i].topk_ids, sizeof(int32_t) * L * c->K);
        memcpy(lp + row * c->K, s[i].topk_logprobs, sizeof(float) * L * c->K);
        row += L;
    }
    kd_topk_writer *tw = NULL;
    int bad = kd_topk_writer_open(&tw, build, (uint64_t)n, ntok, c->K) < 0;
    if (!bad) bad = kd_topk_writer_add(tw, pidx, (uint64_t)n, ids, lp, ntok) < 0;
    if (tw && kd_topk_writer_close(tw) < 0) bad = 1;
    free(pidx), free(ids), free(lp);
    return bad ? -1 : 0;
}

static int write_part(pl_ctx *c, uint64_t part, kd_error *err) {
    uint64_t a = part * (uint64_t)c->part,
             b = a + (uint64_t)c->part < c->n ? a + (uint64_t)c->part : c->n;
    int n = (int)(b - a), rc = KD_OK, eos = c->p.eos_id;
    const uint64_t *off = kd_dataset_offsets(c->ds);
    kd_gen_seq *s = kd_calloc((size_t)n, sizeof *s);
    for (int i = 0; i < n && !rc; i++) {
        uint64_t d = a + (uint64_t)i, len = off[d + 1] - off[d];
        int32_t *t = kd_malloc(sizeof(int32_t) * (len ? len : 1));
        rc = kd_dataset_read_tokens(c->ds, off[d], len, t, NULL, err);
        if (!rc && len > 1 && eos >= 0 && t[len - 1] == eos)
            len--; // continue the text, not a new doc
        if (!rc && len == 0)
            rc = kd_fail(err, KD_EINPUT, "%s: prompt %llu is empty, expected at least one token",
                         kd_dataset_path(c->ds), (unsigned long long)d);
        s[i].prompt = t, s[i].n_prompt = (int)len, s[i].index = d;
    }
    if (!rc) rc = kd_generate(c->m, s, n, &c->p, c->K, err);
    char final[4200], build[4200];
    part_path(c, part, final, sizeof final);
    snprintf(build, sizeof build, "%s/.part-%08llu.h5", c->work, (unsigned long long)part);
    kd_dataset_writer *w = NULL;
    kd_vocab v;
    uint64_t need = 0; // tokens + mask + top-K ids and log-probs, per token
    for (int i = 0; i < n && !rc; i++)
        need += (uint64_t)(s[i].n_prompt + s[i].n_gen) * (5u + 8u * (unsigned)c->K) + 16u;
    if (!rc) rc = room_for(build, need, err);
    if (!rc) rc = kd_dataset_writer_open_vocab(&w, build, "kd", out_vocab(c, &v), 1, err);
    size_t ntok = 0;
    for (int i = 0; i < n && !rc; i++) {
        int L = s[i].n_prompt + s[i].n_gen;
        uint8_t *mask = kd_malloc((size_t)L);
        for (int j = 0; j < L; j++) mask[j] = j >= s[i].n_prompt;
        rc = kd_dataset_writer_add(w, s[i].tokens, mask, (size_t)L, err);
        free(mask);
        ntok += (size_t)L;
    }
    int rc2 = kd_dataset_writer_close(w, rc == KD_OK, rc ? NULL : err);
    if (!rc) rc = rc2;
    int written = rc == KD_OK; // build exists from here on: published, or removed on error
    if (written && add_topk(c, build, s, n, ntok) < 0)
        rc = kd_fail(err, KD_ERUNTIME,
                     "%s: cannot add the prompt index / top-K arrays (disk full?)", build);
    if (written && !rc) rc = fsync_rename(build, final, err);
    if (written && rc) unlink(build);
    for (int i = 0; i < n; i++) {
        free((void *)s[i].prompt);
        kd_gen_seq_clear(&s[i]);
    }
    free(s);
    return rc;
}

// ----------------------------------------------------------------------------- merge

// Rank 0, first pass: the documents of the parts in order -> tmp (a kd dataset); its token
// count in *ntok. Checks that part c holds exactly the documents of its prompts.
static int merge_docs(pl_ctx *c, uint64_t n_parts, const char *tmp, uint64_t *ntok,
                      kd_error *err) {
    char path[4200];
    kd_dataset_writer *w = NULL;
    kd_vocab v;
    int rc = kd_dataset_writer_open_vocab(&w, tmp, "kd", out_vocab(c, &v), 1, err);
    for (uint64_t part = 0; part < n_parts && !rc; part++) {
        part_path(c, part, path, sizeof path);
        kd_dataset *pd = NULL;
        if ((rc = kd_dataset_open(&pd, path, err))) break;
        const uint64_t *off = kd_dataset_offsets(pd);
        uint64_t docs = kd_dataset_get_info(pd)->n_docs, a = part * (uint64_t)c->part;
        uint64_t want = a + (uint64_t)c->part < c->n ? (uint64_t)c->part : c->n - a;
        if (docs != want)
            rc = kd_fail(err, KD_ERUNTIME,
                         "%s: %llu documents, expected %llu (delete it to regenerate)", path,
                         (unsigned long long)docs, (unsigned long long)want);
        for (uint64_t d = 0; d < docs && !rc; d++) {
            uint64_t L = off[d + 1] - off[d];
            int32_t *t = kd_malloc(sizeof(int32_t) * L);
            uint8_t *mk = kd_malloc(L);
            rc = kd_dataset_read_tokens(pd, off[d], L, t, mk, err);
            if (!rc) rc = kd_dataset_writer_add(w, t, mk, L, err);
            free(t), free(mk);
        }
        kd_dataset_close(pd);
    }
    *ntok = w ? kd_dataset_writer_n_tokens(w) : 0;
    int rc2 = kd_dataset_writer_close(w, rc == KD_OK, rc ? NULL : err);
    return rc ? rc : rc2;
}

// Rank 0, second pass: /prompt_index and the top-K arrays of the parts, in order, added to
// tmp. -1 when a part's arrays are missing or do not line up with its documents (part c
// must hold exactly prompts [c*P, ...) in order, so no prompt is missing or repeated).
static int merge_topk(pl_ctx *c, uint64_t n_parts, const char *tmp, uint64_t ntok) {
    char path[4200];
    kd_topk_writer *w = NULL;
    int bad = kd_topk_writer_open(&w, tmp, c->n, ntok, c->K) < 0;
    for (uint64_t part = 0, doc = 0; part < n_parts && !bad; part++) {
        part_path(c, part, path, sizeof path);
        uint64_t *pidx = NULL, np = 0, rows = 0;
        int32_t *ids = NULL;
        float *lp = NULL;
        bad = kd_topk_read_all(path, c->K, &pidx, &np, &ids, &lp, &rows) < 0;
        for (uint64_t i = 0; i < np && !bad; i++) bad = pidx[i] != doc + i;
        if (!bad) bad = kd_topk_writer_add(w, pidx, np, ids, lp, rows) < 0;
        free(pidx), free(ids), free(lp);
        doc += np;
    }
    if (w && kd_topk_writer_close(w) < 0) bad = 1; // also when docs or rows are missing
    return bad ? -1 : 0;
}

// Rank 0: parts in order -> out (published by rename).
static int merge(pl_ctx *c, uint64_t n_parts, kd_error *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.merge-tmp", c->out);
    uint64_t ntok = 0, need = 0;
    char path[4200];
    struct stat st;
    for (uint64_t part = 0; part < n_parts; part++) { // the merged file holds what the parts hold
        part_path(c, part, path, sizeof path);
        if (stat(path, &st) == 0) need += (uint64_t)st.st_size;
    }
    int rc = room_for(tmp, need, err);
    if (!rc) rc = merge_docs(c, n_parts, tmp, &ntok, err);
    if (rc) return rc;
    if (merge_topk(c, n_parts, tmp, ntok) < 0) {
        unlink(tmp);
        return kd_fail(err, KD_ERUNTIME,
                       "%s: the parts' prompt indices or top-K arrays do not line up with their "
                       "documents (delete %s to regenerate)",
                       c->out, c->work);
    }
    if ((rc = fsync_rename(tmp, c->out, err))) unlink(tmp);
    return rc;
}

// ----------------------------------------------------------------------------- driver

static uint64_t model_digest(kd_model *m) {
    const kd_param_table *pt = kd_model_table(m);
    const kd_ops *o = kd_model_ops(m);
    float *h = kd_malloc(pt->total * sizeof(float));
    o->mem->download(o->ctx, h, kd_model_params(m), pt->total * sizeof(float));
    uint64_t x = kd_fnv1a64(h, pt->total * sizeof(float));
    free(h);
    return x;
}

int kd_pseudo_label(kd_comm *comm, kd_model *teacher, const char *prompts_h5, const char *out_h5,
                    const kd_gen_params *p, const char *work_dir, int top_k_logits, kd_error *err) {
    pl_ctx c = {
        .comm = comm, .m = teacher, .work = work_dir, .out = out_h5, .p = *p, .K = top_k_logits};
    int rank = kd_comm_rank(comm), world = kd_comm_size(comm);
    const char *env = getenv("KD_PL_PART_PROMPTS");
    c.part = env && atoi(env) > 0 ? atoi(env) : KD_PL_PART_PROMPTS;
    int rc = kd_gen_params_check(p, err);
    if (!rc && top_k_logits < 0)
        rc = kd_fail(err, KD_EINPUT, "top_k_logits: expected >= 0, found %d", top_k_logits);
    if (!rc) rc = kd_dataset_open(&c.ds, prompts_h5, err);
    if (!rc) {
        c.info = kd_dataset_get_info(c.ds);
        c.n = c.info->n_docs;
        if (c.p.eos_id < 0) kd_gen_set_stops(&c.p, c.info->stop_ids, c.info->n_stop);
        if (c.info->vocab_size > kd_model_cfg(teacher)->vocab_size)
            rc = kd_fail(err, KD_EINPUT, "%s: vocab_size %d is larger than the model's %d",
                         prompts_h5, c.info->vocab_size, kd_model_cfg(teacher)->vocab_size);
        else if (c.n == 0)
            rc = kd_fail(err, KD_EINPUT, "%s: no prompts (0 documents)", prompts_h5);
    }
    if ((rc = kd_comm_agree(comm, rc, err))) {
        kd_dataset_close(c.ds);
        return rc;
    }
    // what the parts depend on: a change of any of it starts the parts over
    char sig[1400], path[4200];
    snprintf(sig, sizeof sig,
             "prompts %s\nprompt_docs %llu\nprompt_tokens %llu\nmodel %016llx\nseed "
             "%llu\nmax_new_tokens %d\n"
             "temperature %.9g\ntop_k %d\ntop_p %.9g\ngreedy %d\neos %d\ntop_k_logits "
             "%d\npart_prompts %d\n",
             prompts_h5, (unsigned long long)c.n, (unsigned long long)c.info->n_tokens,
             (unsigned long long)model_digest(teacher), (unsigned long long)c.p.seed,
             c.p.max_new_tokens, (double)c.p.temperature, c.p.top_k, (double)c.p.top_p, c.p.greedy,
             c.p.eos_id, c.K, c.part);
    uint64_t n_parts = (c.n + (uint64_t)c.part - 1) / (uint64_t)c.part;
    snprintf(path, sizeof path, "%s/COMPLETE", work_dir);
    int done = kd_file_equals(path, sig, strlen(sig)) && exists(out_h5);
    if (rank == 0 && !done) {
        rc = kd_mkdir_p_or_fail(work_dir, 0755, KD_ERUNTIME, err);
        snprintf(path, sizeof path, "%s/PARAMS", work_dir);
        int same = !rc && kd_file_equals(path, sig, strlen(sig));
        if (!rc) clean_work_dir(&c, !same);
        snprintf(path, sizeof path, "%s.merge-tmp", out_h5);
        unlink(path); // a merge killed before its rename
        snprintf(path, sizeof path, "%s/PARAMS", work_dir);
        if (!rc && !same) rc = kd_write_file_atomic(path, sig, strlen(sig), err);
    }
    done = (int)kd_comm_max_f64(comm, (double)done); // rank 0's view decides
    if ((rc = kd_comm_agree(comm, rc, err)) || done) {
        kd_dataset_close(c.ds);
        return rc;
    }
    const char *delay = getenv("KD_TEST_PL_PART_DELAY_MS"); // test hook: slow down to kill mid-run
    for (uint64_t round = 0; round * (uint64_t)world < n_parts; round++) {
        uint64_t part = round * (uint64_t)world + (uint64_t)rank;
        if (!rc && part < n_parts) {
            part_path(&c, part, path, sizeof path);
            if (!exists(path)) {
                rc = write_part(&c, part, err);
                if (!rc && delay) {
                    struct timespec ts = {atoi(delay) / 1000,
                                          (long)(atoi(delay) % 1000) * 1000000L};
                    nanosleep(&ts, NULL);
                }
            }
        }
        // every rank takes the same branch: first failure or stop signal ends the loop
        if ((rc = kd_comm_agree(comm, rc, err))) break;
        if (kd_comm_any(comm, kd_signals_pending() != 0)) {
            rc = kd_fail(err, KD_EREQUEUE,
                         "pseudo-labels: stopped by a signal after %llu of %llu parts rounds; "
                         "committed parts in %s are kept",
                         (unsigned long long)(round + 1),
                         (unsigned long long)((n_parts + world - 1) / world), work_dir);
            break;
        }
    }
    if (!rc && rank == 0) {
        rc = merge(&c, n_parts, err);
        snprintf(path, sizeof path, "%s/COMPLETE", work_dir);
        if (!rc) rc = kd_write_file_atomic(path, sig, strlen(sig), err);
        if (!rc)
            for (uint64_t part = 0; part < n_parts; part++) {
                part_path(&c, part, path, sizeof path);
                unlink(path);
            }
    }
    rc = kd_comm_agree(comm, rc, err);
    kd_dataset_close(c.ds);
    return rc;
}
