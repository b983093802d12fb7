// pseudo_label.c: resumable, rank-parallel pseudo-label generation (pseudo_label.h).
// work_dir holds PARAMS (what the parts were made with), part-XXXXXXXX.h5 (prompts
// [c*P, (c+1)*P), each a complete `kd` dataset plus /prompt_index and the top-K arrays)
// and, once the output is published, COMPLETE. Every file appears by rename only.
#include "stages/pseudo_label.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/writer.h"
#include "runtime/signals.h"

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

static void part_path(const pl_ctx *c, uint64_t part, char *buf, size_t n) {
    snprintf(buf, n, "%s/part-%08llu.h5", c->work, (unsigned long long)part);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int mkdir_p(const char *path, kd_error *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *q = tmp + 1;; q++) {
        if (*q != '/' && *q) continue;
        char keep = *q;
        *q = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return kd_fail(err, KD_ERUNTIME, "%s: cannot create directory: %s", tmp,
                           strerror(errno));
        *q = keep;
        if (!keep) return KD_OK;
    }
}

// Write text to path atomically (tmp, fsync, rename).
static int write_atomic(const char *path, const char *text, kd_error *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", path, strerror(errno));
    }
    return KD_OK;
}

// 1 if path holds exactly text.
static int file_equals(const char *path, const char *text) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = strlen(text);
    char *buf = kd_malloc(n + 2);
    size_t got = fread(buf, 1, n + 1, f);
    fclose(f);
    int eq = got == n && memcmp(buf, text, n) == 0;
    free(buf);
    return eq;
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

// ----------------------------------------------------------------------------- HDF5 extras

// Create name as a contiguous (rows,cols) dataset (cols 0: 1-D) of file type ft from mem.
static int h5_put(hid_t f, const char *name, hid_t ft, hid_t mt, hsize_t rows, hsize_t cols,
                  const void *mem) {
    hsize_t dims[2] = {rows, cols};
    hid_t s = H5Screate_simple(cols ? 2 : 1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    hid_t ds = H5Dcreate2(f, name, ft, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int bad = ds < 0 || (rows > 0 && H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, mem) < 0);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(s);
    return bad ? -1 : 0;
}

// Read all of name (elem bytes each, mem type mt) into a new buffer; *count gets elements.
static void *h5_get(hid_t f, const char *name, hid_t mt, size_t elem, size_t *count) {
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return NULL;
    hid_t s = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    H5Sclose(s);
    void *buf = n >= 0 ? kd_malloc((size_t)n * elem + 1) : NULL;
    if (buf && n > 0 && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf);
        buf = NULL;
    }
    H5Dclose(ds);
    *count = n >= 0 ? (size_t)n : 0;
    return buf;
}

// ----------------------------------------------------------------------------- one part

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
    const kd_dataset_info *in = c->info;
    if (!rc)
        rc = kd_dataset_writer_open(&w, build, "kd", kd_model_cfg(c->m)->vocab_size, in->bos_id,
                                    in->eos_id, in->pad_id, 1, in->tokenizer, err);
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
    if (!rc) {
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
        int bad = 0;
        H5E_BEGIN_TRY {
            hid_t f = H5Fopen(build, H5F_ACC_RDWR, H5P_DEFAULT);
            bad = f < 0 || h5_put(f, "/prompt_index", H5T_STD_U64LE, H5T_NATIVE_UINT64, (hsize_t)n,
                                  0, pidx) < 0;
            if (!bad && c->K)
                bad = h5_put(f, "/topk_ids", H5T_STD_U32LE, H5T_NATIVE_INT32, ntok, (hsize_t)c->K,
                             ids) < 0 ||
                      h5_put(f, "/topk_logprobs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ntok,
                             (hsize_t)c->K, lp) < 0;
            if (f >= 0 && H5Fclose(f) < 0) bad = 1;
        }
        H5E_END_TRY;
        free(pidx), free(ids), free(lp);
        if (bad)
            rc = kd_fail(err, KD_ERUNTIME,
                         "%s: cannot add the prompt index / top-K arrays (disk full?)", build);
        if (!rc) rc = fsync_rename(build, final, err);
        if (rc) unlink(build);
    }
    for (int i = 0; i < n; i++) {
        free((void *)s[i].prompt);
        kd_gen_seq_clear(&s[i]);
    }
    free(s);
    return rc;
}

// ----------------------------------------------------------------------------- merge

// Rank 0: parts in order -> out (published by rename). Checks that part c holds exactly
// prompts [c*P, ...) in order, so no prompt is missing or repeated.
static int merge(pl_ctx *c, uint64_t n_parts, kd_error *err) {
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof tmp, "%s.merge-tmp", c->out);
    const kd_dataset_info *in = c->info;
    kd_dataset_writer *w = NULL;
    int rc = kd_dataset_writer_open(&w, tmp, "kd", kd_model_cfg(c->m)->vocab_size, in->bos_id,
                                    in->eos_id, in->pad_id, 1, in->tokenizer, err);
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
    uint64_t ntok = w ? kd_dataset_writer_n_tokens(w) : 0;
    int rc2 = kd_dataset_writer_close(w, rc == KD_OK, rc ? NULL : err);
    if (!rc) rc = rc2;
    if (rc) return rc;
    // second pass: /prompt_index and the top-K arrays, copied part by part
    int bad = 0;
    H5E_BEGIN_TRY {
        hid_t f = H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t dsi = -1, dsl = -1, dsp = -1;
        bad = f < 0;
        hsize_t K = (hsize_t)c->K, dims[2] = {ntok, K}, ndoc = c->n;
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_obj_track_times(dcpl, 0);
        if (!bad) {
            hid_t s1 = H5Screate_simple(1, &ndoc, NULL);
            dsp = H5Dcreate2(f, "/prompt_index", H5T_STD_U64LE, s1, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            H5Sclose(s1);
            bad = dsp < 0;
        }
        if (!bad && K) {
            hid_t s2 = H5Screate_simple(2, dims, NULL);
            dsi = H5Dcreate2(f, "/topk_ids", H5T_STD_U32LE, s2, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            dsl =
                H5Dcreate2(f, "/topk_logprobs", H5T_IEEE_F32LE, s2, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            H5Sclose(s2);
            bad = dsi < 0 || dsl < 0;
        }
        hsize_t row = 0, doc = 0;
        for (uint64_t part = 0; part < n_parts && !bad; part++) {
            part_path(c, part, path, sizeof path);
            hid_t pf = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
            size_t np = 0, ni = 0, nl = 0;
            uint64_t *pidx = pf < 0 ? NULL : h5_get(pf, "/prompt_index", H5T_NATIVE_UINT64, 8, &np);
            int32_t *ids = pf < 0 || !K ? NULL : h5_get(pf, "/topk_ids", H5T_NATIVE_INT32, 4, &ni);
            float *lp =
                pf < 0 || !K ? NULL : h5_get(pf, "/topk_logprobs", H5T_NATIVE_FLOAT, 4, &nl);
            if (pf >= 0) H5Fclose(pf);
            bad = !pidx || (K && (!ids || !lp || ni != nl || ni % K));
            for (size_t i = 0; i < np && !bad; i++)
                bad = pidx[i] != doc + i; // exactly the prompts of this part
            hsize_t cnt = np, rows = K ? ni / K : 0, st = doc, st2[2] = {row, 0},
                    cnt2[2] = {rows, K};
            if (!bad && np) {
                hid_t fs = H5Dget_space(dsp), ms = H5Screate_simple(1, &cnt, NULL);
                H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &cnt, NULL);
                bad = H5Dwrite(dsp, H5T_NATIVE_UINT64, ms, fs, H5P_DEFAULT, pidx) < 0;
                H5Sclose(ms), H5Sclose(fs);
            }
            if (!bad && rows) {
                bad = row + rows > ntok;
                hid_t dsets[2] = {dsi, dsl}, mts[2] = {H5T_NATIVE_INT32, H5T_NATIVE_FLOAT};
                const void *bufs[2] = {ids, lp};
                for (int k = 0; k < 2 && !bad; k++) {
                    hid_t fs = H5Dget_space(dsets[k]), ms = H5Screate_simple(2, cnt2, NULL);
                    H5Sselect_hyperslab(fs, H5S_SELECT_SET, st2, NULL, cnt2, NULL);
                    bad = H5Dwrite(dsets[k], mts[k], ms, fs, H5P_DEFAULT, bufs[k]) < 0;
                    H5Sclose(ms), H5Sclose(fs);
                }
            }
            free(pidx), free(ids), free(lp);
            row += rows, doc += np;
        }
        if (!bad) bad = doc != c->n || (K && row != ntok);
        if (dsp >= 0) H5Dclose(dsp);
        if (dsi >= 0) H5Dclose(dsi);
        if (dsl >= 0) H5Dclose(dsl);
        H5Pclose(dcpl);
        if (f >= 0 && H5Fclose(f) < 0) bad = 1;
    }
    H5E_END_TRY;
    if (bad) {
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
    o->download(h, kd_model_params(m), pt->total * sizeof(float));
    uint64_t x = kd_hash64(h, pt->total * sizeof(float), 0);
    free(h);
    return x;
}

static int agree(kd_comm *comm, int rc, kd_error *err) {
    int worst = (int)kd_comm_max_f64(comm, (double)rc);
    if (worst && !rc) kd_fail(err, worst, "pseudo-labels: another rank failed (see its message)");
    return worst;
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
        if (c.p.eos_id < 0) c.p.eos_id = c.info->eos_id;
        if (c.info->vocab_size > kd_model_cfg(teacher)->vocab_size)
            rc = kd_fail(err, KD_EINPUT, "%s: vocab_size %d is larger than the model's %d",
                         prompts_h5, c.info->vocab_size, kd_model_cfg(teacher)->vocab_size);
        else if (c.n == 0)
            rc = kd_fail(err, KD_EINPUT, "%s: no prompts (0 documents)", prompts_h5);
    }
    if ((rc = agree(comm, rc, err))) {
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
    int done = file_equals(path, sig) && exists(out_h5);
    if (rank == 0 && !done) {
        rc = mkdir_p(work_dir, err);
        snprintf(path, sizeof path, "%s/PARAMS", work_dir);
        int same = !rc && file_equals(path, sig);
        if (!rc) clean_work_dir(&c, !same);
        snprintf(path, sizeof path, "%s.merge-tmp", out_h5);
        unlink(path); // a merge killed before its rename
        snprintf(path, sizeof path, "%s/PARAMS", work_dir);
        if (!rc && !same) rc = write_atomic(path, sig, err);
    }
    done = (int)kd_comm_max_f64(comm, (double)done); // rank 0's view decides
    if ((rc = agree(comm, rc, err)) || done) {
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
        if ((rc = agree(comm, rc, err))) break;
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
        if (!rc) rc = write_atomic(path, sig, err);
        if (!rc)
            for (uint64_t part = 0; part < n_parts; part++) {
                part_path(&c, part, path, sizeof path);
                unlink(path);
            }
    }
    rc = agree(comm, rc, err);
    kd_dataset_close(c.ds);
    return rc;
}
