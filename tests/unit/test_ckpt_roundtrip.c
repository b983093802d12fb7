// test_ckpt_roundtrip.c: save/load through the public API at this world size (ctest runs
// it on 1, 2 and 4 ranks). Proves: params, m/v shards and trainer state come back bitwise;
// model attributes, the stored table and the digest read back from the checkpoint alone;
// shape/name mismatches are KD_EINPUT naming the tensor; weights-only checkpoints; saving
// the same step twice replaces it. Bitwise (zero tolerance): float32 is stored as float32.
#include <mpi.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/store/checkpoint_internal.h"
#include "runtime/base/sha256.h"
#include "test_ckpt_fixture.h"

static int rank, world;
static char base[256], root[320];

typedef struct {
    kd_param_table pt;
    size_t lo, hi;
    float *p, *m, *v;
} bufs;

// Zeroed load buffers for this rank: all params, this rank's m/v shard.
static bufs make(void) {
    bufs b;
    b.pt = fx_table(-1);
    kd_shard_range(b.pt.total, world, rank, &b.lo, &b.hi);
    b.p = calloc(b.pt.total, sizeof(float));
    b.m = calloc(b.hi - b.lo + 1, sizeof(float));
    b.v = calloc(b.hi - b.lo + 1, sizeof(float));
    return b;
}

static void drop(bufs *b) {
    free(b->p), free(b->m), free(b->v), free(b->pt.t);
}

static void expect_same(const bufs *b, int seed, int with_m) {
    long k = fx_first_diff(b->p, 0, 0, b->pt.total, seed);
    CHECK(k < 0, "params[%ld] = %.9g, saved %.9g", k, k < 0 ? 0 : b->p[k],
          fx_value(0, (size_t)k, seed));
    if (!with_m) return;
    k = fx_first_diff(b->m, 1, b->lo, b->hi - b->lo, seed);
    CHECK(k < 0, "m[%zu] = %.9g, saved %.9g", b->lo + (size_t)k, k < 0 ? 0 : b->m[k],
          fx_value(1, b->lo + (size_t)k, seed));
    k = fx_first_diff(b->v, 2, b->lo, b->hi - b->lo, seed);
    CHECK(k < 0, "v[%zu] = %.9g, saved %.9g", b->lo + (size_t)k, k < 0 ? 0 : b->v[k],
          fx_value(2, b->lo + (size_t)k, seed));
}

static int save(int64_t step, int seed, int weights_only, char *out) {
    kd_error err = {0};
    int rc = fx_save(root, step, seed, weights_only, 1, out, 512, &err);
    CHECK(rc == KD_OK, "save step %lld: %d %s", (long long)step, rc, err.msg);
    return rc;
}

int main(int argc, char **argv) {
    if (fx_mpi_begin(&argc, &argv, base, sizeof base, "ckpt_rt")) return MPI_Finalize(), 1;
    rank = check_rank, world = check_world;
    snprintf(root, sizeof root, "%s/run/stages/03-kd/ckpt", base); // save makes the parents
    char out[512], dir[512], why[1024], want[1024];
    kd_error err = {0};

    // --- full round trip at this world size
    save(10, 1, 0, out);
    snprintf(dir, sizeof dir, "%s/step-00000010", root);
    CHECK(strcmp(out, dir) == 0, "out_path %s, want %s", out, dir);
    CHECK(kd_ckpt_verify(dir, why, sizeof why) == 1, "verify: %s", why);
    bufs b = make();
    kd_train_state ts;
    int rc = kd_ckpt_load(kd_comm_world(), dir, &b.pt, b.p, b.m, b.v, &ts, &err);
    CHECK(rc == KD_OK, "load: %s", err.msg);
    expect_same(&b, 1, 1);
    kd_train_state w = fx_state(10);
    CHECK(ts.step == 10 && ts.optim_step == 9 && ts.samples_consumed == 320 && ts.epoch == 2 &&
              ts.stage_index == 3 && ts.bad_steps == 4 && ts.world_size == world,
          "state ints: step %lld optim %lld samples %lld world %d", (long long)ts.step,
          (long long)ts.optim_step, (long long)ts.samples_consumed, ts.world_size);
    CHECK(memcmp(ts.rng, w.rng, sizeof w.rng) == 0, "rng %llx %llx", (unsigned long long)ts.rng[0],
          (unsigned long long)ts.rng[3]);
    CHECK(strcmp(ts.stage_name, w.stage_name) == 0 && strcmp(ts.recipe_hash, w.recipe_hash) == 0 &&
              strcmp(ts.model_hash, w.model_hash) == 0 && strcmp(ts.version, KD_VERSION) == 0,
          "state strings: '%s' '%s' '%s'", ts.stage_name, ts.recipe_hash, ts.version);
    CHECK(ts.n_extra == 2 && strcmp(ts.extra[1].key, "note") == 0 &&
              strcmp(ts.extra[1].value, w.extra[1].value) == 0,
          "extra: %d '%s'", ts.n_extra, ts.extra[1].value);
    int64_t ostep = -1;
    char optim_path[600];
    snprintf(optim_path, sizeof optim_path, "%s/optim.h5", dir);

    // --- things a tool can read from the checkpoint alone
    if (rank == 0) {
        kd_ckpt_attr a[8], wa[3];
        int n = 0;
        fx_attrs(wa);
        rc = kd_ckpt_read_attrs(dir, a, 8, &n, &err);
        CHECK(rc == KD_OK && n == 3, "read_attrs rc %d n %d: %s", rc, n, err.msg);
        CHECK(n == 3 && a[0].type == KD_ATTR_INT && a[0].i == 16 && a[1].type == KD_ATTR_FLOAT &&
                  a[1].f == 10000.5 && a[2].type == KD_ATTR_STRING &&
                  strcmp(a[2].s, wa[2].s) == 0 && strcmp(a[1].name, "rope_theta") == 0,
              "attrs: %s=%lld %s=%g %s='%s'", a[0].name, (long long)a[0].i, a[1].name, a[1].f,
              a[2].name, a[2].s);
        kd_error e2 = {0};
        CHECK(kd_ckpt_read_attrs(dir, a, 2, &n, &e2) == KD_EINPUT,
              "read_attrs with max 2 did not fail");
        kd_param_table st;
        rc = kd_ckpt_read_table(dir, &st, &err);
        CHECK(rc == KD_OK && st.n == b.pt.n && st.total == b.pt.total, "table n %d total %zu", st.n,
              st.total);
        for (int i = 0; rc == KD_OK && i < st.n && i < b.pt.n; i++)
            CHECK(strcmp(st.t[i].name, b.pt.t[i].name) == 0 && st.t[i].ndim == b.pt.t[i].ndim &&
                      st.t[i].shape[0] == b.pt.t[i].shape[0] && st.t[i].offset == b.pt.t[i].offset,
                  "table[%d] %s", i, st.t[i].name);
        if (rc == KD_OK) free(st.t);
        // digest = SHA-256 of the params as float32 little-endian (this host is little-endian)
        char hex[65], whex[65];
        uint8_t d[32];
        kd_sha256 c;
        kd_sha256_init(&c);
        kd_sha256_update(&c, b.p, b.pt.total * sizeof(float));
        kd_sha256_final(&c, d);
        kd_sha256_hex(d, whex);
        rc = kd_ckpt_digest(dir, hex, &err);
        CHECK(rc == KD_OK && strcmp(hex, whex) == 0, "digest %s, want %s (%s)", hex, whex, err.msg);
        rc = kd_ckpt_h5_read_int_attr(optim_path, "step", &ostep, &err);
        CHECK(rc == KD_OK && ostep == 9, "optim.h5 step attr %lld", (long long)ostep);
    }

    // --- mismatching tables: clear KD_EINPUT naming the first mismatch, identical on all ranks
    kd_param_table grown = fx_table(3);
    float *gp = calloc(grown.total, sizeof(float));
    kd_error_clear(&err);
    rc = kd_ckpt_load(kd_comm_world(), dir, &grown, gp, NULL, NULL, NULL, &err);
    snprintf(want, sizeof want,
             "%s/model.h5: layers.1.mixer.conv1d.weight has shape (24,1,4), the recipe's model "
             "needs (48,1,4)",
             dir);
    CHECK(rc == KD_EINPUT && strcmp(err.msg, want) == 0, "grown table: rc %d\n  got  %s\n  want %s",
          rc, err.msg, want);
    free(gp), free(grown.t);
    kd_param_table fewer = fx_table(-1);
    fewer.n--; // drop lm_head.weight
    kd_error_clear(&err);
    rc = kd_ckpt_load(kd_comm_world(), dir, &fewer, b.p, NULL, NULL, NULL, &err);
    CHECK(
        rc == KD_EINPUT &&
            strstr(err.msg, "has tensor /params/lm_head.weight, which the recipe's model does not"),
        "fewer tensors: rc %d %s", rc, err.msg);
    free(fewer.t);

    // --- weights only: params without m/v; a weights-only checkpoint refuses m/v
    memset(b.p, 0, b.pt.total * sizeof(float));
    kd_error_clear(&err);
    rc = kd_ckpt_load(kd_comm_world(), dir, &b.pt, b.p, NULL, NULL, NULL, &err);
    CHECK(rc == KD_OK, "params-only load: %s", err.msg);
    expect_same(&b, 1, 0);
    save(20, 1, 1, out);
    struct stat sb;
    snprintf(optim_path, sizeof optim_path, "%s/optim.h5", out);
    CHECK(stat(optim_path, &sb) != 0, "weights-only checkpoint has %s", optim_path);
    kd_error_clear(&err);
    rc = kd_ckpt_load(kd_comm_world(), out, &b.pt, b.p, b.m, b.v, NULL, &err);
    CHECK(rc == KD_EINPUT && strstr(err.msg, "weights-only"), "m/v from weights-only: rc %d %s", rc,
          err.msg);

    // --- saving step 10 again replaces it atomically; no .tmp is left
    save(10, 2, 0, out);
    kd_error_clear(&err);
    rc = kd_ckpt_load(kd_comm_world(), dir, &b.pt, b.p, b.m, b.v, NULL, &err);
    CHECK(rc == KD_OK, "reload: %s", err.msg);
    expect_same(&b, 2, 1);
    char latest[600];
    CHECK(kd_ckpt_find_latest(root, latest, sizeof latest, NULL) == 1 &&
              strstr(latest, "step-00000020"),
          "latest %s", latest);
    if (rank == 0) {
        snprintf(optim_path, sizeof optim_path, "%s/.tmp-step-00000010", root);
        CHECK(stat(optim_path, &sb) != 0, "%s left behind", optim_path);
    }
    drop(&b);
    char ok[64];
    snprintf(ok, sizeof ok, "round trip on %d ranks: all checks passed", world);
    return fx_mpi_end(base, ok);
}
