// node build.mjs <source.js> <wit folder> <out.wasm>: componentize-js, called
// directly (`jco componentize` mishandles --wit paths).
import { componentize } from "@bytecodealliance/componentize-js";
import { readFile, writeFile } from "node:fs/promises";

const [source, wit, out] = process.argv.slice(2);
const { component } = await componentize(await readFile(source, "utf8"), {
  witPath: wit,
  worldName: "transform",
  disableFeatures: ["random", "stdio", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
