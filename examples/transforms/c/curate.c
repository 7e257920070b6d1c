/*
 * A Tributary transform in C: curates news articles (the same transform as
 * the Python and JavaScript examples).
 *
 * - drops articles whose `source` is on the block list (`block_sources`,
 *   comma-separated), counted as filtered;
 * - masks the `author` field (first character, then `***`);
 * - adds `title_words`, the number of words in the title.
 *
 * Contract tributary:transform@0.2.0 (wit/transform.wit): a batch arrives as
 * columns (`text_at` reads a row of one in place), and the answer names the
 * rows kept by number and sets fields on them with patches, one column per
 * field.
 *
 * For the sandbox tests, `misbehave` makes it loop forever (`spin`), allocate
 * without end (`membomb`) or trap (`trap`) on its first batch.
 *
 * Build: ./build.sh (bindings from `tributary transform bindings c`, Debian's
 * clang and wasi-libc, then `tributary transform component`).
 *
 * Ownership, as wit-bindgen's C bindings define it: the arguments of an
 * exported function belong to it (we free them); everything we return is
 * freed by the bindings after the host has read it, so every string in an
 * answer is our own malloc'd copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/transform.h"

typedef tributary_transform_types_column_t column_t;
typedef exports_tributary_transform_processor_batch_t batch_t;

#define MAX_BLOCKED 64

/* The configuration, set by `init`. */
static transform_string_t blocked[MAX_BLOCKED];
static size_t n_blocked;
static enum { BEHAVE, SPIN, MEMBOMB, TRAP } misbehave;

/* malloc that traps when the host's memory cap says no: in WebAssembly a
 * write through NULL does not fault, it silently lands at address 0. */
static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) abort();
  return p;
}

static bool str_eq(const transform_string_t *s, const char *c) {
  size_t n = strlen(c);
  return s->len == n && memcmp(s->ptr, c, n) == 0;
}

static void fail(transform_string_t *err, const char *message) {
  transform_string_dup(err, message);
}

/* "unknown config key `<key>`: <hint>" into err. */
static void fail_key(transform_string_t *err, const transform_string_t *key, const char *hint) {
  char message[256];
  snprintf(message, sizeof message, "unknown config key `%.*s`: %s", (int)key->len,
           (const char *)key->ptr, hint);
  transform_string_dup(err, message);
}

static void log_info(const char *message) {
  transform_string_t m;
  transform_string_set(&m, message);
  tributary_transform_log_write(TRIBUTARY_TRANSFORM_LOG_LEVEL_INFO, &m);
}

static bool is_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void clear_block_list(void) {
  for (size_t i = 0; i < n_blocked; i++) transform_string_free(&blocked[i]);
  n_blocked = 0;
}

/* Splits `text` on commas into the block list, trimming blanks. */
static bool set_block_list(const transform_string_t *text, transform_string_t *err) {
  clear_block_list();
  size_t start = 0;
  for (size_t i = 0; i <= text->len; i++) {
    if (i < text->len && text->ptr[i] != ',') continue;
    size_t a = start, b = i;
    while (a < b && is_space(text->ptr[a])) a++;
    while (b > a && is_space(text->ptr[b - 1])) b--;
    start = i + 1;
    if (a == b) continue;
    if (n_blocked == MAX_BLOCKED) {
      fail(err, "block_sources: at most 64 sources");
      return false;
    }
    transform_string_dup_n(&blocked[n_blocked++], (const char *)text->ptr + a, b - a);
  }
  return true;
}

bool exports_tributary_transform_processor_init(transform_list_tuple2_string_string_t *config,
                                                transform_option_list_string_t *ret,
                                                transform_string_t *err) {
  bool ok = true;
  misbehave = BEHAVE;
  clear_block_list();
  for (size_t i = 0; ok && i < config->len; i++) {
    transform_string_t *key = &config->ptr[i].f0, *value = &config->ptr[i].f1;
    if (str_eq(key, "block_sources")) {
      ok = set_block_list(value, err);
    } else if (str_eq(key, "misbehave")) {
      if (str_eq(value, "spin")) misbehave = SPIN;
      else if (str_eq(value, "membomb")) misbehave = MEMBOMB;
      else if (str_eq(value, "trap")) misbehave = TRAP;
      else if (value->len != 0) {
        fail(err, "misbehave must be one of spin, membomb, trap");
        ok = false;
      }
    } else {
      fail_key(err, key, "use block_sources (and misbehave, for tests)");
      ok = false;
    }
  }
  transform_list_tuple2_string_string_free(config);
  if (!ok) return false;
  log_info("curate (C): block list set");
  static const char *fields[] = {"source", "title", "author"};
  ret->is_some = true;
  ret->val.len = 3;
  ret->val.ptr = xmalloc(3 * sizeof(transform_string_t));
  for (size_t i = 0; i < 3; i++) transform_string_dup(&ret->val.ptr[i], fields[i]);
  return true;
}

static void act_up(void) {
  if (misbehave == SPIN) {
    volatile unsigned long spins = 0;
    for (;;) spins++;
  }
  if (misbehave == MEMBOMB) {
    /* Each block links to the last one from a volatile root: memory the
     * program can still reach, which the compiler may not optimise away. */
    static void *volatile hoard;
    for (;;) {
      void **hog = xmalloc(1 << 20);
      memset(hog, 1, 1 << 20);
      *hog = hoard;
      hoard = hog;
    }
  }
  if (misbehave == TRAP) __builtin_trap();
}

/* Bytes of a text value: a slice of the column's buffer, not a copy. */
typedef struct {
  const uint8_t *ptr;
  size_t len;
} text_t;

static const column_t *find_column(const batch_t *batch, const char *name) {
  for (size_t i = 0; i < batch->fields.len; i++)
    if (str_eq(&batch->fields.ptr[i].name, name)) return &batch->columns.ptr[i];
  return NULL;
}

/* Row `n` of a column into *text; false when the row is null or the column
 * is not text. A text column is one UTF-8 buffer, `data`, and `offsets`:
 * row n is data[offsets[n] .. offsets[n + 1]]; `validity`, when present,
 * has one bit per row (LSB first), 0 for null. */
static bool text_at(const column_t *column, size_t n, text_t *text) {
  if (column->values.tag != TRIBUTARY_TRANSFORM_TYPES_VALUES_TEXT) return false;
  const transform_option_list_u8_t *valid = &column->validity;
  if (valid->is_some && !((valid->val.ptr[n / 8] >> (n % 8)) & 1)) return false;
  const tributary_transform_types_packed_t *p = &column->values.val.text;
  text->ptr = p->data.ptr + p->offsets.ptr[n];
  text->len = p->offsets.ptr[n + 1] - p->offsets.ptr[n];
  return true;
}

static bool is_blocked(const text_t *source) {
  for (size_t i = 0; i < n_blocked; i++)
    if (blocked[i].len == source->len && memcmp(blocked[i].ptr, source->ptr, source->len) == 0)
      return true;
  return false;
}

static int64_t count_words(const text_t *title) {
  int64_t words = 0;
  bool in_word = false;
  for (size_t i = 0; i < title->len; i++) {
    bool space = is_space(title->ptr[i]);
    if (!space && !in_word) words++;
    in_word = !space;
  }
  return words;
}

/* The byte length of the UTF-8 character that starts with `lead`. */
static size_t utf8_len(uint8_t lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

/* The bindings free only non-empty lists: an empty one must not hold memory. */
static void *or_null(void *list, size_t len) {
  if (len > 0) return list;
  free(list);
  return NULL;
}

bool exports_tributary_transform_processor_process(batch_t *batch,
                                                   exports_tributary_transform_processor_output_t *ret,
                                                   transform_string_t *err) {
  act_up();
  const column_t *source = find_column(batch, "source"), *title = find_column(batch, "title"),
                 *author = find_column(batch, "author");
  if (source == NULL || title == NULL || author == NULL) {
    fail(err, source == NULL  ? "curate needs a `source` field"
              : title == NULL ? "curate needs a `title` field"
                              : "curate needs an `author` field");
    exports_tributary_transform_processor_batch_free(batch);
    return false;
  }
  size_t len = batch->len, kept = 0, n_dropped = 0, n_data = 0;
  /* The answer, sized for every row kept: the rows kept (by number), the
   * rows dropped, and per kept row its word count and, where it has an
   * author, the masked author (at most 4 + 3 bytes) with its bit in `set`. */
  uint32_t *rows = xmalloc(len * sizeof *rows);
  tributary_transform_types_dropped_t *dropped = xmalloc(len * sizeof *dropped);
  int64_t *words = xmalloc(len * sizeof *words);
  uint32_t *offsets = xmalloc((len + 1) * sizeof *offsets);
  uint8_t *data = xmalloc(len * 7);
  uint8_t *set = xmalloc((len + 7) / 8);
  memset(set, 0, (len + 7) / 8);
  offsets[0] = 0;
  for (size_t n = 0; n < len; n++) {
    text_t text;
    if (text_at(source, n, &text) && is_blocked(&text)) {
      dropped[n_dropped++] = (tributary_transform_types_dropped_t){
          .row = (uint32_t)n, .reason = TRIBUTARY_TRANSFORM_TYPES_DROP_REASON_FILTERED};
      continue;
    }
    words[kept] = text_at(title, n, &text) ? count_words(&text) : 0;
    if (text_at(author, n, &text) && text.len > 0) {
      size_t first = utf8_len(text.ptr[0]);
      if (first > text.len) first = text.len;
      memcpy(data + n_data, text.ptr, first);
      memcpy(data + n_data + first, "***", 3);
      n_data += first + 3;
      set[kept / 8] |= (uint8_t)(1 << (kept % 8));
    }
    offsets[kept + 1] = (uint32_t)n_data;
    rows[kept++] = (uint32_t)n;
  }
  exports_tributary_transform_processor_batch_free(batch);

  memset(ret, 0, sizeof *ret);
  ret->rows.is_some = true;
  ret->rows.val = (transform_list_u32_t){or_null(rows, kept), kept};
  ret->dropped.ptr = or_null(dropped, n_dropped);
  ret->dropped.len = n_dropped;
  tributary_transform_types_patch_t *patches = xmalloc(2 * sizeof *patches);
  memset(patches, 0, 2 * sizeof *patches);
  /* Every output row gets `title_words` (a new field: added). */
  transform_string_dup(&patches[0].name, "title_words");
  patches[0].column.values.tag = TRIBUTARY_TRANSFORM_TYPES_VALUES_INT;
  patches[0].column.values.val.int_ = (transform_list_s64_t){or_null(words, kept), kept};
  /* Only the rows with an author are set; the others keep theirs. */
  transform_string_dup(&patches[1].name, "author");
  patches[1].column.values.tag = TRIBUTARY_TRANSFORM_TYPES_VALUES_TEXT;
  patches[1].column.values.val.text = (tributary_transform_types_packed_t){
      .offsets = {offsets, kept + 1}, .data = {or_null(data, n_data), n_data}};
  patches[1].set.is_some = true;
  patches[1].set.val = (transform_list_u8_t){or_null(set, (kept + 7) / 8), (kept + 7) / 8};
  ret->patches = (tributary_transform_types_list_patch_t){patches, 2};
  return true;
}

bool exports_tributary_transform_processor_on_watermark(int64_t watermark,
                                                        exports_tributary_transform_processor_output_t *ret,
                                                        transform_string_t *err) {
  (void)watermark;
  (void)err;
  memset(ret, 0, sizeof *ret); /* no rows (`rows` absent: all 0 of them) */
  return true;
}
