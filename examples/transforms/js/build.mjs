// Builds a JavaScript transform into a WASM component with componentize-js:
//   node build.mjs <source.js> <wit folder> <out.wasm>
// componentize-js is called directly: `jco componentize` mishandles --wit paths.
import { componentize } from "@bytecodealliance/componentize-js";
import { readFile, writeFile } from "node:fs/promises";

const [source, wit, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node build.mjs <source.js> <wit folder> <out.wasm>");
  process.exit(2);
}
const { component } = await componentize(await readFile(source, "utf8"), {
  witPath: wit,
  worldName: "transform",
  // A transform needs none of these; leaving them out keeps the sandbox tight.
  disableFeatures: ["random", "stdio", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
