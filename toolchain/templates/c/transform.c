/*
 * A Tributary transform in C: upper-cases (ASCII) the text field named by
 * `field`. The contract is tributary:transform@0.2.0 (wit/transform.wit):
 * a batch arrives as columns, and the answer keeps every row and patches
 * one field. The generated bindings in gen/ (from `tributary transform
 * bindings c`) declare the functions below.
 *
 * Ownership: the arguments of an exported function are ours to free; what we
 * return is freed by the bindings after the host has read it, so every string
 * and non-empty list in an answer must be our own malloc'd memory (a list we
 * were given is ours, so it may be handed back, as `process` does).
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
  tributary_transform_types_column_t *column = NULL;
  for (size_t i = 0; i < batch->fields.len; i++) {
    transform_string_t *name = &batch->fields.ptr[i].name;
    if (name->len == field.len && memcmp(name->ptr, field.ptr, field.len) == 0)
      column = &batch->columns.ptr[i];
  }
  if (column == NULL) {
    char message[256];
    snprintf(message, sizeof message, "the records have no field `%.*s`", (int)field.len,
             (const char *)field.ptr);
    transform_string_dup(err, message);
    exports_tributary_transform_processor_batch_free(batch);
    return false;
  }
  memset(ret, 0, sizeof *ret); /* `rows` absent: every row, in order */
  if (column->values.tag == TRIBUTARY_TRANSFORM_TYPES_VALUES_TEXT) {
    /* A text column is one UTF-8 buffer, `data`, and `offsets` (row n is
     * data[offsets[n] .. offsets[n + 1]]). ASCII upper-casing keeps every
     * length, so the buffer is changed in place and handed back as the
     * patch: nothing is copied. */
    transform_list_u8_t *data = &column->values.val.text.data;
    for (size_t i = 0; i < data->len; i++)
      if (data->ptr[i] >= 'a' && data->ptr[i] <= 'z') data->ptr[i] = data->ptr[i] - 'a' + 'A';
    tributary_transform_types_patch_t *patch = xmalloc(sizeof *patch);
    memset(patch, 0, sizeof *patch);
    transform_string_dup_n(&patch->name, (const char *)field.ptr, field.len);
    patch->column.values = column->values;
    /* Set only the rows that have a value (`set` is a bitmap like
     * `validity`, one bit per row; absent: all rows): a null stays null. */
    patch->set = column->validity;
    memset(column, 0, sizeof *column); /* moved into the answer: not freed with the batch */
    ret->patches.ptr = patch;
    ret->patches.len = 1;
  }
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
