/*
 * A Tributary transform in C: curates news articles (the same transform as
 * the Python and JavaScript examples).
 *
 * - drops articles whose `source` is on the block list (`block_sources`,
 *   comma-separated), counted as filtered;
 * - masks the `author` field (first character, then `***`);
 * - adds `title_words`, the number of words in the title.
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

typedef tributary_transform_types_value_t value_t;

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

static bool is_blocked(const value_t *source) {
  if (source->tag != TRIBUTARY_TRANSFORM_TYPES_VALUE_TEXT) return false;
  for (size_t i = 0; i < n_blocked; i++) {
    const transform_string_t *b = &blocked[i];
    if (b->len == source->val.text.len && memcmp(b->ptr, source->val.text.ptr, b->len) == 0)
      return true;
  }
  return false;
}

static int64_t count_words(const value_t *title) {
  if (title->tag != TRIBUTARY_TRANSFORM_TYPES_VALUE_TEXT) return 0;
  int64_t words = 0;
  bool in_word = false;
  for (size_t i = 0; i < title->val.text.len; i++) {
    bool space = is_space(title->val.text.ptr[i]);
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

static int column(const exports_tributary_transform_processor_batch_t *batch, const char *name) {
  for (size_t i = 0; i < batch->fields.len; i++)
    if (str_eq(&batch->fields.ptr[i].name, name)) return (int)i;
  return -1;
}

bool exports_tributary_transform_processor_process(exports_tributary_transform_processor_batch_t *batch,
                                                   exports_tributary_transform_processor_output_t *ret,
                                                   transform_string_t *err) {
  act_up();
  int source_col = column(batch, "source"), title_col = column(batch, "title"),
      author_col = column(batch, "author");
  if (source_col < 0 || title_col < 0 || author_col < 0) {
    fail(err, source_col < 0   ? "curate needs a `source` field"
              : title_col < 0 ? "curate needs a `title` field"
                              : "curate needs an `author` field");
    exports_tributary_transform_processor_batch_free(batch);
    return false;
  }
  size_t rows = batch->rows.len;
  memset(ret, 0, sizeof *ret);
  ret->emit.ptr = xmalloc(rows * sizeof *ret->emit.ptr);
  ret->dropped.ptr = xmalloc(rows * sizeof *ret->dropped.ptr);
  for (size_t n = 0; n < rows; n++) {
    const value_t *row = batch->rows.ptr[n].ptr;
    if (is_blocked(&row[source_col])) {
      ret->dropped.ptr[ret->dropped.len++] = (tributary_transform_types_dropped_t){
          .row = (uint32_t)n, .reason = TRIBUTARY_TRANSFORM_TYPES_DROP_REASON_FILTERED};
      continue;
    }
    tributary_transform_types_assignment_t *sets = xmalloc(2 * sizeof *sets);
    size_t n_sets = 0;
    transform_string_dup(&sets[n_sets].f0, "title_words");
    sets[n_sets].f1.tag = TRIBUTARY_TRANSFORM_TYPES_VALUE_INT;
    sets[n_sets++].f1.val.int_ = count_words(&row[title_col]);
    const value_t *author = &row[author_col];
    if (author->tag == TRIBUTARY_TRANSFORM_TYPES_VALUE_TEXT && author->val.text.len > 0) {
      size_t first = utf8_len(author->val.text.ptr[0]);
      if (first > author->val.text.len) first = author->val.text.len;
      transform_string_t masked;
      masked.len = first + 3;
      masked.ptr = xmalloc(masked.len);
      memcpy(masked.ptr, author->val.text.ptr, first);
      memcpy(masked.ptr + first, "***", 3);
      transform_string_dup(&sets[n_sets].f0, "author");
      sets[n_sets].f1.tag = TRIBUTARY_TRANSFORM_TYPES_VALUE_TEXT;
      sets[n_sets++].f1.val.text = masked;
    }
    tributary_transform_types_emit_t *e = &ret->emit.ptr[ret->emit.len++];
    e->tag = TRIBUTARY_TRANSFORM_TYPES_EMIT_UPDATE;
    e->val.update.f0 = (uint32_t)n;
    e->val.update.f1.ptr = sets;
    e->val.update.f1.len = n_sets;
  }
  /* The bindings free only non-empty lists. */
  if (ret->emit.len == 0) free(ret->emit.ptr), ret->emit.ptr = NULL;
  if (ret->dropped.len == 0) free(ret->dropped.ptr), ret->dropped.ptr = NULL;
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
