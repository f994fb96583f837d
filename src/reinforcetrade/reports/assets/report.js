// ReinforceTrade report: unpacks the embedded data, draws the charts, runs the decision log.
// Everything is in this file: plotly.js and the data are embedded gzipped; nothing is fetched.
"use strict";
(function () {
  const TYPES = { i1: Int8Array, u1: Uint8Array, i2: Int16Array, u2: Uint16Array,
                  i4: Int32Array, u4: Uint32Array, f4: Float32Array, f8: Float64Array };
  const PAGE = 200;
  const DETAIL_BARS = 150;
  const status = document.getElementById("status");
  const state = { charts: 0, data: null, rows: null, page: 0, selected: -1 };
  window.report = state;

  function fail(error) {
    status.textContent = "Report error: " + (error && error.message ? error.message : error);
    status.classList.add("error");
    console.error(error);
  }

  async function gunzip(b64) {
    const text = atob(b64.trim());
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer();
  }

  async function loadPlotly() {
    const code = new TextDecoder().decode(await gunzip(document.getElementById("plotly-gz").textContent));
    const script = document.createElement("script");
    script.textContent = code;
    document.head.appendChild(script);
    if (!window.Plotly) throw new Error("plotly.js did not load");
  }

  function isPacked(node) {
    return node && typeof node === "object" && typeof node.data === "string" && node.dtype in TYPES;
  }

  async function unpack(node) {
    if (isPacked(node)) {
      const values = new TYPES[node.dtype](await gunzip(node.data));
      if (node.delta) for (let i = 1; i < values.length; i++) values[i] += values[i - 1];  // wraps like numpy
      return values;
    }
    if (node && node.kind === "prices") return prices(node);
    if (Array.isArray(node)) return Promise.all(node.map(unpack));
    if (node && typeof node === "object") {
      const out = {};
      await Promise.all(Object.keys(node).map(async (k) => { out[k] = await unpack(node[k]); }));
      return out;
    }
    return node;
  }

  // keyframe every `keyframe` bars, then integer steps of log price: exact running sums
  async function prices(node) {
    const keys = await unpack(node.keys), steps = await unpack(node.steps), missing = await unpack(node.missing);
    const out = new Float64Array(steps.length);
    let level = 0;
    for (let i = 0; i < steps.length; i++) {
      level = i % node.keyframe === 0 ? 0 : level + steps[i];
      out[i] = keys[Math.floor(i / node.keyframe)] * Math.exp(level * node.step);
    }
    for (const i of missing) out[i] = NaN;
    return out;
  }

  function cumsum(values, scale) {
    const out = new Float64Array(values.length);
    let total = 0;
    for (let i = 0; i < values.length; i++) { total += values[i]; out[i] = total * scale; }
    return out;
  }

  // --- charts -----------------------------------------------------------------------------------
  const LAYOUT = { margin: { l: 56, r: 16, t: 32, b: 32 }, hovermode: "x unified",
                   legend: { orientation: "h", y: 1.12 }, font: { size: 11 } };
  const CONFIG = { displaylogo: false, responsive: true };

  async function plot(id, traces, layout) {
    const element = document.getElementById(id);
    if (!element) return;
    const started = performance.now();
    await Plotly.newPlot(element, traces, Object.assign({}, LAYOUT, layout), CONFIG);
    if (state.timings) state.timings[id] = Math.round(performance.now() - started);
    element.dataset.drawn = "1";
    state.charts += 1;
    return element;
  }

  const line = (s, name, extra) => Object.assign({ x: s.x, y: s.y, name: name, type: "scatter",
    mode: "lines" }, extra || {});
  const timeAxis = { type: "date" };
  const hline = (y, color, dash, label) => ({ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y,
    line: { color: color, dash: dash || "dash", width: 1 }, label: label ? { text: label, font: { size: 10 } } : undefined });

  async function drawPerformance(d) {
    const o = d.overview;
    await plot("chart-equity", [line(o.equity, "strategy", { line: { color: "#2458d6" } }),
      line(o.buy_and_hold, "buy and hold", { line: { color: "#9aa3b5" } })],
      { title: { text: "Equity vs buy-and-hold" }, xaxis: timeAxis, yaxis: { title: { text: "equity" } } });
    await plot("chart-drawdown", [line(o.drawdown, "drawdown", { fill: "tozeroy", type: "scatter",
      line: { color: "#c23b3b" }, y: Float64Array.from(o.drawdown.y, (v) => -v) })],
      { title: { text: "Drawdown (underwater)" }, xaxis: timeAxis, yaxis: { tickformat: ".0%" } });
    await plot("chart-rolling-sharpe", [line(o.rolling_sharpe, "rolling Sharpe")],
      { title: { text: "Rolling Sharpe (" + o.rolling_window + " bars)" }, xaxis: timeAxis,
        shapes: [hline(0, "#999", "dot")] });
    const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const years = o.monthly.years;
    const z = years.map((_, r) => Array.from(o.monthly.values.slice(r * 12, r * 12 + 12), (v) => (Number.isNaN(v) ? null : v)));
    await plot("chart-monthly", [{ type: "heatmap", x: months, y: years.map(String), z: z, zmid: 0,
      colorscale: [[0, "#c23b3b"], [0.5, "#ffffff"], [1, "#1a8f4c"]], hoverongaps: false,
      texttemplate: years.length <= 30 ? "%{z:.1%}" : "", hovertemplate: "%{y} %{x}: %{z:.2%}<extra></extra>" }],
      { title: { text: "Monthly returns" }, hovermode: "closest", yaxis: { type: "category", autorange: "reversed" } });
    const L = d.limits;
    const exposure = Object.keys(o.exposure.per_symbol).map((s) => line(o.exposure.per_symbol[s], s));
    exposure.push(line(o.exposure.total, "total (gross)", { line: { color: "#1d2330", width: 2 } }));
    const shapes = [];
    if (L.max_symbol_exposure != null) {
      shapes.push(hline(L.max_symbol_exposure, "#c2843b", "dash", "per-symbol cap"));
      shapes.push(hline(-L.max_symbol_exposure, "#c2843b", "dash"));
    }
    if (L.max_total_exposure != null) shapes.push(hline(L.max_total_exposure, "#c23b3b", "dot", "total cap"));
    await plot("chart-exposure", exposure, { title: { text: "Exposure (fraction of equity) and risk limits" },
      xaxis: timeAxis, yaxis: { tickformat: ".0%" }, shapes: shapes });
  }

  async function drawTrades(d) {
    const o = d.overview;
    if (!o.trade_returns.length) return;
    await plot("chart-trade-pnl", [{ type: "histogram", x: Array.from(o.trade_returns), nbinsx: 60,
      marker: { color: "#2458d6" }, name: "trades" }],
      { title: { text: "Trade returns" }, xaxis: { tickformat: ".1%" }, hovermode: "closest", bargap: 0.02 });
    await plot("chart-trade-duration", [{ type: "histogram", x: Array.from(o.trade_durations_hours),
      nbinsx: 60, marker: { color: "#5b6475" }, name: "trades" }],
      { title: { text: "Trade duration (hours)" }, hovermode: "closest", bargap: 0.02 });
    const reasons = Object.keys(o.exit_reasons);
    await plot("chart-exit-reasons", [{ type: "bar", x: reasons, y: reasons.map((r) => o.exit_reasons[r]),
      marker: { color: "#9aa3b5" } }], { title: { text: "Exit reasons" }, hovermode: "closest" });
  }

  async function drawSymbols(d) {
    const symbols = d.summary.symbols;
    for (let i = 0; i < symbols.length; i++) {
      const s = d.symbols[symbols[i]];
      const marks = [["enter_long", "entry long", "triangle-up", "#1a8f4c"],
                     ["enter_short", "entry short", "triangle-down", "#c23b3b"],
                     ["exit", "exit", "x", "#1d2330"]].map(([key, name, symbol, color]) => ({
        x: s.marks[key].at.x, y: s.marks[key].at.y,
        customdata: Array.from(s.marks[key].id), name: name, type: s.marks[key].id.length > 1000 ? "scattergl" : "scatter", mode: "markers",
        marker: { symbol: symbol, color: color, size: 8 }, hovertemplate: name + " · decision %{customdata}<extra></extra>" }));
      const chart = await plot("chart-price-" + i, [line(s.price, "close", { line: { color: "#5b6475" } }), ...marks],
        { title: { text: symbols[i] + ": price, entries and exits" }, xaxis: timeAxis, hovermode: "closest" });
      if (chart) chart.on("plotly_click", (event) => {
        const p = event.points && event.points[0];
        if (p && p.customdata !== undefined) openDecision(Number(p.customdata));
      });
      if (!document.getElementById("chart-agents-" + i)) continue;
      const traces = Object.keys(s.agents).map((a) => line(s.agents[a], a, { line: { width: 1 } }));
      traces.push(line(s.vote, "tower", { line: { color: "#1d2330", width: 2 } }));
      traces.push(line(s.threshold, "entry threshold", { line: { color: "#c2843b", dash: "dash", width: 1 } }));
      traces.push(line(s.threshold, "−threshold", { y: Float32Array.from(s.threshold.y, (v) => -v),
        line: { color: "#c2843b", dash: "dash", width: 1 }, showlegend: false }));
      await plot("chart-agents-" + i, traces, { title: { text: symbols[i] + ": agents' signal × confidence and the tower" },
        xaxis: timeAxis, yaxis: { range: [-1.05, 1.05] } });
    }
  }

  async function drawSegments(d) {
    if (!d.segments.length) return;
    await plot("chart-segments", d.segments.map((s) => line(s.equity, s.name)),
      { title: { text: "Equity by segment (each starts at 1)" }, xaxis: timeAxis });
  }

  // --- decision log -----------------------------------------------------------------------------
  function decisionTable(d) {
    const log = d.decisions;
    const c = log.columns;
    const n = log.count;
    const ids = cumsum(c.id, 1);
    const times = cumsum(c.time, 1000);
    const rows = { n: n, ids: ids, times: times, c: c, labels: log.labels, agents: log.agents, index: new Map() };
    for (let i = 0; i < n; i++) rows.index.set(ids[i], i);
    return rows;
  }

  const pct = (q) => (q === 65535 ? "—" : (q / 100).toFixed(2) + "%");
  const num = (v, digits) => (Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: digits }) : "—");
  const iso = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
  const label = (rows, name, i) => (rows.labels[name] ? rows.labels[name][rows.c[name][i]] : "");

  function headers(rows) {
    const cols = ["id", "time", "symbol", "action", "dir", "confidence", "threshold", "agree", "regime"];
    for (const a of rows.agents) cols.push(a + " sig", a + " conf", a + " wt");
    cols.push("size", "qty", "stop", "take profit", "reasons");
    return cols;
  }

  function cells(rows, i) {
    const c = rows.c;
    const out = [rows.ids[i], iso(rows.times[i]), label(rows, "symbol", i), label(rows, "action", i),
      c.direction[i], pct(c.confidence[i]), c.threshold ? pct(c.threshold[i]) : "—",
      c.agreeing ? c.agreeing[i] : "—", label(rows, "regime", i)];
    for (const a of rows.agents) out.push(c["signal_" + a][i], pct(c["confidence_" + a][i]), pct(c["weight_" + a][i]));
    out.push(c.size ? pct(Math.round(c.size[i] * 10000)) : "—", c.qty ? num(c.qty[i], 6) : "—",
      c.stop ? num(c.stop[i], 6) : "—", c.take_profit ? num(c.take_profit[i], 6) : "—", label(rows, "reasons", i));
    return out;
  }

  function filterRows(rows) {
    const text = document.getElementById("decision-search").value.trim().toLowerCase();
    const action = document.getElementById("decision-action").value;
    const symbol = document.getElementById("decision-symbol").value;
    const want = (name, value) => (value === "" ? null : rows.labels[name].indexOf(value));
    const wantAction = want("action", action);
    const wantSymbol = want("symbol", symbol);
    const hit = {};
    for (const name of ["action", "symbol", "regime", "reasons", "exit_reason"]) {
      if (!rows.labels[name]) continue;
      hit[name] = rows.labels[name].map((w) => text === "" || w.toLowerCase().includes(text));
    }
    const out = new Int32Array(rows.n);
    let k = 0;
    for (let i = 0; i < rows.n; i++) {
      if (wantAction !== null && rows.c.action[i] !== wantAction) continue;
      if (wantSymbol !== null && rows.c.symbol[i] !== wantSymbol) continue;
      if (text !== "") {
        let any = String(rows.ids[i]) === text;
        for (const name in hit) if (hit[name][rows.c[name][i]]) { any = true; break; }
        if (!any) continue;
      }
      out[k++] = i;
    }
    state.matches = out.subarray(0, k);
    state.page = 0;
    renderPage(rows);
  }

  function renderPage(rows) {
    const m = state.matches;
    const pages = Math.max(1, Math.ceil(m.length / PAGE));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    const body = document.querySelector("#decision-table tbody");
    const html = [];
    for (let k = state.page * PAGE; k < Math.min(m.length, (state.page + 1) * PAGE); k++) {
      const i = m[k];
      const values = cells(rows, i);
      const action = label(rows, "action", i);
      html.push("<tr data-row='" + i + "' class='" + (i === state.selected ? "selected" : "") + "'>" +
        values.map((v, j) => "<td" + (j === 3 ? " class='a-" + action + "'" : j === values.length - 1 ? " class='reasons'" : "") + ">" +
          String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;") + "</td>").join("") + "</tr>");
    }
    body.innerHTML = html.join("");
    document.getElementById("decision-count").textContent = m.length.toLocaleString("en-US") + " of " + rows.n.toLocaleString("en-US") + " decisions";
    document.getElementById("decision-page").textContent = "page " + (state.page + 1) + " / " + pages;
  }

  function setupDecisions(d) {
    const rows = decisionTable(d);
    state.rows = rows;
    document.querySelector("#decision-table thead").innerHTML = "<tr>" + headers(rows).map((h) => "<th>" + h + "</th>").join("") + "</tr>";
    for (const [id, name] of [["decision-action", "action"], ["decision-symbol", "symbol"]]) {
      const select = document.getElementById(id);
      for (const value of rows.labels[name] || []) {
        const option = document.createElement("option");
        option.value = value; option.textContent = value;
        select.appendChild(option);
      }
      select.addEventListener("change", () => filterRows(rows));
    }
    let timer = null;
    document.getElementById("decision-search").addEventListener("input", () => {
      clearTimeout(timer); timer = setTimeout(() => filterRows(rows), 150);
    });
    document.getElementById("decision-prev").addEventListener("click", () => { state.page -= 1; renderPage(rows); });
    document.getElementById("decision-next").addEventListener("click", () => { state.page += 1; renderPage(rows); });
    document.querySelector("#decision-table tbody").addEventListener("click", (event) => {
      const tr = event.target.closest("tr[data-row]");
      if (tr) showDecision(Number(tr.dataset.row));
    });
    for (const button of document.querySelectorAll("[data-decision]")) {
      button.addEventListener("click", () => openDecision(Number(button.dataset.decision)));
    }
    filterRows(rows);
  }

  function openDecision(id) {
    const rows = state.rows;
    const i = rows.index.get(id);
    if (i === undefined) return;
    let k = state.matches.indexOf(i);
    if (k < 0) {
      document.getElementById("decision-search").value = "";
      document.getElementById("decision-action").value = "";
      document.getElementById("decision-symbol").value = "";
      filterRows(rows);
      k = state.matches.indexOf(i);
    }
    state.page = Math.floor(k / PAGE);
    state.selected = i;
    renderPage(rows);
    showDecision(i);
    document.getElementById("decisions").scrollIntoView();
  }

  async function showDecision(i) {
    const rows = state.rows;
    state.selected = i;
    for (const tr of document.querySelectorAll("#decision-table tr.selected")) tr.classList.remove("selected");
    const tr = document.querySelector("#decision-table tr[data-row='" + i + "']");
    if (tr) tr.classList.add("selected");
    const symbol = label(rows, "symbol", i);
    const detail = state.data.detail[symbol];
    const box = document.getElementById("decision-detail");
    box.hidden = false;
    const record = {};
    headers(rows).forEach((h, j) => { record[h] = cells(rows, i)[j]; });
    document.getElementById("decision-record").textContent = JSON.stringify(record, null, 1);
    if (!detail) return;
    const t = rows.times[i];
    let lo = 0, hi = detail.x.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (detail.x[mid] < t) lo = mid + 1; else hi = mid; }
    const a = Math.max(0, lo - DETAIL_BARS), b = Math.min(detail.x.length, lo + DETAIL_BARS + 1);
    const x = detail.x.subarray(a, b), y = detail.y.subarray(a, b);
    const c = rows.c;
    const shapes = [{ type: "line", x0: t, x1: t, yref: "paper", y0: 0, y1: 1, line: { color: "#2458d6", dash: "dot" } }];
    if (c.stop && Number.isFinite(c.stop[i])) shapes.push(Object.assign(hline(c.stop[i], "#c23b3b", "dash", "stop"), { xref: "x", x0: t, x1: x[x.length - 1] }));
    if (c.take_profit && Number.isFinite(c.take_profit[i])) shapes.push(Object.assign(hline(c.take_profit[i], "#1a8f4c", "dash", "take profit"), { xref: "x", x0: t, x1: x[x.length - 1] }));
    const traces = [{ x: x, y: y, type: "scatter", mode: "lines", name: "close", line: { color: "#5b6475" } },
      { x: [t], y: [y[Math.min(lo - a, y.length - 1)]], type: "scatter", mode: "markers", name: label(rows, "action", i),
        marker: { size: 12, color: "#2458d6", symbol: "diamond" } }];
    await plot("chart-detail", traces, { title: { text: "Decision " + rows.ids[i] + ": " + label(rows, "action", i) +
      " " + symbol + " at " + iso(t) }, xaxis: timeAxis, shapes: shapes, hovermode: "closest" });
    state.charts -= 1; // the detail chart is not one of the report's charts
  }

  async function main() {
    try {
      const mark = (name) => { state.timings[name] = Math.round(performance.now()); };
      state.timings = {};
      mark("start");
      const packed = JSON.parse(document.getElementById("report-data").textContent);
      const decoding = unpack(packed);  // gunzips off the main thread while plotly.js starts
      await loadPlotly();
      mark("plotly");
      const data = await decoding;
      for (const s of Object.keys(data.detail)) data.detail[s].x = cumsum(data.detail[s].x, 1000);
      state.data = data;
      mark("data");
      setupDecisions(data);
      mark("decisions");
      await drawPerformance(data);
      await drawTrades(data);
      await drawSymbols(data);
      await drawSegments(data);
      mark("charts");
      status.textContent = state.charts + " charts · " + data.decisions.count.toLocaleString("en-US") + " decisions";
      document.body.dataset.ready = "true";
    } catch (error) {
      fail(error);
    }
  }
  main();
})();
