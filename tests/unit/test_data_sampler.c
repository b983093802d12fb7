// test_data_sampler.c: the sample order is a permutation of [0, n) in every epoch, for
// sizes around powers of two (cycle walking) and tiny n; epochs and seeds give different
// orders; the first position is close to uniform over seeds; rank slices of a global
// batch are disjoint, contiguous and cover it, so the samples every rank reads, put
// together in rank order, are the same global sequence for any world size; and a few
// pinned values guard the order against accidental change (it defines what resumed runs
// read, so changing it must be a deliberate, documented format change).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/sampler.h"
#include "check.h"

static void permutation_per_epoch(void) {
    const uint64_t sizes[] = {1, 2, 3, 5, 16, 17, 100, 255, 256, 257, 1000, 4097, 65537};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        uint64_t n = sizes[k];
        char *seen = malloc(n);
        for (uint64_t e = 0; e < 3; e++) {
            memset(seen, 0, n);
            uint64_t dup = 0, out = 0;
            for (uint64_t i = 0; i < n; i++) {
                uint64_t w = kd_sampler_window(42, n, e * n + i);
                if (w >= n)
                    out++;
                else if (seen[w]++)
                    dup++;
            }
            CHECK(dup == 0 && out == 0, "n=%llu epoch %llu: %llu duplicates, %llu out of range",
                  (unsigned long long)n, (unsigned long long)e, (unsigned long long)dup,
                  (unsigned long long)out);
        }
        free(seen);
    }
}

// Positions where two orders of n=1000 agree. Two independent random permutations
// agree at ~1 position on average (Poisson(1)); > 20 would mean they are related.
static int agreements(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2) {
    const uint64_t n = 1000;
    int same = 0;
    for (uint64_t i = 0; i < n; i++)
        same += kd_sampler_window(s1, n, e1 * n + i) == kd_sampler_window(s2, n, e2 * n + i);
    return same;
}

static void epochs_and_seeds_differ(void) {
    int a;
    a = agreements(7, 0, 7, 1);
    CHECK(a <= 20, "epochs 0 and 1 agree at %d of 1000 positions", a);
    a = agreements(7, 1, 7, 2);
    CHECK(a <= 20, "epochs 1 and 2 agree at %d of 1000 positions", a);
    a = agreements(7, 0, 8, 0);
    CHECK(a <= 20, "seeds 7 and 8 agree at %d of 1000 positions", a);
    // identity would agree everywhere: the order must actually shuffle
    int fixed = 0;
    for (uint64_t i = 0; i < 1000; i++) fixed += kd_sampler_window(7, 1000, i) == i;
    CHECK(fixed <= 20, "%d fixed points of 1000", fixed);
    // and it is a pure function: the same call gives the same answer
    CHECK(agreements(7, 3, 7, 3) == 1000, "not deterministic");
}

// Over 20000 seeds, position 0 of n=10 lands on each value ~2000 times (binomial sd ~42);
// the tolerance +-250 is ~6 sd: a biased permutation (e.g. one value never first) fails.
static void first_position_uniform(void) {
    int hist[10] = {0};
    for (uint64_t s = 0; s < 20000; s++) hist[kd_sampler_window(s, 10, 0)]++;
    for (int v = 0; v < 10; v++)
        CHECK(hist[v] > 1750 && hist[v] < 2250, "value %d first in %d of 20000 seeds", v, hist[v]);
}

static void rank_slices(void) {
    const uint64_t n = 53, G = 12, seed = 99; // G not divisible by 5 or 7: uneven shares
    uint64_t global[5 * 12];
    for (uint64_t p = 0; p < 5 * G; p++) global[p] = kd_sampler_window(seed, n, p);
    for (int W = 1; W <= 7; W++) {
        uint64_t got[5 * 12] = {0};
        int filled = 0, shape_ok = 1;
        for (uint64_t g = 0; g < 5; g++) {
            uint64_t next = 0, minc = G, maxc = 0;
            for (int r = 0; r < W; r++) {
                uint64_t first, count;
                kd_sampler_rank_slice(G, W, r, &first, &count);
                if (first != next) shape_ok = 0; // contiguous and disjoint
                next = first + count;
                minc = count < minc ? count : minc;
                maxc = count > maxc ? count : maxc;
                // what rank r reads in global batch g
                for (uint64_t j = 0; j < count; j++)
                    got[filled++] = kd_sampler_window(seed, n, g * G + first + j);
            }
            if (next != G || maxc - minc > 1) shape_ok = 0;
        }
        CHECK(shape_ok, "world %d: slices are not a balanced partition of the batch", W);
        CHECK(filled == (int)(5 * G) && memcmp(got, global, sizeof got) == 0,
              "world %d: ranks together read a different sequence (filled %d)", W, filled);
    }
}

// Pinned values: seed 1234, n 1000, positions 0..4 and 1000 (start of epoch 1).
static void pinned(void) {
    const uint64_t pos[6] = {0, 1, 2, 3, 4, 1000};
    const uint64_t want[6] = {814, 199, 494, 166, 109, 671};
    for (int i = 0; i < 6; i++) {
        uint64_t got = kd_sampler_window(1234, 1000, pos[i]);
        CHECK(got == want[i], "position %llu: window %llu, pinned %llu", (unsigned long long)pos[i],
              (unsigned long long)got, (unsigned long long)want[i]);
    }
}

int main(void) {
    permutation_per_epoch();
    epochs_and_seeds_differ();
    first_position_uniform();
    rank_slices();
    pinned();
    return check_done("test_data_sampler");
}
