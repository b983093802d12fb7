// checkpoint.c: the life cycle of checkpoint directories: atomic save (tmp dir, fsync,
// MANIFEST last, rename), MANIFEST parsing and verification, finding the newest valid
// checkpoint, retention (prune) and load with ZeRO-1 resharding. The HDF5 files are in
// checkpoint_h5.c, state.json in checkpoint_state.c.
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/base/fs.h"
#include "runtime/base/sha256.h"
#include "runtime/store/checkpoint_internal.h"

#define PATH_LEN 4096
#define MANIFEST_MAX_FILES 16
#define MANIFEST_MAX_BYTES 8192 // more is not a MANIFEST (16 lines of at most ~150 bytes)

// ---------------------------------------------------------------------------- small helpers

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p) != 0 ? errno : 0;
}

// rm -rf; returns 0 or an errno. A missing path is fine.
static int rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : errno;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

// ---------------------------------------------------------------------------- MANIFEST

typedef struct {
    int n;
    char name[MANIFEST_MAX_FILES][64];
    uint64_t size[MANIFEST_MAX_FILES];
    char sha[MANIFEST_MAX_FILES][65];
} manifest;

static int valid_file_name(const char *s) {
    if (!*s || *s == '.') return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '.' || *s == '_' || *s == '-')) return 0;
    return 1;
}

// The lines of a MANIFEST (text, modified in place) into m. 0 ok, else -1 with why. Format:
// header "kdtrain-checkpoint 1", lines "<64 hex>  <size>  <name>", trailer "end", each line
// ending in '\n'.
static int manifest_parse(const char *path, char *text, manifest *m, char *why, size_t wl) {
    memset(m, 0, sizeof *m);
    int lineno = 0, ended = 0;
    for (char *line = text, *nl; *line; line = nl + 1) {
        lineno++;
        nl = strchr(line, '\n');
        if (!nl) {
            snprintf(why, wl, "%s:%d: line not terminated (MANIFEST truncated)", path, lineno);
            return -1;
        }
        *nl = '\0';
        if (ended) {
            snprintf(why, wl, "%s:%d: text after \"end\"", path, lineno);
            return -1;
        }
        if (lineno == 1) {
            int ver = 0;
            char tail;
            if (sscanf(line, KD_CKPT_FORMAT_NAME " %d%c", &ver, &tail) != 1) {
                snprintf(why, wl, "%s:1: expected \"" KD_CKPT_FORMAT_NAME " %d\", found \"%.60s\"",
                         path, KD_CKPT_FORMAT, line);
                return -1;
            }
            if (ver != KD_CKPT_FORMAT) {
                snprintf(why, wl, "%s:1: format version %d, this kdtrain reads version %d", path,
                         ver, KD_CKPT_FORMAT);
                return -1;
            }
            continue;
        }
        if (strcmp(line, "end") == 0) {
            ended = 1;
            continue;
        }
        int ok =
            strlen(line) > 68 && line[64] == ' ' && line[65] == ' ' && m->n < MANIFEST_MAX_FILES;
        for (int i = 0; ok && i < 64; i++)
            ok = isxdigit((unsigned char)line[i]) && !isupper((unsigned char)line[i]);
        char *end = NULL;
        if (ok) {
            errno = 0;
            m->size[m->n] = strtoull(line + 66, &end, 10);
            ok = isdigit((unsigned char)line[66]) && !errno && end[0] == ' ' && end[1] == ' ' &&
                 strlen(end + 2) < 64 && valid_file_name(end + 2);
        }
        for (int i = 0; ok && i < m->n; i++) ok = strcmp(m->name[i], end + 2) != 0;
        if (!ok) {
            snprintf(why, wl, "%s:%d: expected \"<sha256>  <size>  <name>\", found \"%.80s\"", path,
                     lineno, line);
            return -1;
        }
        memcpy(m->sha[m->n], line, 64);
        snprintf(m->name[m->n], sizeof m->name[0], "%s", end + 2);
        m->n++;
    }
    if (!ended) {
        snprintf(why, wl, "%s: no \"end\" line (MANIFEST truncated)", path);
        return -1;
    }
    return 0;
}

// Parse dir/MANIFEST. 0 ok, else -1 with why.
static int manifest_read(const char *dir, manifest *m, char *why, size_t wl) {
    char path[PATH_LEN], *text;
    size_t n;
    int e;
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    kd_read_status rs = kd_read_file(path, MANIFEST_MAX_BYTES, &text, &n, &e);
    if (rs == KD_READ_EOPEN) {
        snprintf(why, wl, "%s: %s (a checkpoint without a MANIFEST does not exist)", path,
                 strerror(e));
        return -1;
    }
    if (rs == KD_READ_EIO) {
        snprintf(why, wl, "%s: cannot read: %s", path, strerror(e));
        return -1;
    }
    if (rs == KD_READ_EBIG || strlen(text) != n) {
        snprintf(why, wl, "%s: not a MANIFEST (too long or binary)", path);
        free(text);
        return -1;
    }
    int rc = manifest_parse(path, text, m, why, wl);
    free(text);
    return rc;
}

static int manifest_has(const manifest *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->name[i], name) == 0) return 1;
    return 0;
}

// 1 valid / 0 invalid. hash = 0: sizes only (quick check).
static int check_dir(const char *dir, int hash, manifest *m, char *why, size_t wl) {
    if (manifest_read(dir, m, why, wl)) return 0;
    const char *required[] = {"model.h5", "state.json"};
    for (int i = 0; i < 2; i++)
        if (!manifest_has(m, required[i])) {
            snprintf(why, wl, "%s/MANIFEST: does not list %s", dir, required[i]);
            return 0;
        }
    for (int i = 0; i < m->n; i++) {
        char path[PATH_LEN], hex[65];
        snprintf(path, sizeof path, "%s/%s", dir, m->name[i]);
        struct stat st;
        if (stat(path, &st) != 0) {
            snprintf(why, wl, "%s: %s (listed in MANIFEST)", path, strerror(errno));
            return 0;
        }
        if ((uint64_t)st.st_size != m->size[i]) {
            snprintf(why, wl,
                     "%s: has %lld bytes, MANIFEST lists %" PRIu64 " (truncated or changed)", path,
                     (long long)st.st_size, m->size[i]);
            return 0;
        }
        if (!hash) continue;
        uint64_t size = 0;
        int e = kd_sha256_file(path, hex, &size);
        if (e) {
            snprintf(why, wl, "%s: cannot read: %s", path, strerror(e));
            return 0;
        }
        if (strcmp(hex, m->sha[i]) != 0) {
            snprintf(why, wl, "%s: SHA-256 %.12s... differs from MANIFEST's %.12s... (corrupt)",
                     path, hex, m->sha[i]);
            return 0;
        }
    }
    return 1;
}

int kd_ckpt_verify(const char *ckpt_dir, char *why, size_t why_len) {
    manifest m;
    char tmp[1024];
    int ok = check_dir(ckpt_dir, 1, &m, tmp, sizeof tmp);
    if (why && why_len) snprintf(why, why_len, "%s", ok ? "" : tmp);
    return ok;
}

// Write MANIFEST for `names` in dir: tmp name, fsync, rename.
static int manifest_write(const char *dir, const char *const *names, int n, kd_error *err) {
    char path[PATH_LEN], tmp[PATH_LEN];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    snprintf(tmp, sizeof tmp, "%s/.MANIFEST.tmp", dir);
    FILE *f = fopen(tmp, "w");
    if (!f) return kd_fail(err, KD_ERUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
    fprintf(f, KD_CKPT_FORMAT_NAME " %d\n", KD_CKPT_FORMAT);
    for (int i = 0; i < n; i++) {
        char fp[PATH_LEN], hex[65];
        uint64_t size = 0;
        snprintf(fp, sizeof fp, "%s/%s", dir, names[i]);
        int e = kd_fsync_path(fp, 0);
        if (!e) e = kd_sha256_file(fp, hex, &size);
        if (e) {
            fclose(f);
            return kd_fail(err, KD_ERUNTIME, "%s: cannot sync and hash: %s", fp, strerror(e));
        }
        fprintf(f, "%s  %" PRIu64 "  %s\n", hex, size, names[i]);
    }
    fprintf(f, "end\n");
    int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) bad = 1, e = errno;
    if (!bad && rename(tmp, path) != 0) bad = 1, e = errno;
    if (bad) return kd_fail(err, KD_ERUNTIME, "%s: cannot write: %s", path, strerror(e));
    return KD_OK;
}

// ---------------------------------------------------------------------------- listing

typedef struct {
    int64_t step;
    char name[64];
} entry;

static int by_step_desc(const void *a, const void *b) {
    int64_t x = ((const entry *)a)->step, y = ((const entry *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

// step-* entries of root, newest first, and (if tmps) the .tmp-* ones. Caller frees.
static int list_root(const char *root, entry **steps, int *ns, entry **tmps, int *nt) {
    *steps = NULL, *ns = 0;
    if (tmps) *tmps = NULL, *nt = 0;
    DIR *d = opendir(root);
    if (!d) return errno;
    int cs = 0, ct = 0;
    for (struct dirent *de; (de = readdir(d));) {
        const char *nm = de->d_name;
        if (strlen(nm) >= 64) continue;
        if (strncmp(nm, "step-", 5) == 0 && isdigit((unsigned char)nm[5])) {
            char *end;
            long long s = strtoll(nm + 5, &end, 10);
            if (*end) continue;
            if (*ns == cs) *steps = kd_realloc(*steps, (size_t)(cs = 2 * cs + 8) * sizeof(entry));
            (*steps)[*ns].step = s;
            snprintf((*steps)[(*ns)++].name, 64, "%s", nm);
        } else if (tmps && strncmp(nm, ".tmp-", 5) == 0) {
            if (*nt == ct) *tmps = kd_realloc(*tmps, (size_t)(ct = 2 * ct + 8) * sizeof(entry));
            (*tmps)[*nt].step = 0;
            snprintf((*tmps)[(*nt)++].name, 64, "%s", nm);
        }
    }
    closedir(d);
    if (*ns) qsort(*steps, (size_t)*ns, sizeof(entry), by_step_desc);
    return 0;
}

int kd_ckpt_find_latest(const char *ckpt_root, char *out_dir, size_t out_len,
                        void (*warn)(const char *msg)) {
    entry *steps, *tmps;
    int ns, nt, found = 0;
    if (list_root(ckpt_root, &steps, &ns, &tmps, &nt) != 0) return 0;
    char msg[2048], why[1024], dir[PATH_LEN];
    for (int i = 0; i < nt && warn; i++) {
        snprintf(msg, sizeof msg, "skipping %s/%s: unfinished checkpoint (a save was interrupted)",
                 ckpt_root, tmps[i].name);
        warn(msg);
    }
    for (int i = 0; i < ns && !found; i++) {
        snprintf(dir, sizeof dir, "%s/%s", ckpt_root, steps[i].name);
        if (kd_ckpt_verify(dir, why, sizeof why)) {
            snprintf(out_dir, out_len, "%s", dir);
            found = 1;
        } else if (warn) {
            snprintf(msg, sizeof msg, "skipping %s: %s", dir, why);
            warn(msg);
        }
    }
    free(steps);
    free(tmps);
    return found;
}

// ---------------------------------------------------------------------------- prune

static int prune_rank0(const char *root, int keep, kd_error *err) {
    entry *steps, *tmps;
    int ns, nt, rc = KD_OK;
    int e = list_root(root, &steps, &ns, &tmps, &nt);
    if (e) return e == ENOENT ? KD_OK : kd_fail(err, KD_ERUNTIME, "%s: %s", root, strerror(e));
    char path[PATH_LEN], gone[PATH_LEN], why[1024];
    for (int i = 0; i < nt && rc == KD_OK; i++) {
        snprintf(path, sizeof path, "%s/%s", root, tmps[i].name);
        if ((e = rm_rf(path)) != 0)
            rc = kd_fail(err, KD_ERUNTIME, "%s: cannot remove: %s", path, strerror(e));
        else
            fprintf(stderr, "kdtrain: checkpoint: removed leftover %s\n", path);
    }
    int valid = 0; // valid checkpoints seen so far, newest first
    for (int i = 0; i < ns && rc == KD_OK && keep > 0; i++) {
        manifest m;
        snprintf(path, sizeof path, "%s/%s", root, steps[i].name);
        int ok = check_dir(path, 0, &m, why, sizeof why);
        valid += ok;
        // delete: valid ones beyond the newest `keep`; invalid ones older than a valid one
        if ((ok && valid <= keep) || (!ok && valid == 0)) continue;
        // rename first, so an interrupted delete leaves a .tmp-* that the next prune removes
        snprintf(gone, sizeof gone, "%s/.tmp-pruned-%s", root, steps[i].name);
        if (rename(path, gone) != 0 || (e = rm_rf(gone)) != 0) {
            e = e ? e : errno;
            rc = kd_fail(err, KD_ERUNTIME, "%s: cannot remove: %s", path, strerror(e));
        } else if (!ok) {
            fprintf(stderr, "kdtrain: checkpoint: removed invalid %s (%s)\n", path, why);
        }
    }
    free(steps);
    free(tmps);
    return rc;
}

int kd_ckpt_prune(kd_comm *comm, const char *ckpt_root, int keep, kd_error *err) {
    int rc = kd_comm_rank(comm) == 0 ? prune_rank0(ckpt_root, keep, err) : KD_OK;
    return kd_comm_agree(comm, rc, err);
}

// ---------------------------------------------------------------------------- save

// Test hook: KD_CKPT_TEST_DELAY_MS=N makes rank 0 sleep N ms after each file of a save
// (model.h5, optim.h5, MANIFEST) and before the rename, so fault tests can kill a run in
// the middle of a checkpoint write reliably (tests/fault/).
static void test_delay(void) {
    const char *v = getenv("KD_CKPT_TEST_DELAY_MS");
    long ms = v ? atol(v) : 0;
    if (ms > 0) usleep((useconds_t)(ms * 1000));
}

// Rank 0's part after the HDF5 files: state.json, MANIFEST, rename into place.
static int finish_rank0(const char *root, const char *tmp, const char *final, int have_m,
                        const kd_train_state *ts, int world, kd_error *err) {
    char path[PATH_LEN];
    kd_train_state st = *ts;
    st.world_size = world;
    snprintf(path, sizeof path, "%s/state.json", tmp);
    int rc = kd_ckpt_state_write(path, &st, err);
    if (rc) return rc;
    const char *names[] = {"model.h5", "state.json", "optim.h5"};
    if ((rc = manifest_write(tmp, names, have_m ? 3 : 2, err))) return rc;
    test_delay();
    int e = kd_fsync_path(tmp, 1);
    if (e) return kd_fail(err, KD_ERUNTIME, "%s: cannot sync: %s", tmp, strerror(e));
    struct stat sb;
    if (stat(final, &sb) == 0) {
        // same step saved again (e.g. after falling back past an invalid one): swap atomically
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) != 0)
            return kd_fail(err, KD_ERUNTIME, "%s: cannot replace: %s", final, strerror(errno));
        rm_rf(tmp); // now holds the old checkpoint; a leftover is removed by prune
    } else if (rename(tmp, final) != 0) {
        return kd_fail(err, KD_ERUNTIME, "%s: cannot rename to %s: %s", tmp, final,
                       strerror(errno));
    }
    if ((e = kd_fsync_path(root, 1)))
        return kd_fail(err, KD_ERUNTIME, "%s: cannot sync: %s", root, strerror(e));
    return KD_OK;
}

int kd_ckpt_save(kd_comm *comm, const char *ckpt_root, int64_t step, const kd_param_table *pt,
                 const float *params, const float *m_shard, const float *v_shard,
                 const kd_train_state *ts, const kd_ckpt_attr *attrs, int n_attrs, char *out_path,
                 size_t out_len, kd_error *err) {
    int rank = kd_comm_rank(comm), world = kd_comm_size(comm), rc = KD_OK;
    if (!ckpt_root || !pt || !params || !ts || step < 0 || n_attrs < 0 || (n_attrs && !attrs) ||
        !m_shard != !v_shard)
        rc = kd_fail(err, KD_EINPUT, "kd_ckpt_save: missing argument or negative step");
    for (int i = 0; i < n_attrs && rc == KD_OK; i++)
        if (!attrs[i].name[0] || strncmp(attrs[i].name, "kdtrain_", 8) == 0)
            rc = kd_fail(err, KD_EINPUT, "kd_ckpt_save: attribute name '%s' is empty or reserved",
                         attrs[i].name);
    int have_m = m_shard != NULL;
    int some_have = kd_comm_any(comm, have_m), some_lack = kd_comm_any(comm, !have_m);
    if (some_have && some_lack)
        rc = kd_fail(err, KD_EINPUT, "kd_ckpt_save: optimizer shards given on some ranks only");
    if ((rc = kd_comm_agree(comm, rc, err))) return rc;

    char tmp[PATH_LEN], final[PATH_LEN], path[PATH_LEN];
    snprintf(tmp, sizeof tmp, "%s/.tmp-step-%08" PRId64, ckpt_root, step);
    snprintf(final, sizeof final, "%s/step-%08" PRId64, ckpt_root, step);
    if (rank == 0) {
        int e = kd_mkdir_p(ckpt_root, 0777, NULL, 0);
        if (!e) e = rm_rf(tmp); // a leftover of an interrupted save of the same step
        if (!e && mkdir(tmp, 0777) != 0) e = errno;
        if (e) rc = kd_fail(err, KD_ERUNTIME, "%s: cannot create: %s", tmp, strerror(e));
    }
    if ((rc = kd_comm_agree(comm, rc, err))) return rc;

    const char *pg[] = {"params"};
    const float *pd[] = {params};
    snprintf(path, sizeof path, "%s/model.h5", tmp);
    rc = kd_ckpt_h5_write(comm, path, pt, pg, pd, 1, 1, attrs, n_attrs, -1, err);
    if (rank == 0) test_delay();
    rc = kd_comm_agree(comm, rc, err);
    if (rc == KD_OK && have_m) {
        const char *og[] = {"m", "v"};
        const float *od[] = {m_shard, v_shard};
        snprintf(path, sizeof path, "%s/optim.h5", tmp);
        rc = kd_ckpt_h5_write(comm, path, pt, og, od, 2, 0, NULL, 0, ts->optim_step, err);
        if (rank == 0) test_delay();
        rc = kd_comm_agree(comm, rc, err);
    }
    if (rc == KD_OK && rank == 0) rc = finish_rank0(ckpt_root, tmp, final, have_m, ts, world, err);
    rc = kd_comm_agree(comm, rc, err);
    if (rc != KD_OK && rank == 0) rm_rf(tmp); // nothing half-written stays behind
    if (rc == KD_OK && out_path) snprintf(out_path, out_len, "%s", final);
    return rc;
}

// ---------------------------------------------------------------------------- load

int kd_ckpt_load(kd_comm *comm, const char *ckpt_dir, const kd_param_table *pt, float *params,
                 float *m_shard, float *v_shard, kd_train_state *ts, kd_error *err) {
    int rank = kd_comm_rank(comm), world = kd_comm_size(comm), rc = KD_OK;
    int have_m = m_shard != NULL;
    if (!ckpt_dir || !pt || !params || !m_shard != !v_shard)
        rc = kd_fail(err, KD_EINPUT, "kd_ckpt_load: missing argument");
    if ((rc = kd_comm_agree(comm, rc, err))) return rc;

    // every rank checks the (small) metadata itself: no broadcast of tables needed
    manifest m;
    char why[1024], model[PATH_LEN], optim[PATH_LEN], state[PATH_LEN];
    snprintf(model, sizeof model, "%s/model.h5", ckpt_dir);
    snprintf(optim, sizeof optim, "%s/optim.h5", ckpt_dir);
    snprintf(state, sizeof state, "%s/state.json", ckpt_dir);
    if (!check_dir(ckpt_dir, 0, &m, why, sizeof why))
        rc = kd_fail(err, KD_EINPUT, "%s: not a valid checkpoint: %s", ckpt_dir, why);
    if (rc == KD_OK) rc = kd_ckpt_h5_check(model, model, "params", pt, err);
    if (rc == KD_OK && have_m && !manifest_has(&m, "optim.h5"))
        rc = kd_fail(err, KD_EINPUT,
                     "%s: weights-only checkpoint (no optim.h5), optimizer state was asked for",
                     ckpt_dir);
    if (rc == KD_OK && have_m) rc = kd_ckpt_h5_check(optim, optim, "m", pt, err);
    if (rc == KD_OK && have_m) rc = kd_ckpt_h5_check(optim, optim, "v", pt, err);
    if ((rc = kd_comm_agree(comm, rc, err))) return rc;

    if (ts) {
        if (rank == 0) rc = kd_ckpt_state_read(state, ts, err);
        if ((rc = kd_comm_agree(comm, rc, err))) return rc;
        kd_comm_bcast(comm, ts, sizeof *ts);
    }
    // params: rank 0 reads, then broadcasts
    if (rank == 0) rc = kd_ckpt_h5_read(model, "params", pt, 0, pt->total, params, err);
    if ((rc = kd_comm_agree(comm, rc, err))) return rc;
    kd_comm_bcast(comm, params, pt->total * sizeof(float));
    if (have_m) { // each rank reads its own shard for this world size
        size_t lo, hi;
        kd_shard_range(pt->total, world, rank, &lo, &hi);
        rc = kd_ckpt_h5_read(optim, "m", pt, lo, hi, m_shard, err);
        if (rc == KD_OK) rc = kd_ckpt_h5_read(optim, "v", pt, lo, hi, v_shard, err);
        rc = kd_comm_agree(comm, rc, err);
    }
    return rc;
}
