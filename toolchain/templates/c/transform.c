/*
 * A Tributary transform in C: upper-cases (ASCII) the text field named by
 * `field`. The contract is wit/transform.wit; the generated bindings in gen/
 * (from `tributary transform bindings c`) declare the functions below.
 *
 * Ownership: the arguments of an exported function are ours to free; what we
 * return is freed by the bindings after the host has read it, so every string
 * and non-empty list in an answer must be our own malloc'd memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/transform.h"

/* Set by `init`; one instance serves many calls. */
static transform_string_t field;

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) abort(); /* over the memory limit: trap, do not write at 0 */
  return p;
}

bool exports_tributary_transform_processor_init(transform_list_tuple2_string_string_t *config,
                                                transform_option_list_string_t *ret,
                                                transform_string_t *err) {
  transform_string_free(&field);
  bool ok = true;
  for (size_t i = 0; ok && i < config->len; i++) {
    transform_string_t *key = &config->ptr[i].f0;
    if (key->len == 5 && memcmp(key->ptr, "field", 5) == 0) {
      transform_string_dup_n(&field, (const char *)config->ptr[i].f1.ptr, config->ptr[i].f1.len);
    } else {
      char message[256];
      snprintf(message, sizeof message, "unknown config key `%.*s`: expected `field`",
               (int)key->len, (const char *)key->ptr);
      transform_string_dup(err, message);
      ok = false;
    }
  }
  transform_list_tuple2_string_string_free(config);
  if (ok && field.len == 0) {
    transform_string_dup(err, "config needs `field`, the text field to upper-case");
    ok = false;
  }
  if (!ok) return false;
  ret->is_some = true; /* read only this field */
  ret->val.len = 1;
  ret->val.ptr = xmalloc(sizeof(transform_string_t));
  transform_string_dup_n(&ret->val.ptr[0], (const char *)field.ptr, field.len);
  return true;
}

bool exports_tributary_transform_processor_process(exports_tributary_transform_processor_batch_t *batch,
                                                   exports_tributary_transform_processor_output_t *ret,
                                                   transform_string_t *err) {
  long col = -1;
  for (size_t i = 0; i < batch->fields.len; i++) {
    transform_string_t *name = &batch->fields.ptr[i].name;
    if (name->len == field.len && memcmp(name->ptr, field.ptr, field.len) == 0) col = (long)i;
  }
  if (col < 0) {
    char message[256];
    snprintf(message, sizeof message, "the records have no field `%.*s`", (int)field.len,
             (const char *)field.ptr);
    transform_string_dup(err, message);
    exports_tributary_transform_processor_batch_free(batch);
    return false;
  }
  memset(ret, 0, sizeof *ret);
  ret->emit.len = batch->rows.len;
  ret->emit.ptr = xmalloc(batch->rows.len * sizeof *ret->emit.ptr);
  for (size_t n = 0; n < batch->rows.len; n++) {
    tributary_transform_types_value_t *value = &batch->rows.ptr[n].ptr[col];
    tributary_transform_types_emit_t *e = &ret->emit.ptr[n];
    if (value->tag != TRIBUTARY_TRANSFORM_TYPES_VALUE_TEXT) {
      e->tag = TRIBUTARY_TRANSFORM_TYPES_EMIT_KEEP;
      e->val.keep = (uint32_t)n;
      continue;
    }
    tributary_transform_types_assignment_t *set = xmalloc(sizeof *set);
    transform_string_dup_n(&set->f0, (const char *)field.ptr, field.len);
    set->f1.tag = TRIBUTARY_TRANSFORM_TYPES_VALUE_TEXT;
    transform_string_dup_n(&set->f1.val.text, (const char *)value->val.text.ptr, value->val.text.len);
    for (size_t i = 0; i < set->f1.val.text.len; i++) {
      uint8_t c = set->f1.val.text.ptr[i];
      if (c >= 'a' && c <= 'z') set->f1.val.text.ptr[i] = c - 'a' + 'A';
    }
    e->tag = TRIBUTARY_TRANSFORM_TYPES_EMIT_UPDATE;
    e->val.update.f0 = (uint32_t)n;
    e->val.update.f1.ptr = set;
    e->val.update.f1.len = 1;
  }
  if (ret->emit.len == 0) free(ret->emit.ptr), ret->emit.ptr = NULL;
  exports_tributary_transform_processor_batch_free(batch);
  return true;
}

bool exports_tributary_transform_processor_on_watermark(int64_t watermark,
                                                        exports_tributary_transform_processor_output_t *ret,
                                                        transform_string_t *err) {
  (void)watermark;
  (void)err;
  memset(ret, 0, sizeof *ret);
  return true;
}
