// A Tributary transform: upper-cases the text field named by `field`.
let field = "";

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
    const emit = batch.rows.map((row, n) =>
      row[col].tag === "text"
        ? { tag: "update", val: [n, [[field, { tag: "text", val: row[col].val.toUpperCase() }]]] }
        : { tag: "keep", val: n });
    return { emit, dropped: [], rejected: [] };
  },
  onWatermark(_watermark) {
    return { emit: [], dropped: [], rejected: [] };
  },
};
