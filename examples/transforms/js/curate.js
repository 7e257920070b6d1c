// A Tributary transform in JavaScript, built with componentize-js: the same
// as the Python example. Drops articles whose `source` is on the block list
// (`block_sources`, comma-separated) as filtered, masks `author` (first
// letter, then ***), and adds `title_words`. For the sandbox tests,
// `misbehave` = spin | membomb | trap makes it misbehave on its first batch.
//
// Build: ./build.sh (npm install, then node build.mjs curate.js ../../../wit curate.wasm)
let blocked = new Set();
let misbehave = "";

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
    const col = {};
    batch.fields.forEach((f, i) => { col[f.name] = i; });
    const emit = [];
    const dropped = [];
    batch.rows.forEach((row, n) => {
      const source = row[col.source];
      if (source.tag === "text" && blocked.has(source.val)) {
        dropped.push({ row: n, reason: "filtered" });
        return;
      }
      const title = row[col.title];
      const words = title.tag === "text" ? title.val.split(/\s+/).filter((w) => w).length : 0;
      const sets = [["title_words", { tag: "int", val: BigInt(words) }]];
      const author = row[col.author];
      if (author.tag === "text" && author.val.length > 0) {
        sets.push(["author", { tag: "text", val: author.val[0] + "***" }]);
      }
      emit.push({ tag: "update", val: [n, sets] });
    });
    return { emit, dropped, rejected: [] };
  },
  onWatermark(_watermark) {
    return { emit: [], dropped: [], rejected: [] };
  },
};
