// rng.c: xoshiro256** with splitmix64 seeding, uniform/normal draws.
#include "runtime/base/rng.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "runtime/base/hash.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void kd_rng_seed(kd_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void kd_rng_seed_str(kd_rng *r, uint64_t seed, const char *key) {
    kd_rng_seed(r, seed ^ kd_fnv1a64(key, strlen(key)));
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t kd_rng_u64(kd_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double kd_rng_uniform(kd_rng *r) { return (double)(kd_rng_u64(r) >> 11) * 0x1.0p-53; }

double kd_rng_normal(kd_rng *r) {
    double u1 = kd_rng_uniform(r), u2 = kd_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
