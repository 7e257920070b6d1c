// A Tributary transform: upper-cases the text field named by `field`.
//
// A batch arrives as columns (wit/transform.wit, tributary:transform@0.2.0):
// a text column is one UTF-8 buffer, `data` (a Uint8Array), and `offsets`
// (row n is data[offsets[n] .. offsets[n + 1]]), with a `validity` bitmap
// when some rows are null. The answer keeps every row (no `rows`) and
// patches one field.
let field = "";
const decoder = new TextDecoder();
const encoder = new TextEncoder();

export const processor = {
  init(config) {
    for (const [key, value] of config) {
      if (key !== "field") throw `unknown config key \`${key}\`: expected \`field\``;
      field = value;
    }
    if (!field) throw "config needs `field`, the text field to upper-case";
    return [field];
  },
  process(batch) {
    const col = batch.fields.findIndex((f) => f.name === field);
    if (col < 0) throw `the records have no field \`${field}\``;
    const { values, validity } = batch.columns[col];
    if (values.tag !== "text") return { patches: [], dropped: [], rejected: [] }; // not text: every row as it is
    const { offsets, data } = values.val;
    const upper = [];
    for (let n = 0; n < batch.len; n++) {
      upper.push(encoder.encode(decoder.decode(data.subarray(offsets[n], offsets[n + 1])).toUpperCase()));
    }
    // Packed again: one buffer and n + 1 offsets.
    const out = { offsets: new Uint32Array(upper.length + 1), data: null };
    upper.forEach((u, n) => { out.offsets[n + 1] = out.offsets[n] + u.length; });
    out.data = new Uint8Array(out.offsets[upper.length]);
    upper.forEach((u, n) => out.data.set(u, out.offsets[n]));
    // Set only the rows that have a value (`set` is a bitmap like
    // `validity`; absent: all rows): a null stays null.
    const patch = { name: field, column: { values: { tag: "text", val: out } }, set: validity };
    return { patches: [patch], dropped: [], rejected: [] };
  },
  onWatermark(_watermark) {
    return { patches: [], dropped: [], rejected: [] };
  },
};
