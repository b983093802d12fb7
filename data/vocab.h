// vocab.h: the tokenizer identity a dataset records (docs/formats.md): its name, its
// fingerprint and its stop ids, beside the special ids vocab_size/bos/eos/pad. Written by
// every dataset writer (data/writer.c, data/prefs.c) and read by both readers, so `check`
// can compare data with models. Byte-identity rule: a byte-tokenizer dataset whose only
// stop id is its eos_id carries neither new attribute (files stay as before), and a
// file without `tokenizer_fingerprint` whose `tokenizer` is "bytes" reads as the byte
// tokenizer; other files without it have an unknown ("") fingerprint.
#pragma once
#include <hdf5.h>
#include <stdint.h>

#include "data/tokenizer.h"
#include "runtime/base/common.h"

typedef struct {
    char name[32];                 // the `tokenizer` attribute ("bytes", a directory's basename)
    char fingerprint[65];          // 64 hex chars, or "" when the file does not say
    int vocab_size, bos, eos, pad; // eos = stop[0] (or -1); -1 = none
    int n_stop;                    // 0..KD_TOK_MAX_STOP
    int32_t stop[KD_TOK_MAX_STOP]; // ids that end a generation, eos first
} kd_vocab;

// The identity of an open tokenizer (a name longer than 31 characters is cut).
void kd_vocab_from_tokenizer(kd_vocab *v, const kd_tokenizer *t);
// The byte tokenizer's identity (what every dataset made before tokenizers existed has).
void kd_vocab_bytes(kd_vocab *v);
// Add stop id `id` if it is not one already (room permitting). Returns 1 if added.
int kd_vocab_add_stop(kd_vocab *v, int32_t id);
// The 64-hex fingerprint of the byte tokenizer.
const char *kd_vocab_bytes_fingerprint(void);
// "name (fingerprint 1a2b3c4d)" or "name (no fingerprint)" for messages. buf >= 64 chars.
const char *kd_vocab_describe(const char *name, const char *fingerprint, char *buf, size_t cap);

// Write `tokenizer_fingerprint` and `stop_ids` on obj where the byte-identity rule above
// asks for them. 0 on success, -1 on an HDF5 error (callers word the message).
int kd_vocab_write_attrs(hid_t obj, const kd_vocab *v);
// Read them back for a file whose name / eos_id attributes were read already (v->name,
// v->eos, v->vocab_size set); fills v->fingerprint, v->stop, v->n_stop. Errors (KD_EINPUT)
// start with path: a fingerprint that is not 64 hex chars, stop ids outside the vocabulary.
int kd_vocab_read_attrs(hid_t obj, kd_vocab *v, const char *path, kd_error *err);
