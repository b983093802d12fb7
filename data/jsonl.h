// jsonl.h: reading JSON Lines files (one JSON value per line) on top of runtime/base/json.h,
// with errors that name the file, line and column ("data.jsonl:17:5: expected ..., found
// ..."). Blank lines (only spaces, tabs, CR) are skipped; "\r\n" endings are accepted.
// Callers: the chat and preference converters (data/chat.c, data/prefs.c). One reader is
// used by one thread; every value it returns is owned by the caller (kd_json_free).
#pragma once
#include "runtime/base/common.h"
#include "runtime/base/json.h"

typedef struct kd_jsonl kd_jsonl; // opaque

// Open path for reading. A missing or unreadable file is KD_EINPUT "PATH: cannot read
// JSONL file: <reason>"; *out is NULL on error.
int kd_jsonl_open(kd_jsonl **out, const char *path, kd_error *err);

// Parse the next non-blank line into *v (free with kd_json_free). At end of file returns
// KD_OK with *v == NULL. Malformed JSON is KD_EINPUT "PATH:LINE:COL: expected X, found Y"
// (COL counts bytes from 1 within the line); a read error is KD_ERUNTIME.
int kd_jsonl_next(kd_jsonl *r, kd_json **v, kd_error *err);

// 1-based line number of the line last returned by kd_jsonl_next (0 before the first).
long kd_jsonl_line(const kd_jsonl *r);
void kd_jsonl_close(kd_jsonl *r); // NULL is fine
