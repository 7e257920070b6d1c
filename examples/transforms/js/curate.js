// A Tributary transform in JavaScript, built with componentize-js: the same
// as the Python example. Drops articles whose `source` is on the block list
// (`block_sources`, comma-separated) as filtered, masks `author` (first
// letter, then ***), and adds `title_words`. For the sandbox tests,
// `misbehave` = spin | membomb | trap makes it misbehave on its first batch.
//
// Contract tributary:transform@0.2.0 (wit/transform.wit): a batch arrives as
// columns (`textColumn` reads one: a UTF-8 buffer, offsets and a validity
// bitmap), and the answer names the rows kept by number and sets fields on
// them with patches, one column per field. Lists of numbers cross as typed
// arrays (u8: Uint8Array, u32: Uint32Array, s64: BigInt64Array).
//
// Build: ./build.sh (npm install, then node build.mjs curate.js ../../../wit curate.wasm)
let blocked = new Set();
let misbehave = "";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

// Column `name` as one string per row: null where the row is null (or the
// column is not text).
function textColumn(batch, name) {
  const at = batch.fields.findIndex((f) => f.name === name);
  if (at < 0) throw `curate needs a \`${name}\` field`;
  const { values, validity } = batch.columns[at];
  const out = new Array(batch.len).fill(null);
  if (values.tag !== "text") return out;
  const { offsets, data } = values.val;
  for (let n = 0; n < batch.len; n++) {
    // validity: one bit per row, LSB first; absent when no row is null.
    if (validity == null || (validity[n >> 3] >> (n & 7)) & 1) {
      out[n] = decoder.decode(data.subarray(offsets[n], offsets[n + 1]));
    }
  }
  return out;
}

// Strings as the contract packs text: one UTF-8 buffer and n + 1 offsets.
function packText(strings) {
  const parts = strings.map((s) => encoder.encode(s));
  const offsets = new Uint32Array(parts.length + 1);
  parts.forEach((p, i) => { offsets[i + 1] = offsets[i] + p.length; });
  const data = new Uint8Array(offsets[parts.length]);
  parts.forEach((p, i) => data.set(p, offsets[i]));
  return { offsets, data };
}

// One bit per flag, LSB first.
function bitmap(flags) {
  const bits = new Uint8Array((flags.length + 7) >> 3);
  flags.forEach((f, i) => { if (f) bits[i >> 3] |= 1 << (i & 7); });
  return bits;
}

export const processor = {
  init(config) {
    for (const [key, value] of config) {
      if (key === "block_sources") {
        blocked = new Set(value.split(",").map((s) => s.trim()).filter((s) => s));
      } else if (key === "misbehave") {
        misbehave = value;
      } else {
        throw `unknown config key \`${key}\`: use block_sources`;
      }
    }
    return ["source", "title", "author"];
  },
  process(batch) {
    if (misbehave === "spin") { for (;;) {} }
    if (misbehave === "membomb") { const hog = []; for (;;) { hog.push(new Uint8Array(1 << 20).fill(1)); } }
    if (misbehave === "trap") { throw "curate was told to fail"; }
    const source = textColumn(batch, "source");
    const title = textColumn(batch, "title");
    const author = textColumn(batch, "author");
    // The rows kept, by number; per kept row its word count and, where it
    // has an author, the masked author.
    const rows = [], dropped = [], words = [], masked = [];
    for (let n = 0; n < batch.len; n++) {
      if (source[n] !== null && blocked.has(source[n])) {
        dropped.push({ row: n, reason: "filtered" });
        continue;
      }
      rows.push(n);
      words.push(title[n] === null ? 0n : BigInt(title[n].split(/\s+/).filter((w) => w).length));
      masked.push(author[n] ? author[n][0] + "***" : null);
    }
    const patches = [
      // Every output row gets `title_words` (a new field: added).
      { name: "title_words", column: { values: { tag: "int", val: BigInt64Array.from(words) } } },
      // Only the rows with an author are set; the others keep theirs.
      {
        name: "author",
        column: { values: { tag: "text", val: packText(masked.map((m) => m ?? "")) } },
        set: bitmap(masked.map((m) => m !== null)),
      },
    ];
    return { rows: Uint32Array.from(rows), patches, dropped, rejected: [] };
  },
  onWatermark(_watermark) {
    return { rows: new Uint32Array(0), patches: [], dropped: [], rejected: [] };
  },
};
