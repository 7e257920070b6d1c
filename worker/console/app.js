// Tributary's web console (docs/console.md): plain JavaScript, no build
// step. Pages by the URL's hash: #/ (the connectors), #/c/NAME (one
// connector: live charts, commits, dead letters, actions), #/c/NAME/edit
// and #/new (the config form). Data comes from /ui/api/… and the REST API,
// with the bearer token when the worker wants one. Charts are uPlot's
// (vendor/, from the npm registry). The DOM is built with el(), never from
// HTML strings, so nothing a config or a record holds can become markup.
"use strict";

(() => {
  const POLL_MS = 1000;
  const TOKEN_KEY = "tributary.token";
  const main = document.getElementById("main");
  const live = document.getElementById("live");
  let meta = { mode: "serve", actions: true };
  let route = null; // the page now shown: { kind, name, stop() }
  let timer = null;

  // ---- helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const svgNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const node = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function fmtNum(n, digits) {
    if (n === null || n === undefined) return "–";
    if (typeof n !== "number") return String(n);
    const abs = Math.abs(n);
    if (abs >= 1e9) return (n / 1e9).toFixed(1) + " G";
    if (abs >= 1e6) return (n / 1e6).toFixed(abs >= 1e7 ? 1 : 2) + " M";
    if (abs >= 1e4) return (n / 1e3).toFixed(1) + " k";
    return n.toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? (abs < 10 ? 1 : 0) : digits });
  }

  // Axis labels: short, no trailing ".0".
  function fmtAxis(v) {
    return fmtNum(v).replace(/\.0(?= |$)/, "");
  }

  function fmtMs(ms) {
    return ms >= 1000 ? (ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + " s" : fmtNum(ms) + " ms";
  }

  function fmtDuration(ms) {
    const a = Math.abs(ms);
    if (a < 1000) return Math.round(a) + " ms";
    const s = a / 1000;
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
    const m = s / 60;
    if (m < 60) return Math.floor(m) + " min " + Math.round(s % 60) + " s";
    const h = m / 60;
    if (h < 48) return Math.floor(h) + " h " + Math.round(m % 60) + " min";
    return Math.floor(h / 24) + " d " + Math.round(h % 24) + " h";
  }

  function ago(ms) {
    const d = Date.now() - ms;
    return d < 1500 ? "just now" : fmtDuration(d) + " ago";
  }

  const pad = (n) => String(n).padStart(2, "0");
  function fmtTime(ms, withDate) {
    const d = new Date(ms);
    const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}` : t;
  }
  function fmtUtc(ms) {
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function toast(text, bad) {
    const t = document.getElementById("toast");
    t.textContent = text;
    t.className = "show" + (bad ? " bad" : "");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (t.className = ""), 2600);
  }

  function pill(state) {
    return el("span", { class: "pill " + state, dataset: { state } }, state);
  }

  // A trace's first line, without the `connector NAME: ` it starts with.
  function firstLine(text, name) {
    const line = (text || "").split("\n")[0];
    const prefix = `connector ${name}: `;
    return name && line.startsWith(prefix) ? line.slice(prefix.length) : line;
  }

  // ---- the API

  class Unauthorized extends Error {}

  async function api(method, path, body) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (resp.status === 401) throw new Unauthorized();
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
    if (!resp.ok) {
      const err = new Error((data && data.message) || `${method} ${path}: HTTP ${resp.status}`);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  const enc = encodeURIComponent;

  // ---- routing

  function parseHash() {
    const h = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
    let m;
    if ((m = h.match(/^\/c\/(.+)\/edit$/))) return { kind: "edit", name: m[1] };
    if ((m = h.match(/^\/c\/(.+)$/))) return { kind: "connector", name: m[1] };
    if (h === "/new") return { kind: "new" };
    return { kind: "list" };
  }

  function crumbs(parts) {
    const nav = document.getElementById("crumbs");
    nav.replaceChildren();
    parts.forEach((p, i) => {
      if (i) nav.append(el("span", { class: "sep" }, "/"));
      nav.append(p.href ? el("a", { href: p.href }, p.text) : el("span", {}, p.text));
    });
  }

  function show() {
    if (route && route.stop) route.stop();
    clearTimeout(timer);
    const r = parseHash();
    main.replaceChildren();
    if (r.kind === "list") route = listPage();
    else if (r.kind === "connector") route = connectorPage(r.name);
    else if (r.kind === "edit") route = formPage(r.name);
    else route = formPage(null);
  }

  // Calls the page's refresh now and then every POLL_MS, one at a time.
  function poll(page, refresh) {
    let stopped = false;
    page.stop = () => { stopped = true; clearTimeout(timer); };
    const step = async () => {
      if (stopped) return;
      try {
        await refresh();
        live.classList.remove("down");
        live.textContent = "live";
      } catch (e) {
        if (e instanceof Unauthorized) { loginPage(); return; }
        live.classList.add("down");
        live.textContent = "no answer";
        if (e.status === 404) { page.gone && page.gone(e); return; }
      }
      if (!stopped) timer = setTimeout(step, POLL_MS);
    };
    step();
    return page;
  }

  function loginPage() {
    if (route && route.stop) route.stop();
    crumbs([{ text: "Sign in" }]);
    const input = el("input", { type: "text", id: "token", class: "mono", autocomplete: "off", placeholder: "bearer token" });
    const error = el("div", { class: "field-error", hidden: true });
    const submit = async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      try {
        await api("GET", "/ui/api/connectors");
        show();
      } catch (e) {
        error.hidden = false;
        error.textContent = e instanceof Unauthorized ? "That token is not the worker's: check the file given to --auth-token-file." : e.message;
      }
    };
    main.replaceChildren(el("form", { class: "card login", onsubmit: submit },
      el("h1", {}, "This worker wants its token"),
      el("p", {}, "Every call the console makes carries the REST API's bearer token: the first line of the file given to ",
        el("code", {}, "--auth-token-file"), ". It is kept in this tab only."),
      input, error,
      el("div", { class: "form-actions" }, el("button", { class: "primary", type: "submit" }, "Sign in"))));
    input.focus();
  }

  // ---- the list

  function sparkline(values) {
    const w = 96, h = 26;
    const s = svg("svg", { class: "spark", viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none" });
    if (!values || values.length < 2) return s;
    const max = Math.max(1, ...values) * 1.25; // a steady rate sits below the top
    const pts = values.map((v, i) => [(i / (values.length - 1)) * w, h - 2 - (v / max) * (h - 4)]);
    const line = pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join(" ");
    s.append(svg("path", { class: "area", d: `${line} L${w} ${h} L0 ${h} Z` }), svg("path", { class: "line", d: line }));
    return s;
  }

  function watermarkText(ms) {
    if (ms === null || ms === undefined) return ["–", "no watermark yet"];
    const behind = Date.now() - ms;
    const rel = behind >= 0 ? fmtDuration(behind) + " behind wall clock" : fmtDuration(-behind) + " ahead of wall clock";
    return [fmtUtc(ms), rel];
  }

  function listPage() {
    crumbs([{ text: "Connectors" }]);
    const page = {};
    const chips = el("div", { class: "chips" });
    const newButton = el("button", { class: "primary", id: "new-connector", onclick: () => (location.hash = "#/new") }, "New connector");
    const head = el("div", { class: "page-head" }, el("h1", {}, "Connectors"), chips, el("div", { class: "actions" }, newButton));
    const failing = el("div", { id: "failing" });
    const body = el("div", {});
    main.append(head, failing, body);
    return poll(page, async () => {
      const data = await api("GET", "/ui/api/connectors");
      meta = data;
      document.getElementById("mode").textContent = data.mode === "run" ? "tributary run · read only" : "tributary serve " + data.version;
      newButton.hidden = !data.actions;
      const rows = data.connectors;
      const bad = rows.filter((c) => c.state === "FAILED");
      const counts = {};
      rows.forEach((c) => (counts[c.state] = (counts[c.state] || 0) + 1));
      chips.replaceChildren(...Object.entries(counts).map(([s, n]) =>
        el("span", { class: "chip" + (s === "FAILED" ? " bad" : "") }, `${n} ${s.toLowerCase()}`)));
      failing.replaceChildren(...(bad.length ? [el("div", { class: "callout bad", id: "failing-callout" },
        el("strong", {}, bad.length === 1 ? "1 connector is failing" : `${bad.length} connectors are failing`),
        ...bad.map((c) => el("div", {}, el("a", { href: "#/c/" + enc(c.name) }, c.name), ": ", firstLine(c.trace, c.name))))] : []));
      if (!rows.length) {
        body.replaceChildren(el("div", { class: "card empty" }, el("h2", {}, "No connectors yet"),
          el("p", {}, "A connector is a pipeline: a source, WASM transforms, a sink."),
          data.actions ? el("button", { class: "primary", onclick: () => (location.hash = "#/new") }, "Create the first one") : null));
        return;
      }
      const table = el("table", { class: "connectors", id: "connectors" },
        el("thead", {}, el("tr", {},
          el("th", {}, "Connector"), el("th", {}, "State"), el("th", { class: "r" }, "Input rate"),
          el("th", { class: "r" }, "Lag"), el("th", {}, "Watermark (UTC)"), el("th", {}, "Last commit"), el("th", { class: "r" }, "Table rows"))),
        el("tbody", {}, rows.map((c) => {
          const [wm, wmRel] = watermarkText(c.watermark_ms);
          const lc = c.last_commit;
          return el("tr", { class: c.state === "FAILED" ? "failing" : "", dataset: { name: c.name, state: c.state } },
            el("td", {},
              el("a", { class: "name", href: "#/c/" + enc(c.name) }, c.name),
              el("div", { class: "flow" }, `${c.source || "?"} → ${c.sink || "?"}`),
              c.state === "FAILED" ? el("div", { class: "reason" }, firstLine(c.trace, c.name)) : null),
            el("td", {}, pill(c.state)),
            el("td", { class: "r" }, el("div", { class: "rate" }, sparkline(c.sparkline),
              el("span", { class: "num ratenum" }, fmtNum(c.input_rate), el("span", { class: "muted" }, "/s")))),
            el("td", { class: "r num nowrap" }, c.lag === null ? "–" : fmtNum(c.lag)),
            el("td", { class: "nowrap" }, el("span", { class: "num" }, wm.replace(" UTC", "")), el("span", { class: "sub2" }, wmRel)),
            el("td", { class: "nowrap" }, lc ? [el("span", { class: "num" }, `epoch ${lc.epoch}`),
              el("span", { class: "sub2" }, `${ago(lc.at_ms)} · ${fmtNum(lc.latency_ms)} ms`)] : el("span", { class: "muted" }, "none yet")),
            el("td", { class: "r num nowrap" }, fmtNum(c.table_rows)));
        })));
      body.replaceChildren(el("div", { class: "card connectors-card" }, table));
    });
  }

  // ---- charts

  const PALETTE = ["#0f766e", "#2563eb", "#d97706", "#7c3aed", "#db2777", "#059669", "#dc2626", "#0891b2", "#65a30d", "#9333ea"];

  function chartCard(id, title, unit) {
    const now = el("span", { class: "now", id: id + "-now" });
    const box = el("div", { class: "chart", id, dataset: { points: "0" } });
    const card = el("div", { class: "card chart-card" }, el("h2", {}, title, el("span", { class: "unit" }, unit), now), box);
    return { card, box, now, plot: null, key: "" };
  }

  // Draws (or updates) a chart: x in Unix seconds, one array per series.
  function draw(c, x, series, opts) {
    opts = opts || {};
    const data = [x, ...series.map((s) => s.values)];
    const points = x.length;
    c.box.dataset.points = String(points);
    const lastValues = series.map((s) => { for (let i = s.values.length - 1; i >= 0; i--) if (s.values[i] !== null) return s.values[i]; return null; });
    c.box.dataset.last = JSON.stringify(lastValues);
    c.box.dataset.max = String(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null))));
    if (points < 2 || !series.some((s) => s.values.some((v) => v !== null))) {
      if (c.plot) { c.plot.destroy(); c.plot = null; }
      c.box.replaceChildren(el("div", { class: "nodata" }, opts.empty || "collecting samples…"));
      return;
    }
    const key = series.map((s) => s.label + (s.paths ? "+" : "")).join("|");
    if (c.plot && c.key === key) { c.plot.setData(data); return; }
    if (c.plot) c.plot.destroy();
    c.box.replaceChildren();
    c.key = key;
    const width = Math.max(300, c.box.clientWidth || 560);
    const valueFmt = opts.yValues || ((u, vals) => vals.map((v) => fmtAxis(v)));
    c.plot = new uPlot({
      width, height: 200,
      padding: [10, 22, 0, 0],
      cursor: { drag: { x: false, y: false } },
      legend: { show: series.length > 1 || !!opts.legend },
      scales: { x: { time: true }, y: opts.yScale || { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] }, ...(opts.scales || {}) },
      axes: [
        { stroke: "#66737f", grid: { stroke: "#eef1f4" }, ticks: { stroke: "#e3e8ed" }, space: 80,
          values: (u, vals) => {
            const span = u.scales.x.max - u.scales.x.min;
            return vals.map((v) => fmtTime(v * 1000).slice(0, span > 900 ? 5 : 8));
          } },
        { stroke: "#66737f", grid: { stroke: "#eef1f4" }, ticks: { stroke: "#e3e8ed" }, size: opts.ySize || 56, values: valueFmt },
        ...(opts.axes || []),
      ],
      series: [{ label: "time", value: (u, v) => (v === null ? "" : fmtTime(v * 1000)) },
        ...series.map((s, i) => {
          const out = {
            label: s.label,
            stroke: s.color || PALETTE[i % PALETTE.length],
            width: 2,
            spanGaps: !!s.spanGaps,
            points: { show: s.points || false, size: 5 },
            value: s.value || ((u, v) => (v === null ? "–" : fmtNum(v))),
          };
          // uPlot reads a key that is present but undefined as a choice.
          if (series.length === 1 && !s.noFill) out.fill = (s.color || PALETTE[0]) + "1f";
          if (s.paths) out.paths = s.paths;
          if (s.scale) out.scale = s.scale;
          return out;
        })],
    }, data, c.box);
  }

  function resizeCharts(charts) {
    for (const c of charts) if (c.plot) c.plot.setSize({ width: Math.max(300, c.box.clientWidth), height: 200 });
  }

  // ---- one connector

  function tile(label, id) {
    const value = el("div", { class: "value", id: "tile-" + id }, "–");
    const hint = el("div", { class: "hint", id: "hint-" + id }, "\u00a0");
    const node = el("div", { class: "tile" }, el("div", { class: "label" }, label), value, hint);
    return { node, set(v, h, tone) { value.textContent = v; hint.textContent = h || "\u00a0"; node.className = "tile" + (tone ? " " + tone : ""); } };
  }

  function confirmModal(title, text, action) {
    return new Promise((resolve) => {
      const close = (v) => { back.remove(); resolve(v); };
      const back = el("div", { class: "modal-back" }, el("div", { class: "modal", role: "dialog" },
        el("h2", {}, title), el("p", {}, text),
        el("div", { class: "form-actions" },
          el("button", { onclick: () => close(false) }, "Cancel"),
          el("button", { class: "primary", id: "confirm", onclick: () => close(true) }, action))));
      document.body.append(back);
    });
  }

  function connectorPage(name) {
    crumbs([{ text: "Connectors", href: "#/" }, { text: name }]);
    const page = {};
    const title = el("h1", {}, name);
    const state = el("span", {});
    const flow = el("span", { class: "sub" });
    const buttons = el("div", { class: "actions" });
    const failure = el("div", {});
    const tiles = {
      rate: tile("Input rate", "rate"), lag: tile("Lag", "lag"), watermark: tile("Watermark", "watermark"),
      commit: tile("Last commit", "commit"), rows: tile("Table rows", "rows"), out: tile("Records written", "out"),
    };
    const counts = el("div", { class: "counts", id: "counts" });
    const charts = {
      rate: chartCard("chart-rate", "Input rate", "records/s"),
      batch: chartCard("chart-batch", "Batch processing time", "ms per batch"),
      backlog: chartCard("chart-backlog", "Backlog per partition", "records not read yet"),
      rows: chartCard("chart-rows", "Table rows", "after each commit"),
      commits: chartCard("chart-commits", "Commit timeline", "rows per epoch · latency"),
      watermark: chartCard("chart-watermark", "Watermark vs wall clock", "how far behind"),
    };
    const commitCount = el("span", { class: "muted", id: "commit-count" });
    const commitBody = el("tbody", { id: "commits" });
    const letterBody = el("ul", { class: "letters", id: "dead-letters" });
    const letterNote = el("div", { class: "muted", id: "dead-letter-note" });
    const configPre = el("pre", { class: "config mono", id: "config" });
    main.append(
      el("div", { class: "page-head" }, title, state, flow, buttons),
      failure,
      el("div", { class: "tiles" }, Object.values(tiles).map((t) => t.node)),
      el("div", { class: "charts" }, Object.values(charts).map((c) => c.card)),
      el("div", { class: "two" },
        el("div", { class: "card" }, el("h2", {}, "Commits ", commitCount),
          el("table", { class: "small-table" }, el("thead", {}, el("tr", {}, el("th", {}, "Epoch"), el("th", {}, "Committed"),
            el("th", { class: "r" }, "Rows"), el("th", { class: "r" }, "Latency"), el("th", { class: "r" }, "Table rows"))), commitBody)),
        el("div", { class: "card" }, el("h2", {}, "Late, duplicate and dead-lettered records"), counts,
          el("h2", { class: "minor" }, "Latest dead letters"), letterBody, letterNote)),
      el("div", { class: "card" }, el("h2", {}, "Config"), configPre));
    const observer = new ResizeObserver(() => resizeCharts(Object.values(charts)));
    observer.observe(main);
    let lastState = null;
    let busy = false;

    const act = async (label, method, path, done) => {
      if (busy) return;
      busy = true;
      try {
        await api(method, path);
        toast(done);
      } catch (e) {
        toast(`${label}: ${e.message}`, true);
      } finally {
        busy = false;
        lastState = null; // redraw the buttons
      }
    };

    function drawButtons(c) {
      if (!meta.actions) { buttons.replaceChildren(); return; }
      const paused = c.state === "PAUSED" || c.state === "STOPPED";
      buttons.replaceChildren(
        paused
          ? el("button", { id: "resume", class: "primary", onclick: () => act("Resume", "PUT", `/connectors/${enc(name)}/resume`, `${name} resumed`) }, "Resume")
          : el("button", { id: "pause", onclick: () => act("Pause", "PUT", `/connectors/${enc(name)}/pause`, `${name} paused`) }, "Pause"),
        el("button", { id: "restart", onclick: () => act("Restart", "POST", `/connectors/${enc(name)}/restart`, `${name} restarted`) }, "Restart"),
        el("button", { id: "edit", onclick: () => (location.hash = `#/c/${enc(name)}/edit`) }, "Edit config"),
        el("button", { id: "delete", class: "danger", onclick: async () => {
          if (!(await confirmModal(`Delete ${name}?`, "It stops (with a final commit) and is removed from this worker. Its table, checkpoints and dead letters stay where they are.", "Delete"))) return;
          try { await api("DELETE", `/connectors/${enc(name)}`); toast(`${name} deleted`); location.hash = "#/"; } catch (e) { toast(e.message, true); }
        } }, "Delete"));
    }

    page.gone = () => {
      main.replaceChildren(el("div", { class: "card empty" }, el("h2", {}, `No connector named ${name}`),
        el("p", {}, el("a", { href: "#/" }, "Back to the connectors"))));
    };
    const stopPolling = poll(page, async () => {
      if (!meta.version) meta = await api("GET", "/ui/api/connectors");
      const c = await api("GET", `/ui/api/connectors/${enc(name)}`);
      state.replaceChildren(pill(c.state));
      flow.textContent = `${c.source || "?"} → ${c.sink || "?"}`;
      if (c.state !== lastState) { drawButtons(c); lastState = c.state; }
      failure.replaceChildren(...(c.state === "FAILED" ? [el("div", { class: "callout bad", id: "failure" },
        el("strong", {}, "Failed"), c.restarts ? ` after ${c.restarts} restart(s)` : "", el("pre", { class: "mono" }, c.trace || ""))] : []));

      const h = c.history;
      tiles.rate.set(fmtNum(c.input_rate) + "/s", `${fmtNum(c.records_in)} records read`);
      tiles.lag.set(c.lag === null ? "–" : fmtNum(c.lag), c.lag === null ? "the source reports none" : `records, ${c.backlog.length} partition(s)`);
      const [wm, wmRel] = watermarkText(c.watermark_ms);
      if (c.watermark_ms === null) tiles.watermark.set("–", wmRel);
      else {
        const d = Date.now() - c.watermark_ms;
        tiles.watermark.set(fmtDuration(d), `${d >= 0 ? "behind" : "ahead"} · ${wm}`);
      }
      const lc = c.last_commit;
      tiles.commit.set(lc ? `epoch ${lc.epoch}` : "–", lc ? `${ago(lc.at_ms)} in ${fmtNum(lc.latency_ms)} ms` : "no commit yet");
      tiles.rows.set(fmtNum(c.table_rows), c.table_rows !== null ? "rows in the table" : lc ? "the sink does not count" : "no commit yet");
      tiles.out.set(fmtNum(c.records_out), `of ${fmtNum(c.records_in)} read · ${c.epochs_committed} epoch(s) this run`);
      counts.replaceChildren(
        el("div", { id: "count-late" }, el("b", {}, fmtNum(c.late, 0)), "late"),
        el("div", { id: "count-duplicate" }, el("b", {}, fmtNum(c.duplicate, 0)), "duplicate"),
        el("div", { id: "count-dead-lettered" }, el("b", {}, fmtNum(c.dead_lettered, 0)), "dead-lettered"),
        ...(c.filtered ? [el("div", {}, el("b", {}, fmtNum(c.filtered, 0)), "filtered")] : []));

      draw(charts.rate, h.t, [{ label: "records/s", values: h.input_rate }]);
      charts.rate.now.textContent = fmtNum(c.input_rate) + "/s";
      draw(charts.batch, h.t, [{ label: "ms", values: h.batch_ms, points: true }], { empty: "no batch yet", yValues: (u, v) => v.map((x) => fmtNum(x) + " ms") });
      const lastBatch = h.batch_ms.filter((v) => v !== null).pop();
      charts.batch.now.textContent = lastBatch === undefined ? "" : fmtNum(lastBatch) + " ms";
      const parts = h.backlog.partitions;
      draw(charts.backlog, h.t, parts.map((p, i) => ({ label: p, values: h.backlog.series[i], noFill: true })),
        { empty: parts.length ? undefined : "this source reports no backlog", legend: true });
      charts.backlog.now.textContent = c.lag === null ? "" : fmtNum(c.lag);
      draw(charts.rows, h.t, [{ label: "rows", values: h.table_rows }], { empty: lc ? "the sink does not count its rows" : "no commit yet" });
      charts.rows.now.textContent = fmtNum(c.table_rows);

      // The commit timeline: a bar per epoch (rows), its latency as a point.
      const cm = c.commits;
      draw(charts.commits, cm.map((x) => x.at_ms / 1000), [
        // Bars while they can be told apart; past that, the rows as a line.
        { label: "rows", values: cm.map((x) => x.rows), color: "#0f766e", noFill: true,
          paths: cm.length <= 120 ? uPlot.paths.bars({ size: [0.6, 14] }) : undefined },
        { label: "latency", values: cm.map((x) => x.latency_ms), scale: "ms", points: true, color: "#d97706", paths: () => null,
          value: (u, v) => (v === null ? "–" : fmtMs(v)) },
      ], {
        empty: "no commit yet", legend: true,
        scales: { ms: { range: (u, min, max) => [0, max > 0 ? max * 1.2 : 1] } },
        axes: [{ scale: "ms", side: 1, stroke: "#d97706", grid: { show: false }, size: 60, values: (u, v) => v.map(fmtMs) }],
      });
      charts.commits.box.dataset.epochs = String(cm.length);
      charts.commits.now.textContent = cm.length ? `epoch ${cm[cm.length - 1].epoch}` : "";
      commitCount.textContent = `· ${c.epochs_committed} this run`;
      commitBody.replaceChildren(...cm.slice(-8).reverse().map((x) => el("tr", {},
        el("td", { class: "num" }, x.epoch), el("td", { class: "num" }, fmtTime(x.at_ms)),
        el("td", { class: "r num" }, fmtNum(x.rows, 0)), el("td", { class: "r num" }, fmtMs(x.latency_ms)),
        el("td", { class: "r num" }, fmtNum(x.table_rows)))));
      if (!cm.length) commitBody.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no commit yet")));

      // The watermark against wall clock: how far behind it is, sample by
      // sample (flat: it keeps pace; rising: event time falls behind).
      const behind = h.watermark_ms.map((v, i) => (v === null ? null : h.t[i] - v / 1000));
      const hasWm = behind.some((v) => v !== null);
      draw(charts.watermark, h.t, hasWm ? [{ label: "behind wall clock", values: behind, color: "#2563eb", noFill: true,
        value: (u, v) => (v === null ? "–" : fmtDuration(v * 1000) + (v < 0 ? " ahead" : " behind")) }] : [], {
        empty: "no watermark yet", ySize: 84,
        yScale: { auto: true, range: (u, min, max) => { const pad = Math.max(1, (max - min) * 0.1); return [min - pad, max + pad]; } },
        yValues: (u, vals) => vals.map((v) => (v < 0 ? "−" : "") + fmtDuration(Math.abs(v) * 1000)),
      });
      charts.watermark.now.textContent = c.watermark_ms === null ? "" : wmRel.replace(" wall clock", "").replace(" of", "");

      letterBody.replaceChildren(...c.dead_letters.map((l) => el("li", {},
        el("div", { class: "why" }, l.reason),
        el("div", { class: "where" }, `epoch ${l.epoch} · ${l.stage}${l.position ? " · " + l.position : ""}`),
        l.record ? el("div", { class: "rec mono", title: l.record }, l.record) : null)));
      if (!c.dead_letters.length) letterBody.append(el("li", { class: "muted" }, "no dead letters"));
      letterNote.textContent = c.dead_letter_dir ? `Latest ${c.dead_letters.length} from ${c.dead_letter_dir} (visible once their epoch commits).`
        : "This pipeline has no dead-letter output (errors.policy is not dead-letter).";
      const text = JSON.stringify(c.config, null, 2);
      if (configPre.textContent !== text) configPre.textContent = text;
    });
    const stop = stopPolling.stop;
    page.stop = () => { stop(); observer.disconnect(); Object.values(charts).forEach((c) => c.plot && c.plot.destroy()); };
    return page;
  }

  // ---- the config form

  // Templates for a new connector: paths resolve against the worker's --data.
  const TEMPLATES = {
    "generator → JSON lines": (name) => ({
      source: { type: "generator", records: 0, rate_per_sec: 500 },
      transforms: [
        { name: "watermark", module: "builtin:watermark", config: { event_time: "published_at", delay: "2 hours" } },
        { name: "dedup", module: "builtin:dedup", config: { key: "id", event_time: "published_at", within: "2 hours" } },
      ],
      sink: { type: "jsonl", path: `out/${name}` },
      checkpoint: { location: `chk/${name}` },
      trigger: { interval_ms: 1000, max_records_per_epoch: 20000, batch_size: 500 },
      errors: { policy: "dead-letter", late_to_dead_letter: true },
    }),
    "generator → Iceberg": (name) => ({
      source: { type: "generator", records: 0, rate_per_sec: 500 },
      transforms: [
        { name: "watermark", module: "builtin:watermark", config: { event_time: "published_at", delay: "2 hours" } },
        { name: "dedup", module: "builtin:dedup", config: { key: "id", event_time: "published_at", within: "2 hours" } },
      ],
      sink: { type: "iceberg", catalog_uri: "sqlite:warehouse/catalog.db", warehouse: "warehouse", table: `demo.${name.replace(/[^A-Za-z0-9_]/g, "_")}` },
      checkpoint: { location: `chk/${name}` },
      trigger: { interval_ms: 2000, max_records_per_epoch: 50000, batch_size: 1000 },
      errors: { policy: "dead-letter", late_to_dead_letter: true },
    }),
    "Kafka (Avro) → Iceberg": (name) => ({
      source: { type: "kafka", bootstrap_servers: "localhost:9092", topics: ["articles.raw.v1"], format: "avro",
        schema_registry_url: "http://localhost:8081", start: "earliest" },
      transforms: [
        { name: "watermark", module: "builtin:watermark", config: { event_time: "published_at", delay: "2 hours" } },
        { name: "dedup", module: "builtin:dedup", config: { key: "id", event_time: "published_at", within: "2 hours" } },
      ],
      sink: { type: "iceberg", catalog_uri: "sqlite:warehouse/catalog.db", warehouse: "warehouse", table: `demo.${name.replace(/[^A-Za-z0-9_]/g, "_")}` },
      checkpoint: { location: `chk/${name}` },
      errors: { policy: "dead-letter" },
    }),
  };

  // A JSON value as nested fieldsets of key/value rows; every row and
  // fieldset carries its path (`trigger.interval_ms`, `transforms[0]`), the
  // one /ui/api/check names in its errors.
  function buildTree(value, path, container) {
    const join = (k) => (path ? `${path}.${k}` : k);
    if (Array.isArray(value)) {
      value.forEach((item, i) => container.append(node(`${path}[${i}]`, null, item, true)));
      container.append(el("button", { type: "button", class: "link add", onclick: (ev) => {
        const items = container.querySelectorAll(":scope > fieldset, :scope > .row").length;
        const sample = value.length && typeof value[0] === "object" ? {} : "";
        ev.currentTarget.before(node(`${path}[${items}]`, null, sample, true));
      } }, "+ item"));
      return;
    }
    for (const [k, v] of Object.entries(value)) container.append(node(join(k), k, v, false));
    container.append(el("button", { type: "button", class: "link add", onclick: (ev) => {
      const row = leafRow(join(""), "", "", "auto", false);
      ev.currentTarget.before(row);
      row.querySelector("input.key").focus();
    } }, "+ field"));
  }

  function removeButton(target) {
    return el("button", { type: "button", class: "x", title: "remove", onclick: () => target().remove() }, "×");
  }

  function node(path, key, value, inArray) {
    if (value !== null && typeof value === "object" && !(Array.isArray(value) && value.every((x) => x === null || typeof x !== "object"))) {
      const fs = el("fieldset", { dataset: { path, kind: Array.isArray(value) ? "array" : "object", ...(key !== null ? { key } : {}) } });
      const legend = el("legend", {}, key !== null ? key : path.replace(/^.*(\[\d+\])$/, "$1"));
      if (key !== null || inArray) legend.append(removeButton(() => fs));
      fs.append(legend);
      buildTree(value, path, fs);
      return fs;
    }
    const kind = Array.isArray(value) ? "json" : value === null ? "null" : typeof value;
    const text = kind === "string" ? value : JSON.stringify(value);
    return leafRow(path, key, text, kind, inArray);
  }

  function leafRow(path, key, text, kind, inArray) {
    const row = el("div", { class: "row", dataset: { path, kind } });
    const keyInput = inArray
      ? el("span", { class: "muted mono" }, path.replace(/^.*(\[\d+\])$/, "$1"))
      : el("input", { type: "text", class: "key", value: key, "aria-label": "field name", spellcheck: "false" });
    const valueInput = el("input", { type: "text", class: "value" + (kind === "string" ? "" : " mono"), value: text, "aria-label": `${path} value`, spellcheck: "false" });
    row.append(keyInput, valueInput, removeButton(() => row));
    return row;
  }

  // Reads the form back into a JSON value.
  function readTree(container) {
    const kind = container.dataset.kind;
    if (kind === "array") {
      return [...container.children].filter((c) => c.matches("fieldset, .row")).map(readNode);
    }
    const out = {};
    for (const child of container.children) {
      if (child.matches("fieldset")) out[child.dataset.key] = readNode(child);
      else if (child.matches(".row")) {
        const k = child.querySelector("input.key").value.trim();
        if (k) out[k] = readNode(child);
      }
    }
    return out;
  }

  function readNode(n) {
    if (n.matches("fieldset")) return readTree(n);
    const text = n.querySelector("input.value").value;
    switch (n.dataset.kind) {
      case "string": return text;
      default: {
        // Numbers, booleans, null and lists as JSON (a new field's value
        // too, when it reads as one); what does not parse goes as a
        // string, for the worker to explain.
        if (n.dataset.kind === "auto" && !/^\s*(-?\d|true$|false$|null$|\[|\{)/.test(text)) return text;
        try { return JSON.parse(text); } catch { return text; }
      }
    }
  }

  // Renames the paths of a fieldset's rows after a key was edited, so the
  // errors of the next check land where the field now is.
  function repath(container, path) {
    const join = (k) => (path ? `${path}.${k}` : k);
    let i = 0;
    for (const child of container.children) {
      if (!child.matches("fieldset, .row")) continue;
      let p;
      if (container.dataset.kind === "array") p = `${path}[${i++}]`;
      else if (child.matches("fieldset")) p = join(child.dataset.key);
      else p = join(child.querySelector("input.key").value.trim());
      child.dataset.path = p;
      if (child.matches("fieldset")) repath(child, p);
    }
  }

  function formPage(name) {
    const isNew = name === null;
    crumbs(isNew ? [{ text: "Connectors", href: "#/" }, { text: "New connector" }]
      : [{ text: "Connectors", href: "#/" }, { text: name, href: "#/c/" + enc(name) }, { text: "Edit config" }]);
    const page = { stop() {} };
    const nameInput = el("input", { type: "text", id: "name", value: name || "", disabled: !isNew, spellcheck: "false", placeholder: "articles" });
    const nameRow = el("div", { class: "row name-row", dataset: { path: "name", kind: "string" } });
    const template = el("select", { id: "template" }, Object.keys(TEMPLATES).map((t) => el("option", { value: t }, t)));
    const tree = el("fieldset", { id: "config-form", dataset: { path: "", kind: "object" } }, el("legend", {}, "config"));
    const formErrors = el("div", { class: "form-errors", id: "form-errors" });
    const status = el("span", { class: "status", id: "form-status" });
    const save = el("button", { class: "primary", type: "submit", id: "save" }, isNew ? "Create" : "Save");
    const validate = el("button", { type: "button", id: "validate" }, "Check");
    const fill = (config) => {
      tree.replaceChildren(el("legend", {}, "config"));
      const c = { ...config };
      delete c.name;
      buildTree(c, "", tree);
    };
    let shown = false; // errors are on screen: check again on every change

    function clearErrors() {
      main.querySelectorAll(".field-error").forEach((e) => e.remove());
      main.querySelectorAll(".has-error").forEach((e) => e.classList.remove("has-error"));
      formErrors.replaceChildren();
    }

    function showErrors(errors) {
      clearErrors();
      repath(tree, "");
      for (const e of errors) {
        const target = e.field === "name" ? nameRow : e.field ? tree.querySelector(`[data-path="${CSS.escape(e.field)}"]`) : null;
        const note = el("div", { class: "field-error", dataset: { field: e.field || "" } }, e.message);
        if (target && target.matches("fieldset")) {
          target.classList.add("has-error");
          target.querySelector(":scope > legend").after(note);
        } else if (target) {
          target.classList.add("has-error");
          target.after(note);
        } else {
          formErrors.append(note);
        }
      }
      shown = errors.length > 0;
    }

    const collect = () => ({ name: nameInput.value.trim(), config: { name: nameInput.value.trim(), ...readTree(tree) } });

    async function check() {
      const { name: n, config } = collect();
      const res = await api("POST", "/ui/api/check", { name: n, config, new: isNew });
      showErrors(res.errors);
      return res.errors.length === 0;
    }

    let debounce = null;
    const onChange = () => {
      if (!shown) return;
      clearTimeout(debounce);
      debounce = setTimeout(() => check().then((ok) => { status.textContent = ok ? "No problems found." : ""; status.className = "status" + (ok ? " ok" : ""); }).catch(() => {}), 400);
    };

    const submit = async (ev) => {
      ev.preventDefault();
      status.textContent = "Checking…";
      status.className = "status";
      save.disabled = true;
      try {
        if (!(await check())) { status.textContent = "Fix the fields marked in red."; return; }
        const { name: n, config } = collect();
        if (isNew) await api("POST", "/connectors", { name: n, config });
        else await api("PUT", `/connectors/${enc(n)}/config`, config);
        toast(isNew ? `${n} created` : `${n} saved; it restarts from its last commit`);
        location.hash = "#/c/" + enc(n);
      } catch (e) {
        if (e instanceof Unauthorized) { loginPage(); return; }
        status.textContent = "";
        formErrors.replaceChildren(el("div", { class: "field-error" }, e.message));
      } finally {
        save.disabled = false;
      }
    };

    nameRow.append(el("label", { class: "k", for: "name" }, "Connector name"), nameInput, el("span"));
    const head = el("div", {}, nameRow);
    if (isNew) {
      head.append(el("div", { class: "row template-row" }, el("label", { class: "k", for: "template" }, "Start from"), template, el("span")));
      // The template's paths carry the name: filled again when the name
      // changes, until the config itself was edited.
      let edited = false;
      let filledFor = null;
      const refill = (force) => {
        const n = nameInput.value.trim() || "my-connector";
        if (!force && (edited || n === filledFor)) return;
        filledFor = n;
        edited = false;
        fill(TEMPLATES[template.value](n));
      };
      tree.addEventListener("input", () => (edited = true));
      tree.addEventListener("click", (ev) => { if (ev.target.closest(".x, .add")) edited = true; });
      template.addEventListener("change", () => refill(true));
      nameInput.addEventListener("change", () => refill(false));
      refill(true);
    }
    const form = el("form", { class: "card", id: "connector-form", onsubmit: submit, oninput: onChange },
      el("div", { class: "page-head" }, el("h1", {}, isNew ? "New connector" : `Edit ${name}`),
        el("span", { class: "sub" }, "A pipeline: docs/pipeline.md. Relative paths resolve against the worker's --data folder.")),
      head, formErrors, tree,
      el("div", { class: "form-actions" }, save, validate, el("button", { type: "button", onclick: () => history.back() }, "Cancel"), status));
    validate.addEventListener("click", async () => {
      try {
        const ok = await check();
        status.textContent = ok ? "No problems found." : "Fix the fields marked in red.";
        status.className = "status" + (ok ? " ok" : "");
      } catch (e) { if (e instanceof Unauthorized) loginPage(); else toast(e.message, true); }
    });
    main.append(form);
    if (!isNew) {
      api("GET", `/connectors/${enc(name)}/config`).then(fill).catch((e) => {
        if (e instanceof Unauthorized) loginPage(); else formErrors.replaceChildren(el("div", { class: "field-error" }, e.message));
      });
    }
    return page;
  }

  window.addEventListener("hashchange", show);
  show();
})();
