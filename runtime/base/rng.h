// rng.h: the one random number generator of kdtrain (xoshiro256** seeded by splitmix64).
// Deterministic across platforms and world sizes; its whole state is 4 uint64 so a
// checkpoint can store it. Used for weight init, sampling and test data.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} kd_rng;

void kd_rng_seed(kd_rng *r, uint64_t seed);
// Seed from a base seed and a string (e.g. a parameter name): streams independent of order.
void kd_rng_seed_str(kd_rng *r, uint64_t seed, const char *key);
uint64_t kd_rng_u64(kd_rng *r);
double kd_rng_uniform(kd_rng *r);  // [0, 1)
double kd_rng_normal(kd_rng *r);   // standard normal (Box-Muller, no cached second value)
