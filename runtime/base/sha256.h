// sha256.h: SHA-256 (FIPS 180-4) with an incremental API. Used by the checkpoint
// MANIFEST and the parameter digest. Invariant: a context fed the same bytes in any split
// gives the same digest; kd_sha256_final leaves the context unusable until re-initialised.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];   // chaining state
    uint64_t nbytes; // bytes fed so far
    uint8_t buf[64]; // pending partial block
    size_t nbuf;     // bytes in buf
} kd_sha256;

void kd_sha256_init(kd_sha256 *c);
void kd_sha256_update(kd_sha256 *c, const void *data, size_t n);
void kd_sha256_final(kd_sha256 *c, uint8_t out[32]);
// Lowercase hex of a 32-byte digest into hex[65] (NUL-terminated).
void kd_sha256_hex(const uint8_t d[32], char hex[65]);
// Hash a whole file; fills hex and *size. Returns 0, or errno of the failing call.
int kd_sha256_file(const char *path, char hex[65], uint64_t *size);
