// synth_rng.h: the small generator of the demo-data synthesizers (synth.c, synth_tasks.c):
// splitmix64, so a seed gives the same files on every machine. Changing it changes the
// demo data (and the recorded experiment numbers), so it is kept exactly as is.
#pragma once
#include <stdint.h>

typedef struct {
    uint64_t s;
} rng_t;

static inline uint64_t rng_next(rng_t *r) {
    uint64_t x = (r->s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline int rng_int(rng_t *r, int n) { return (int)(rng_next(r) % (uint64_t)n); }

#define PICK(r, arr) (arr[rng_int((r), (int)(sizeof(arr) / sizeof(arr[0])))])
