// bpe.c: the BPE model of tokenizer.json: vocabulary and merge-rank hash maps, the
// per-word merge loop (a linked list of symbols and a binary heap of candidate merges, the
// lowest rank first and the leftmost on ties, as the `tokenizers` package merges), byte
// fallback, unk fusing, ignore_merges, and a cache of recent words.
#include <stdlib.h>
#include <string.h>

#include "data/tok/tok.h"
#include "data/tok/unicode.h"

// ---------------------------------------------------------------------------- hashing
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

// ---------------------------------------------------------------------------- string map
typedef struct {
    uint64_t hash;
    size_t off, len; // key bytes in keys.s
    int32_t id;      // -1: empty slot
} str_slot;

typedef struct {
    str_slot *slot;
    size_t cap, n; // cap: a power of two
    kd_bytes keys;
} str_map;

static void str_map_grow(str_map *m) {
    size_t cap = m->cap ? 2 * m->cap : 1024;
    str_slot *s = kd_malloc(cap * sizeof *s);
    for (size_t i = 0; i < cap; i++) s[i].id = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slot[i].id < 0) continue;
        size_t j = m->slot[i].hash & (cap - 1);
        while (s[j].id >= 0) j = (j + 1) & (cap - 1);
        s[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = s, m->cap = cap;
}

static str_slot *str_map_find(const str_map *m, const char *k, size_t n, uint64_t h) {
    if (!m->cap) return NULL;
    for (size_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        str_slot *s = &m->slot[j];
        if (s->id < 0) return s;
        if (s->hash == h && s->len == n && !memcmp(m->keys.s + s->off, k, n)) return s;
    }
}

static void str_map_put(str_map *m, const char *k, size_t n, int32_t id) {
    if (2 * (m->n + 1) > m->cap) str_map_grow(m);
    uint64_t h = hash_bytes(k, n);
    str_slot *s = str_map_find(m, k, n, h);
    if (s->id < 0) {
        s->hash = h, s->off = m->keys.n, s->len = n;
        kd_bytes_put(&m->keys, k, n);
        m->n++;
    }
    s->id = id; // a repeated key keeps its last id, as a JSON object would
}

static int32_t str_map_get(const str_map *m, const char *k, size_t n) {
    str_slot *s = str_map_find(m, k, n, hash_bytes(k, n));
    return s ? s->id : -1;
}

// ---------------------------------------------------------------------------- the model
typedef struct {
    uint64_t key; // (left id << 32) | right id; UINT64_MAX: empty
    int32_t rank, id;
} merge_slot;

typedef struct {
    int32_t rank, pos, id;
} cand; // a candidate merge of symbol pos with its right neighbour into id

#define CACHE_SLOTS (1u << 16)
#define CACHE_MAX_WORD 128

typedef struct {
    uint64_t hash;
    uint32_t koff, klen, ioff, nids; // klen 0: empty
} cache_slot;

struct kd_bpe {
    kd_bpe_opts o;
    str_map vocab;
    merge_slot *merge;
    size_t mcap, mn;
    int32_t byte_tok[256];  // <0xNN> ids (byte fallback), -1 when absent
    int32_t byte_unit[256]; // byte-level mode: the id of each single byte, -1 when absent
    int32_t *bmp_unit;      // otherwise: the id of each character of the BMP, -1 when absent
    cache_slot *cache;
    size_t cache_n;
    kd_bytes cache_keys;
    kd_ids cache_ids;
    int32_t *sym, *prev, *next; // scratch: the symbols of one word
    size_t sym_cap;
    cand *heap;
    size_t heap_n, heap_cap;
};

kd_bpe *kd_bpe_new(kd_bpe_opts o) {
    kd_bpe *b = kd_calloc(1, sizeof *b);
    b->o = o;
    b->cache = kd_calloc(CACHE_SLOTS, sizeof *b->cache);
    return b;
}

void kd_bpe_free(kd_bpe *b) {
    if (!b) return;
    free(b->vocab.slot), free(b->vocab.keys.s), free(b->merge), free(b->cache), free(b->bmp_unit);
    free(b->cache_keys.s), kd_ids_free(&b->cache_ids);
    free(b->sym), free(b->prev), free(b->next), free(b->heap);
    free(b);
}

void kd_bpe_add_vocab(kd_bpe *b, const char *key, size_t n, int32_t id) {
    str_map_put(&b->vocab, key, n, id);
}

int32_t kd_bpe_lookup(const kd_bpe *b, const char *key, size_t n) {
    return str_map_get(&b->vocab, key, n);
}

static merge_slot *merge_find(const kd_bpe *b, uint64_t key) {
    if (!b->mcap) return NULL;
    for (size_t j = hash_u64(key) & (b->mcap - 1);; j = (j + 1) & (b->mcap - 1))
        if (b->merge[j].key == key || b->merge[j].key == UINT64_MAX) return &b->merge[j];
}

static void merge_grow(kd_bpe *b) {
    size_t cap = b->mcap ? 2 * b->mcap : 1024;
    merge_slot *m = kd_malloc(cap * sizeof *m);
    for (size_t i = 0; i < cap; i++) m[i].key = UINT64_MAX;
    for (size_t i = 0; i < b->mcap; i++) {
        if (b->merge[i].key == UINT64_MAX) continue;
        size_t j = hash_u64(b->merge[i].key) & (cap - 1);
        while (m[j].key != UINT64_MAX) j = (j + 1) & (cap - 1);
        m[j] = b->merge[i];
    }
    free(b->merge);
    b->merge = m, b->mcap = cap;
}

int kd_bpe_add_merge(kd_bpe *b, const char *a, size_t alen, const char *bb, size_t blen,
                     int32_t rank, kd_error *err) {
    if (!alen || !blen)
        return kd_fail(err, KD_EINPUT, "model.merges[%d]: a part is empty", (int)rank);
    int32_t l = kd_bpe_lookup(b, a, alen), r = kd_bpe_lookup(b, bb, blen);
    char *cat = kd_malloc(alen + blen + 1);
    memcpy(cat, a, alen), memcpy(cat + alen, bb, blen);
    int32_t id = kd_bpe_lookup(b, cat, alen + blen);
    free(cat);
    if (l < 0 || r < 0 || id < 0)
        return kd_fail(err, KD_EINPUT,
                       "model.merges[%d] ('%.*s' + '%.*s'): %s is not in model.vocab", (int)rank,
                       (int)alen, a, (int)blen, bb,
                       l < 0   ? "its left part"
                       : r < 0 ? "its right part"
                               : "the merged token");
    if (2 * (b->mn + 1) > b->mcap) merge_grow(b);
    uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    merge_slot *s = merge_find(b, key);
    if (s->key == UINT64_MAX) b->mn++;
    s->key = key, s->rank = rank, s->id = id; // a repeated pair keeps its last rank
    return KD_OK;
}

void kd_bpe_ready(kd_bpe *b, int32_t unk) {
    b->o.unk = unk;
    for (int c = 0; c < 256; c++) {
        char name[8], one = (char)c;
        snprintf(name, sizeof name, "<0x%02X>", c);
        b->byte_tok[c] = kd_bpe_lookup(b, name, 6);
        b->byte_unit[c] = b->o.byte_level ? kd_bpe_lookup(b, &one, 1) : -1;
    }
    if (b->o.byte_level) return;
    // characters are looked up per word: a table for U+0000..U+FFFF saves the hashing
    b->bmp_unit = kd_malloc(0x10000 * sizeof(int32_t));
    for (uint32_t cp = 0; cp < 0x10000; cp++) {
        char u[4];
        size_t n = kd_utf8_put(cp, u);
        b->bmp_unit[cp] = cp >= 0xD800 && cp <= 0xDFFF ? -1 : kd_bpe_lookup(b, u, n);
    }
}

// ---------------------------------------------------------------------------- merge loop
static int cand_less(cand x, cand y) {
    return x.rank != y.rank ? x.rank < y.rank : x.pos < y.pos;
}

static void heap_push(kd_bpe *b, cand c) {
    if (b->heap_n == b->heap_cap) {
        b->heap_cap = b->heap_cap ? 2 * b->heap_cap : 256;
        b->heap = kd_realloc(b->heap, b->heap_cap * sizeof *b->heap);
    }
    size_t i = b->heap_n++;
    while (i > 0 && cand_less(c, b->heap[(i - 1) / 2])) {
        b->heap[i] = b->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    b->heap[i] = c;
}

static cand heap_pop(kd_bpe *b) {
    cand top = b->heap[0], last = b->heap[--b->heap_n];
    size_t i = 0;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= b->heap_n) break;
        if (k + 1 < b->heap_n && cand_less(b->heap[k + 1], b->heap[k])) k++;
        if (!cand_less(b->heap[k], last)) break;
        b->heap[i] = b->heap[k];
        i = k;
    }
    if (b->heap_n) b->heap[i] = last;
    return top;
}

// Queues the merge of symbol pos with its right neighbour, if the pair has one.
static void offer(kd_bpe *b, int32_t pos) {
    if (pos < 0) return;
    int32_t r = b->next[pos];
    if (r < 0) return;
    merge_slot *s = merge_find(b, ((uint64_t)(uint32_t)b->sym[pos] << 32) | (uint32_t)b->sym[r]);
    if (s && s->key != UINT64_MAX) heap_push(b, (cand){s->rank, pos, s->id});
}

// Merges symbols 0..m-1 (linked by prev/next) until no ranked pair is left.
static void merge_all(kd_bpe *b, size_t m) {
    b->heap_n = 0;
    for (size_t i = 0; i + 1 < m; i++) offer(b, (int32_t)i);
    while (b->heap_n) {
        cand c = heap_pop(b);
        int32_t r = b->next[c.pos];
        if (b->sym[c.pos] < 0 || r < 0) continue; // merged away, or nothing on its right
        merge_slot *s =
            merge_find(b, ((uint64_t)(uint32_t)b->sym[c.pos] << 32) | (uint32_t)b->sym[r]);
        if (s->key == UINT64_MAX || s->id != c.id) continue; // stale: the pair changed
        b->sym[c.pos] = c.id;
        b->sym[r] = -1;
        b->next[c.pos] = b->next[r];
        if (b->next[r] >= 0) b->prev[b->next[r]] = c.pos;
        offer(b, b->prev[c.pos]);
        offer(b, c.pos);
    }
}

// ---------------------------------------------------------------------------- one word
static void push_sym(kd_bpe *b, size_t *m, int32_t id) {
    if (*m == b->sym_cap) {
        b->sym_cap = b->sym_cap ? 2 * b->sym_cap : 256;
        b->sym = kd_realloc(b->sym, b->sym_cap * sizeof(int32_t));
        b->prev = kd_realloc(b->prev, b->sym_cap * sizeof(int32_t));
        b->next = kd_realloc(b->next, b->sym_cap * sizeof(int32_t));
    }
    b->sym[(*m)++] = id;
}

// 1 if every byte of a character has its <0xNN> token.
static int have_bytes(const kd_bpe *b, const unsigned char *u, size_t len) {
    for (size_t k = 0; k < len; k++)
        if (b->byte_tok[u[k]] < 0) return 0;
    return 1;
}

// The initial symbols of a word: one per character (per byte in byte-level mode), unknown
// ones as byte-fallback tokens, unk (fused when fuse_unk) or dropped. Returns the count.
static size_t init_symbols(kd_bpe *b, const char *w, size_t n) {
    size_t m = 0;
    int unk = 0; // an unk is pending
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)w + i;
        size_t len;
        int32_t id;
        if (b->o.byte_level) {
            len = 1, id = b->byte_unit[*u];
        } else {
            uint32_t cp;
            len = kd_utf8_next(u, n - i, &cp);
            id = cp < 0x10000 ? b->bmp_unit[cp] : kd_bpe_lookup(b, w + i, len);
        }
        i += len;
        unsigned char mapped[4];
        size_t ulen = len;
        if (id < 0 && b->o.byte_level) // the character the vocabulary would hold
            ulen = kd_utf8_put(kd_bytelevel_char(*u), (char *)mapped), u = mapped;
        if (id >= 0 || (b->o.byte_fallback && have_bytes(b, u, ulen))) {
            if (unk) push_sym(b, &m, b->o.unk), unk = 0;
            if (id >= 0)
                push_sym(b, &m, id);
            else
                for (size_t k = 0; k < ulen; k++) push_sym(b, &m, b->byte_tok[u[k]]);
            continue;
        }
        if (b->o.unk < 0) continue;
        if (unk && !b->o.fuse_unk) push_sym(b, &m, b->o.unk);
        unk = 1;
    }
    if (unk) push_sym(b, &m, b->o.unk);
    return m;
}

static void encode_word(kd_bpe *b, const char *w, size_t n, kd_ids *out) {
    if (b->o.ignore_merges) {
        int32_t id = kd_bpe_lookup(b, w, n);
        if (id >= 0) {
            kd_ids_push(out, id);
            return;
        }
    }
    size_t m = init_symbols(b, w, n);
    for (size_t i = 0; i < m; i++)
        b->prev[i] = (int32_t)i - 1, b->next[i] = i + 1 < m ? (int32_t)i + 1 : -1;
    merge_all(b, m);
    for (int32_t i = m ? 0 : -1; i >= 0; i = b->next[i]) kd_ids_push(out, b->sym[i]);
}

// ---------------------------------------------------------------------------- word cache
void kd_bpe_word(kd_bpe *b, const char *w, size_t n, kd_ids *out) {
    if (n == 0) return;
    if (n > CACHE_MAX_WORD) {
        encode_word(b, w, n, out);
        return;
    }
    uint64_t h = hash_bytes(w, n);
    size_t j = h & (CACHE_SLOTS - 1);
    for (; b->cache[j].klen; j = (j + 1) & (CACHE_SLOTS - 1)) {
        cache_slot *s = &b->cache[j];
        if (s->hash == h && s->klen == n && !memcmp(b->cache_keys.s + s->koff, w, n)) {
            for (uint32_t k = 0; k < s->nids; k++) kd_ids_push(out, b->cache_ids.v[s->ioff + k]);
            return;
        }
    }
    size_t first = out->n;
    encode_word(b, w, n, out);
    if (2 * (b->cache_n + 1) > CACHE_SLOTS) { // full: start over rather than evict
        memset(b->cache, 0, CACHE_SLOTS * sizeof *b->cache);
        b->cache_n = 0, b->cache_keys.n = 0, b->cache_ids.n = 0;
        for (j = h & (CACHE_SLOTS - 1); b->cache[j].klen; j = (j + 1) & (CACHE_SLOTS - 1)) {
        }
    }
    b->cache[j] = (cache_slot){h, (uint32_t)b->cache_keys.n, (uint32_t)n, (uint32_t)b->cache_ids.n,
                               (uint32_t)(out->n - first)};
    kd_bytes_put(&b->cache_keys, w, n);
    for (size_t k = first; k < out->n; k++) kd_ids_push(&b->cache_ids, out->v[k]);
    b->cache_n++;
}

// ---------------------------------------------------------------------------- byte level
// GPT-2's map: printable Latin-1 bytes stand for themselves, the other 68 bytes for the code
// points 256, 257, ... in byte order.
static int printable(unsigned c) {
    return (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
}

uint32_t kd_bytelevel_char(uint8_t byte) {
    if (printable(byte)) return byte;
    uint32_t k = 0;
    for (unsigned c = 0; c < byte; c++) k += !printable(c);
    return 256 + k;
}

int kd_bytelevel_byte(uint32_t cp) {
    if (cp < 256) return printable(cp) ? (int)cp : -1;
    uint32_t k = 256;
    for (unsigned c = 0; c < 256; c++)
        if (!printable(c) && k++ == cp) return (int)c;
    return -1;
}
