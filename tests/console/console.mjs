// The console's browser test: headless Chromium (Debian's, driven by
// playwright-core) against a live `tributary serve`, as a person would use
// the page. tests/all/console.rs starts the worker (with a bearer token and
// one failing connector) and runs this with:
//   CONSOLE_URL    the worker's address, http://127.0.0.1:PORT
//   CONSOLE_TOKEN  the worker's bearer token
//   CONSOLE_SHOTS  the folder for the screenshots (the test's artifacts)
//   CHROMIUM       the browser (default /usr/bin/chromium)
// Every step says what it waits for; the first that fails exits non-zero
// with a screenshot of the page as it was.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.CONSOLE_URL;
const token = process.env.CONSOLE_TOKEN;
const shots = process.env.CONSOLE_SHOTS;
if (!base || !token || !shots) {
  console.error("set CONSOLE_URL, CONSOLE_TOKEN and CONSOLE_SHOTS (tests/all/console.rs does)");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const origin = new URL(base).origin;
const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Root in a container has no user namespaces for Chromium's sandbox.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
// Every request the page makes: any that leaves the worker's origin is
// recorded and refused (the assertion at the end fails on it).
const requests = [];
const foreign = [];
await context.route("**/*", (route) => {
  const url = route.request().url();
  requests.push(url);
  if (new URL(url).origin === origin || url.startsWith("data:")) return route.continue();
  foreign.push(url);
  return route.abort();
});
const page = await context.newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error" && !/401|Unauthorized/.test(m.text())) problems.push(`console error: ${m.text()}`);
});

let n = 0;
async function shot(name) {
  const path = join(shots, `${String(++n).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
}

async function step(what, fn) {
  log(what);
  try {
    await fn();
  } catch (e) {
    await page.screenshot({ path: join(shots, "failed.png"), fullPage: true }).catch(() => {});
    console.error(`FAILED: ${what}: ${e.message}`);
    await browser.close();
    process.exit(1);
  }
}

// Waits until fn() (run in the page) is truthy; returns its value.
async function until(fn, arg, timeout = 30000) {
  const handle = await page.waitForFunction(fn, arg, { timeout, polling: 200 });
  return handle.jsonValue();
}

const num = (sel, attr) => until(([s, a]) => {
  const e = document.querySelector(s);
  return e && e.dataset[a] !== undefined ? Number(e.dataset[a]) : false;
}, [sel, attr]);

await step("the page asks for the worker's token, and takes it", async () => {
  await page.goto(`${base}/ui/`);
  await page.locator("#token").waitFor();
  await page.fill("#token", "not-the-token-at-all");
  await page.click("form.login button[type=submit]");
  await page.locator(".login .field-error", { hasText: "not the worker's" }).waitFor();
  await page.fill("#token", token);
  await page.click("form.login button[type=submit]");
  await page.locator("#connectors").waitFor();
});

await step("the failing connector is marked, with its reason", async () => {
  const row = page.locator('tr[data-name="bad"]');
  await row.waitFor();
  await until(() => document.querySelector('tr[data-name="bad"]')?.dataset.state === "FAILED");
  if (!(await row.getAttribute("class")).includes("failing")) throw new Error("the row is not marked failing");
  const reason = await row.locator(".reason").innerText();
  if (!reason.includes("trapper")) throw new Error(`the reason does not name the transform: ${reason}`);
  const callout = await page.locator("#failing-callout").innerText();
  if (!callout.includes("bad")) throw new Error(`the failing banner does not list it: ${callout}`);
  await shot("list-with-a-failing-connector");
});

await step("a connector is created through the form; a typo is shown next to its field, then fixed", async () => {
  await page.click("#new-connector");
  await page.fill("#name", "web");
  await page.locator("#name").dispatchEvent("change");
  const key = page.locator('.row[data-path="trigger.interval_ms"] input.key');
  await key.waitFor();
  await key.fill("intervl_ms");
  await page.click("#save");
  const error = page.locator('.field-error[data-field="trigger.intervl_ms"]');
  await error.waitFor();
  const text = await error.innerText();
  if (!text.includes("intervl_ms")) throw new Error(`the error does not name the field: ${text}`);
  // Next to the field: the element right after that field's row.
  const adjacent = await page.evaluate(() => {
    const row = document.querySelector('.row[data-path="trigger.intervl_ms"]');
    return row && row.nextElementSibling && row.nextElementSibling.dataset.field;
  });
  if (adjacent !== "trigger.intervl_ms") throw new Error(`the error is not next to the field (${adjacent})`);
  if (!page.url().endsWith("#/new")) throw new Error("an invalid config left the form");
  await shot("config-typo-next-to-its-field");
  await page.locator('.row[data-path="trigger.intervl_ms"] input.key').fill("interval_ms");
  await until(() => document.querySelectorAll(".field-error").length === 0);
  await page.click("#save");
  await page.waitForURL(/#\/c\/web$/);
});

await step("its input rate chart moves and its commit timeline grows", async () => {
  await until(() => document.querySelector('.pill[data-state="RUNNING"]'));
  const points = await until(() => {
    const e = document.getElementById("chart-rate");
    return e && Number(e.dataset.points) >= 3 && Number(e.dataset.max) > 0 && Number(e.dataset.points);
  });
  await until((p) => Number(document.getElementById("chart-rate").dataset.points) > p + 1, points);
  const epochs = await until(() => Number(document.getElementById("chart-commits").dataset.epochs) >= 2
    && Number(document.getElementById("chart-commits").dataset.epochs));
  await until((e) => Number(document.getElementById("chart-commits").dataset.epochs) > e, epochs);
  const rows = await page.locator("#commits tr").count();
  if (rows < 2) throw new Error(`the commit table has ${rows} row(s)`);
  // The other charts have data too: table rows, batch time, watermark.
  await until(() => ["chart-rows", "chart-batch", "chart-watermark"].every((id) => Number(document.getElementById(id).dataset.points) >= 2));
  await until(() => Number(document.querySelector("#count-duplicate b").textContent.replace(/[^0-9]/g, "")) > 0);
  await page.waitForTimeout(1500); // a few more seconds on the charts, for the picture
  await shot("connector-page-live");
});

await step("it is paused and resumed from the page", async () => {
  const before = await num("#chart-commits", "epochs");
  await page.click("#pause");
  await until(() => document.querySelector('.pill[data-state="PAUSED"]'));
  await page.locator("#resume").waitFor();
  await shot("paused");
  await page.click("#resume");
  await until(() => document.querySelector('.pill[data-state="RUNNING"]'));
  await page.locator("#pause").waitFor();
  const paused = await num("#chart-commits", "epochs");
  if (paused < before) throw new Error(`the commit timeline lost epochs over a pause (${before} → ${paused})`);
  await until((e) => Number(document.getElementById("chart-commits").dataset.epochs) > e, paused);
});

await step("the list shows both, the failing one still marked", async () => {
  await page.goto(`${base}/ui/#/`);
  await until(() => document.querySelector('tr[data-name="web"]')?.dataset.state === "RUNNING"
    && document.querySelector('tr[data-name="bad"]')?.classList.contains("failing"));
  await page.waitForTimeout(1200);
  await shot("list");
});

await step("no request left the worker's origin, and the page reported no error", async () => {
  if (foreign.length) throw new Error(`requests outside ${origin}: ${foreign.join(", ")}`);
  if (!requests.some((u) => u.endsWith("/ui/vendor/uPlot.iife.min.js"))) throw new Error("uPlot was not loaded from the worker");
  if (problems.length) throw new Error(problems.join("; "));
});

log(`passed: ${requests.length} requests, all to ${origin}`);
await browser.close();
