// sampler.c: a keyed pseudo-random permutation of [0, n) computed point-wise: a balanced
// Feistel network over the smallest even-bit power-of-two domain >= n, with cycle walking
// (re-apply until the value lands inside [0, n)). A Feistel network is a bijection on its
// domain for any round function, and cycle walking restricts a bijection to a subset while
// keeping it a bijection; the domain is < 4n, so on average fewer than 4 steps are needed.
#include "data/sampler.h"

#define ROUNDS 6

// splitmix64 finaliser: a fast, well-mixed 64-bit hash.
static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// One pass of the Feistel network on a value of 2*half bits.
static uint64_t feistel(uint64_t v, int half, uint64_t key) {
    uint64_t mask = (half >= 64) ? ~0ull : ((1ull << half) - 1);
    uint64_t l = (v >> half) & mask, r = v & mask;
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t f = mix64(r ^ mix64(key + (uint64_t)i)) & mask;
        uint64_t nl = r;
        r = l ^ f;
        l = nl;
    }
    return (l << half) | r;
}

uint64_t kd_sampler_window(uint64_t seed, uint64_t n, uint64_t pos) {
    if (n <= 1) return 0;
    uint64_t epoch = pos / n, i = pos % n;
    uint64_t key = mix64(mix64(seed) ^ (epoch * 0xd1b54a32d192ed03ull + 1));
    int bits = 1;
    while (bits < 64 && (1ull << bits) < n) bits++;
    int half = (bits + 1) / 2; // domain 2^(2*half) >= n, < 4n
    if (half > 31) half = 32;  // n > 2^62 is not a real dataset; keep shifts defined
    uint64_t v = i;
    do v = feistel(v, half, key);
    while (v >= n);
    return v;
}

void kd_sampler_rank_slice(uint64_t G, int world, int rank, uint64_t *first, uint64_t *count) {
    uint64_t a = G * (uint64_t)rank / (uint64_t)world;
    uint64_t b = G * (uint64_t)(rank + 1) / (uint64_t)world;
    *first = a;
    *count = b - a;
}
