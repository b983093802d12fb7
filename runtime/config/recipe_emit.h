// recipe_emit.h: recipe values as canonical YAML text, exactly as the resolved recipe
// (recipe.resolved.yaml) writes them: strings double-quoted, `from` as {KIND: "REF"},
// arch and hybrid blocks key by key in schema order. For texts that must stay byte-stable
// across versions: the model hash (stages/kind.c) is computed over such text, and
// checkpoints store it, so a change here would refuse the resume of existing runs.
#pragma once
#include "runtime/base/strbuf.h"
#include "runtime/config/recipe.h"

void kd_recipe_emit_str(kd_strbuf *b, const char *s);
void kd_recipe_emit_from(kd_strbuf *b, const kd_from *f);
// Every key of the block, one per line, at `indent` spaces.
void kd_recipe_emit_arch(kd_strbuf *b, const kd_arch *a, int indent);
void kd_recipe_emit_hybrid(kd_strbuf *b, const kd_hybrid *h, int indent);
