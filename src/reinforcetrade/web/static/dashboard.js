/*
 * ReinforceTrade dashboard: plain JavaScript, no build step (docs/web.md).
 *
 * Log in (the token lives in this page's memory only), read the REST views, then follow the
 * WebSocket stream (a fresh one-time ticket for every connection, reconnecting with backoff).
 * Every value shown is inserted as text (textContent), never as HTML.
 */
(() => {
  "use strict";

  const API = "/api/v1";
  const LIST = 20; // decisions and trades shown
  const MAX_POINTS = 20000; // equity points kept in the chart
  const ROLES = { e: "entry", x: "exit", s: "stop", t: "take-profit" };
  const CONTROLS = {
    start: { title: "Start the engine?", text: "Starts a new trading session.", tone: "primary" },
    stop: {
      title: "Stop the engine?",
      text: "The engine stops after the bar in hand; the open-order policy applies.",
      tone: "danger",
    },
    pause: {
      title: "Pause new entries?",
      text: "No new positions are opened; exits, stops and take-profits go on.",
      tone: "warn",
    },
    unpause: { title: "Allow new entries again?", text: "The engine may open positions again.", tone: "primary" },
    flatten: {
      title: "Flatten positions?",
      text: "Closes the position at market on the next bar.",
      tone: "danger",
    },
    "lift-halt": {
      title: "Lift the risk halt?",
      text: "Recorded as a resume; the drawdown peak restarts at the current equity.",
      tone: "danger",
      reasonRequired: true,
    },
  };

  const $ = (selector) => document.querySelector(selector);
  const $$ = (selector) => Array.from(document.querySelectorAll(selector));

  const fresh = () => ({
    engine: null,
    runId: null,
    account: { equity: null, cash: null, exposure: null, peak: null, start: null, opening: null },
    equity: [], // {t: ms, equity, drawdown}
    decisions: [],
    alerts: [],
    positionsKey: "",
    riskState: null,
  });

  let token = null; // in memory only: never stored, never in a URL
  let view = fresh();
  const stream = { socket: null, retries: 0, timer: null, refreshTimer: null, chartTimer: null };
  let statusTimer = null;
  let pendingAction = null;

  // -- formatting -------------------------------------------------------------------------
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const fixed = (v, digits) =>
    v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

  function decimal(v, digits) {
    return isNum(v) ? fixed(v, digits) : "—";
  }

  function money(v) {
    return decimal(v, 2);
  }

  function signed(v, digits = 2) {
    if (!isNum(v)) return "—";
    const text = fixed(Math.abs(v), digits);
    if (Number(text.replace(/,/g, "")) === 0) return fixed(0, digits);
    return (v > 0 ? "+" : "\u2212") + text;
  }

  function tone(v) {
    if (!isNum(v) || Math.abs(v) < 0.005) return "";
    return v > 0 ? "pos" : "neg";
  }

  function price(v) {
    if (!isNum(v)) return "—";
    const a = Math.abs(v);
    if (a >= 1000) return fixed(v, 2);
    if (a >= 1) return fixed(v, 4);
    return v.toPrecision(6);
  }

  function qty(v) {
    if (!isNum(v)) return "—";
    return v.toLocaleString("en-US", { maximumFractionDigits: Math.abs(v) >= 100 ? 2 : 6 });
  }

  function pct(v, digits = 2) {
    return isNum(v) ? `${fixed(v * 100, digits)}%` : "—";
  }

  function signedPct(v) {
    return isNum(v) ? `${signed(v * 100)}%` : "—";
  }

  /** Milliseconds since the epoch of an ISO string or a number of s, ms or ns. */
  function toMs(v) {
    if (v === null || v === undefined || v === "") return null;
    if (typeof v === "number") {
      if (v > 1e17) return v / 1e6; // nanoseconds
      if (v > 1e11) return v; // milliseconds
      return v * 1000; // seconds
    }
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? null : ms;
  }

  /** "2020-02-16 06:00" in UTC. */
  function when(v, seconds = false) {
    const ms = toMs(v);
    if (ms === null) return "—";
    const iso = new Date(ms).toISOString();
    return `${iso.slice(0, 10)} ${iso.slice(11, seconds ? 19 : 16)}`;
  }

  const humanise = (key) => String(key).replace(/_/g, " ");

  // -- DOM helpers --------------------------------------------------------------------------
  /** An element with attributes and children (strings become text nodes). */
  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(selector, text, className) {
    const node = $(selector);
    node.textContent = text;
    if (className !== undefined) node.className = className;
  }

  function fillFacts(list, facts) {
    list.replaceChildren(
      ...facts.flatMap(([term, value, className]) => [
        h("dt", { text: term }),
        h("dd", { text: value, className }),
      ]),
    );
  }

  /** Replace a table's body with one row per item; `cells` returns [text, className?, title?]. */
  function fillTable(id, items, cells, key) {
    const body = $(`#${id} tbody`);
    const before = new Set($$(`#${id} tbody tr`).map((row) => row.dataset.key));
    body.replaceChildren(
      ...items.map((item) => {
        const row = h("tr", { dataset: { key: key(item) } });
        for (const [text, className, title] of cells(item)) row.append(h("td", { text, className, title }));
        if (before.size && !before.has(row.dataset.key)) row.classList.add("flash");
        return row;
      }),
    );
    $(`[data-empty-for="${id}"]`).hidden = items.length > 0;
  }

  function say(selector, text, kind) {
    const node = $(selector);
    node.textContent = text;
    node.className = `message ${kind}`;
    node.hidden = !text;
  }

  // -- the API ------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, detail, retryAfter) {
      super(detail);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  class SessionEnded extends Error {}

  function detailOf(body, response) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => (d && d.msg) || String(d)).join("; ");
    return `${response.status} ${response.statusText}`.trim();
  }

  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "cannot reach the server");
    }
    const data = await response.json().catch(() => null);
    if (response.status === 401 && token) {
      endSession("Your session has ended: log in again.");
      throw new SessionEnded();
    }
    if (!response.ok) {
      throw new ApiError(response.status, detailOf(data, response), response.headers.get("Retry-After"));
    }
    return data;
  }

  /** Read a view; a 404 (no run yet) reads as `empty`, other failures show in the banner. */
  async function read(path, empty) {
    try {
      const data = await api(path);
      banner("");
      return data;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return empty;
      if (!(error instanceof SessionEnded)) banner(`Could not load ${path}: ${error.message}`);
      throw error;
    }
  }

  function banner(text) {
    const node = $("#banner");
    node.textContent = text;
    node.hidden = !text;
  }

  // -- login --------------------------------------------------------------------------------
  async function login(event) {
    event.preventDefault();
    const button = $("#login-submit");
    const username = $("#username").value.trim();
    const password = $("#password").value;
    if (!username || !password) {
      say("#login-error", "Enter your user name and password.", "error");
      return;
    }
    button.disabled = true;
    say("#login-error", "", "error");
    try {
      const answer = await api("/auth/login", { method: "POST", body: { username, password } });
      token = answer.access_token;
      $("#password").value = "";
      showDashboard();
    } catch (error) {
      let text = `Login failed: ${error.message}`;
      if (error.status === 401) text = "Wrong user name or password.";
      if (error.status === 429) {
        const wait = Number(error.retryAfter);
        text = Number.isFinite(wait) && wait > 0
          ? `Too many failed logins: try again in ${wait} s.`
          : "Too many failed logins: try again later.";
      }
      say("#login-error", text, "error");
      $("#password").select();
    } finally {
      button.disabled = false;
    }
  }

  async function logout() {
    try {
      await api("/auth/logout", { method: "POST" });
    } catch {
      // the token is dropped below either way
    }
    endSession("You have logged out.", "info");
  }

  function showDashboard() {
    view = fresh();
    $("#login-view").hidden = true;
    $("#dashboard").hidden = false;
    $("#top-status").hidden = false;
    refreshAll();
    connect();
    clearInterval(statusTimer);
    statusTimer = setInterval(() => loadStatus().catch(() => {}), 30000);
  }

  /** Forget the token and every figure shown; back to the login form. */
  function endSession(message, kind = "error") {
    token = null;
    clearInterval(statusTimer);
    clearTimeout(stream.timer);
    clearTimeout(stream.refreshTimer);
    clearTimeout(stream.chartTimer);
    const socket = stream.socket;
    stream.socket = null;
    if (socket) socket.close(1000, "logged out");
    const dialog = $("#confirm-dialog");
    if (dialog.open) dialog.close();
    view = fresh();
    clearViews();
    $("#dashboard").hidden = true;
    $("#top-status").hidden = true;
    $("#login-view").hidden = false;
    say("#login-error", message, kind);
    $("#username").focus();
  }

  function clearViews() {
    for (const id of ["positions", "orders", "venues", "trades"]) fillTable(id, [], () => [], () => "");
    $("#venues-panel").hidden = true;
    $("#decisions").replaceChildren();
    $("#alerts").replaceChildren();
    $("[data-empty-for=decisions]").hidden = false;
    $("[data-empty-for=alerts]").hidden = false;
    $("#engine-facts").replaceChildren();
    $("#risk").replaceChildren();
    $("#risk-limits").replaceChildren();
    for (const id of ["equity", "cash", "pnl-today", "pnl-total", "return", "drawdown", "peak", "exposure", "last-bar"]) {
      setText(`#kpi-${id}`, "—");
    }
    setText("#engine-state", "—");
    say("#control-result", "", "info");
    banner("");
    const chart = $("#equity-chart");
    if (window.Plotly && chart.data) window.Plotly.purge(chart);
  }

  // -- loading the views ------------------------------------------------------------------------
  function refreshAll() {
    const jobs = [loadStatus(), loadPositions(), loadOrders(), loadVenues(), loadTrades(), loadEquity(), loadDecisions(), loadAlerts()];
    return Promise.allSettled(jobs);
  }

  /** Orders, trades and the account again, once things settle (fills come in bursts). */
  function refreshSoon() {
    clearTimeout(stream.refreshTimer);
    stream.refreshTimer = setTimeout(() => {
      Promise.allSettled([loadOrders(), loadTrades(), loadStatus()]);
    }, 300);
  }

  async function loadStatus() {
    const status = await read("/status", null);
    if (!status || !token) return;
    applyEngine(status.engine);
    applyAccount(status.account);
    applyRisk(status.risk);
    if (status.data) {
      view.account.lastBar = status.data.last_bar;
      view.account.stale = status.data.stale;
      renderAccount();
    }
  }

  async function loadPositions() {
    renderPositions(await read("/positions", []));
  }

  async function loadOrders() {
    const page = await read("/orders?status=open&limit=100", { items: [] });
    fillTable("orders", page.items, (o) => {
      const role = roleOf(o.client_order_id);
      const limit = isNum(o.price) ? o.price : o.stop_price;
      return [
        [o.symbol],
        [o.side, `side-${o.side}`],
        [role === o.type || role === "—" ? o.type : `${o.type} · ${role}`],
        [qty(o.qty), "num"],
        [isNum(limit) ? price(limit) : "market", "num"],
        [o.venue || "—", "", routeWhy(o.route)],
        [humanise(o.status)],
        [when(o.created_at).slice(5), "muted"], // month, day and time: open orders are recent
      ];
    }, (o) => String(o.id));
  }

  /** Why a routed order went where it did: each venue's all-in cost and the router's reason. */
  function routeWhy(route) {
    if (!route || !Array.isArray(route.venues)) return null;
    return route.venues
      .map((v) => `${v.venue}: ${isNum(v.all_in_bps) ? `${decimal(v.all_in_bps, 1)} bps` : "unusable"}, ${v.why}`)
      .join("\n");
  }

  /** Each venue's execution figures (a routed engine's; the panel stays hidden otherwise). */
  async function loadVenues() {
    const page = await read("/venues?limit=100", { items: [] });
    $("#venues-panel").hidden = page.items.length === 0;
    fillTable("venues", page.items, (v) => [
      [v.venue],
      [v.health, `health-${v.health}`],
      [String(v.orders), "num"],
      [String(v.fills), "num"],
      [String(v.rejects), "num"],
      [String(v.errors), "num"],
      [pct(v.reject_rate, 0), "num"],
      [pct(v.fill_ratio, 0), "num"],
      [decimal(v.slippage_bps, 1), "num"],
      [`${decimal(v.latency_p50_ms, 0)} / ${decimal(v.latency_p99_ms, 0)}`, "num"],
    ], (v) => `${v.venue}-${v.orders}-${v.health}`);
  }

  async function loadTrades() {
    const page = await read(`/trades?limit=${LIST}`, { items: [] });
    fillTable("trades", page.items, (t) => [
      [t.symbol],
      [t.side, `side-${t.side}`],
      [when(t.entry_time)],
      [t.exit_time ? when(t.exit_time) : "open"],
      [qty(t.qty), "num"],
      [price(t.entry_price), "num"],
      [price(t.exit_price), "num"],
      [signed(t.pnl), `num ${tone(t.pnl)}`],
      [signedPct(t.ret), `num ${tone(t.ret)}`],
      [t.exit_reason ? humanise(t.exit_reason) : "—"],
    ], (t) => `${t.id}-${t.exit_time || "open"}`);
    for (const row of $$("#trades tbody tr")) row.dataset.state = row.dataset.key.endsWith("-open") ? "open" : "closed";
  }

  async function loadEquity() {
    const points = await read("/equity?limit=5000", []);
    const loaded = points.map((p) => ({ t: toMs(p.time), equity: p.equity, drawdown: p.drawdown }));
    const last = loaded.length ? loaded[loaded.length - 1].t : -Infinity;
    view.equity = loaded.concat(view.equity.filter((p) => p.t > last)); // keep what streamed meanwhile
    drawSoon();
  }

  async function loadDecisions() {
    const page = await read(`/decisions?limit=${LIST}`, { items: [] });
    addDecisions(page.items);
  }

  async function loadAlerts() {
    const alerts = await read("/alerts?limit=50", []);
    view.alerts = alerts.map((a) => ({ kind: a.kind, message: a.message, time: a.time }));
    renderAlerts();
  }

  // -- engine, account and risk ---------------------------------------------------------------
  function applyEngine(engine) {
    if (!engine) return;
    if (view.runId !== null && engine.run_id && engine.run_id !== view.runId) {
      // a new session: its figures replace the old one's
      const keep = view.engine;
      view = fresh();
      view.engine = keep;
      refreshAll();
    }
    if (engine.run_id) view.runId = engine.run_id;
    view.engine = engine;
    renderEngine();
  }

  function renderEngine() {
    const e = view.engine;
    if (!e) {
      for (const button of $$("#controls button")) button.disabled = true;
      return;
    }
    const badge = $("#engine-state");
    const shown = e.state === "running" && e.paused ? "running · paused" : e.state;
    badge.textContent = shown;
    badge.dataset.state = e.state === "running" && e.paused ? "paused" : e.state;
    setText("#engine-name", e.name ? `${e.name} · ${e.mode}` : "journal only");
    const facts = [
      ["State", shown],
      ["Mode", e.mode || "—"],
      ["Session", e.name ? `${e.name} (run ${e.run_id})` : "—"],
      ["Symbols", (e.symbols || []).join(", ") || "—"],
      ["Timeframe", e.timeframe || "—"],
      ["Bars", isNum(e.bars) ? e.bars.toLocaleString("en-US") : "—"],
    ];
    if (e.paused) facts.push(["Paused", e.paused]);
    if (e.stop_reason) facts.push(["Stopped", e.stop_reason]);
    if (e.error) facts.push(["Error", e.error, "neg"]);
    if (!e.can_trade) facts.push(["Note", "this server reads the journal only"]);
    fillFacts($("#engine-facts"), facts);
    const running = e.state === "running";
    const risk = e.risk_state || view.riskState;
    const enabled = {
      start: e.can_trade && !["running", "stopping"].includes(e.state),
      stop: running,
      pause: running && !e.paused,
      unpause: running && Boolean(e.paused),
      flatten: running,
      "lift-halt": running && risk === "halted",
    };
    for (const button of $$("#controls button")) {
      button.disabled = !enabled[button.dataset.action];
    }
  }

  function applyAccount(account) {
    if (!account) return;
    const a = view.account;
    Object.assign(a, {
      equity: account.equity,
      cash: account.cash,
      exposure: account.exposure,
      peak: account.peak,
      start: isNum(account.equity) && isNum(account.pnl_total) ? account.equity - account.pnl_total : null,
      opening: isNum(account.equity) && isNum(account.pnl_today) ? account.equity - account.pnl_today : null,
      drawdown: account.drawdown,
    });
    renderAccount();
  }

  /** Each bar's figures: the P&L and drawdown follow from the status's start, opening and peak. */
  function applyBar(bar) {
    const a = view.account;
    if (isNum(bar.equity)) {
      a.equity = bar.equity;
      a.peak = isNum(a.peak) ? Math.max(a.peak, bar.equity) : bar.equity;
      a.drawdown = a.peak > 0 ? 1 - bar.equity / a.peak : 0;
    }
    if (isNum(bar.cash)) a.cash = bar.cash;
    if (isNum(bar.exposure)) a.exposure = bar.exposure;
    if (bar.time !== undefined) a.lastBar = bar.time;
    a.stale = Boolean(bar.stale);
    if (bar.state) {
      view.riskState = bar.state;
      const badge = $("#kpi-risk");
      badge.textContent = bar.state;
      badge.dataset.state = bar.state;
    }
    if (view.engine && isNum(view.engine.bars)) {
      view.engine.bars += 1;
      if (bar.state) view.engine.risk_state = bar.state;
      renderEngine();
    }
    renderAccount();
  }

  function renderAccount() {
    const a = view.account;
    setText("#kpi-equity", money(a.equity));
    setText("#kpi-cash", isNum(a.cash) ? `cash ${money(a.cash)}` : "—");
    const total = isNum(a.equity) && isNum(a.start) ? a.equity - a.start : null;
    const today = isNum(a.equity) && isNum(a.opening) ? a.equity - a.opening : null;
    setText("#kpi-pnl-today", signed(today), `value ${tone(today)}`);
    setText("#kpi-pnl-total", signed(total), `value ${tone(total)}`);
    setText("#kpi-return", isNum(total) && a.start ? `${signedPct(total / a.start)} since start` : "—");
    const down = isNum(a.drawdown) ? (a.drawdown > 0 ? pct(-a.drawdown) : pct(0)) : "—";
    setText("#kpi-drawdown", down, `value ${a.drawdown > 0.0001 ? "neg" : ""}`);
    setText("#kpi-peak", isNum(a.peak) ? `peak ${money(a.peak)}` : "—");
    setText("#kpi-exposure", pct(a.exposure, 1));
    const last = a.lastBar ? `last bar ${when(a.lastBar)}` : "—";
    setText("#kpi-last-bar", a.stale ? `${last} · stale` : last, a.stale ? "sub neg" : "sub");
  }

  function applyRisk(risk) {
    if (!risk) return;
    view.riskState = risk.state;
    const badge = $("#kpi-risk");
    badge.textContent = risk.state;
    badge.dataset.state = risk.state;
    setText("#kpi-risk-reason", risk.reason || "no risk events");
    const facts = [["State", risk.state]];
    if (risk.reason) facts.push(["Reason", risk.reason]);
    if (risk.time) facts.push(["Since", when(risk.time)]);
    if (risk.actor) facts.push(["By", risk.actor]);
    fillFacts($("#risk"), facts);
    const limits = Object.entries(risk.limits || {}).map(([key, value]) => [humanise(key), limitText(key, value)]);
    fillFacts($("#risk-limits"), limits);
    renderEngine();
  }

  function limitText(key, value) {
    if (typeof value === "boolean") return value ? "on" : "off";
    if (!isNum(value)) return value === null ? "—" : String(value);
    const fraction = /(fraction|exposure|drawdown|stop_loss|take_profit|win_rate)/.test(key) && !/trades|bars/.test(key);
    return fraction ? pct(value, 1) : String(value);
  }

  // -- positions ------------------------------------------------------------------------------
  function renderPositions(positions) {
    if (!Array.isArray(positions)) return;
    fillTable("positions", positions, (p) => [
      [p.symbol],
      [p.qty >= 0 ? "long" : "short", p.qty >= 0 ? "side-long" : "side-short"],
      [qty(Math.abs(p.qty)), "num"],
      [price(p.avg_price), "num"],
      [price(p.last_price), "num"],
      [signed(p.unrealised_pnl), `num ${tone(p.unrealised_pnl)}`],
      [signed(p.realised_pnl), `num ${tone(p.realised_pnl)}`],
    ], (p) => p.symbol);
    const key = positions.map((p) => `${p.symbol}:${p.qty}`).join("|");
    if (key !== view.positionsKey) {
      view.positionsKey = key;
      refreshSoon(); // a position opened, changed or closed: its orders and trades did too
    }
  }

  function roleOf(clientOrderId) {
    const match = /^[a-z]+\d+([a-z])-/.exec(clientOrderId || "");
    return match ? ROLES[match[1]] || match[1] : "—";
  }

  // -- decisions -------------------------------------------------------------------------------
  function addDecisions(items) {
    const byNumber = new Map(view.decisions.map((d) => [d.number, d]));
    for (const item of items) byNumber.set(item.number, item);
    view.decisions = Array.from(byNumber.values())
      .sort((a, b) => b.number - a.number)
      .slice(0, LIST);
    renderDecisions();
  }

  function renderDecisions() {
    const list = $("#decisions");
    const shown = new Set(Array.from(list.children, (li) => li.dataset.number));
    list.replaceChildren(...view.decisions.map((d) => decisionItem(d, shown.size > 0 && !shown.has(String(d.number)))));
    $("[data-empty-for=decisions]").hidden = view.decisions.length > 0;
  }

  function decisionItem(d, isNew) {
    const action = String(d.action || "");
    const head = h(
      "div",
      { className: "decision-head" },
      h("span", { className: "time", text: when(d.time) }),
      h("span", { className: "symbol", text: d.symbol }),
      h("span", { className: `action action-${action}`, text: humanise(action) }),
      h("span", {
        className: "meta",
        text: [
          `confidence ${pct(d.confidence, 0)} / ${pct(d.threshold, 0)}`,
          d.regime ? humanise(d.regime) : null,
          isNum(d.size) && d.size > 0 ? `size ${pct(d.size, 1)}` : null,
        ].filter(Boolean).join(" · "),
      }),
    );
    const agents = h("div", { className: "agents" });
    for (const a of d.agents || []) {
      const side = a.signal > 0 ? "long" : a.signal < 0 ? "short" : "flat";
      const arrow = a.signal > 0 ? "\u25B2 long" : a.signal < 0 ? "\u25BC short" : "\u2013 flat";
      const fill = h("span");
      fill.style.width = `${Math.max(0, Math.min(1, Number(a.confidence) || 0)) * 100}%`;
      agents.append(
        h("span", { className: "agent", text: humanise(a.agent), title: a.agent }),
        h("span", { className: `signal-${side}`, text: arrow }),
        h("span", { className: `bar ${side}`, title: `confidence ${pct(a.confidence, 1)}` }, fill),
        h("span", { className: "num", text: pct(a.confidence, 0) }),
        h("span", { className: "weight", text: isNum(a.weight) ? `w ${a.weight.toFixed(2)}` : "" }),
      );
    }
    const reasons = h("ul", { className: "reasons" }, (d.reasons || []).map((r) => h("li", { text: r })));
    if (d.exit_reason) reasons.append(h("li", { text: `exit: ${humanise(d.exit_reason)}` }));
    const item = h("li", { className: "decision", dataset: { number: String(d.number), action } }, head, agents, reasons);
    if (isNew) item.classList.add("flash");
    return item;
  }

  // -- alerts --------------------------------------------------------------------------------
  function addAlert(alert) {
    view.alerts.unshift(alert);
    view.alerts.length = Math.min(view.alerts.length, 50);
    renderAlerts();
  }

  function renderAlerts() {
    $("#alerts").replaceChildren(
      ...view.alerts.map((a) =>
        h(
          "li",
          { className: "alert", dataset: { kind: a.kind || "alert" } },
          h(
            "div",
            { className: "alert-head" },
            h("span", { className: "alert-kind", text: humanise(a.kind || "alert") }),
            h("span", { text: when(a.time, true) }),
          ),
          h("div", { className: "alert-text", text: a.message || "" }),
        ),
      ),
    );
    $("[data-empty-for=alerts]").hidden = view.alerts.length > 0;
  }

  // -- the equity chart ------------------------------------------------------------------------
  function addEquity(point, at) {
    const t = toMs(point.time ?? at);
    if (t === null || !isNum(point.equity)) return;
    const points = view.equity;
    const last = points[points.length - 1];
    if (last && t < last.t) return; // older than what is drawn
    let drawdown = point.drawdown;
    if (!isNum(drawdown)) {
      const peak = Math.max(point.equity, view.account.peak || 0, ...(last ? [last.equity] : []));
      drawdown = peak > 0 ? 1 - point.equity / peak : 0;
    }
    const next = { t, equity: point.equity, drawdown };
    if (last && last.t === t) points[points.length - 1] = next;
    else points.push(next);
    if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
    drawSoon();
  }

  /** Redraw at most four times a second, however fast the bars come. */
  function drawSoon() {
    if (stream.chartTimer) return;
    stream.chartTimer = setTimeout(() => {
      stream.chartTimer = null;
      draw();
    }, 250);
  }

  function draw() {
    const chart = $("#equity-chart");
    if (!window.Plotly || !token || $("#dashboard").hidden) return;
    const x = view.equity.map((p) => when(p.t, true));
    const drawdowns = view.equity.map((p) => -100 * p.drawdown); // in percent: Plotly picks the decimals
    const deepest = drawdowns.reduce((a, b) => Math.min(a, b), -0.01);
    const axis = { automargin: true, gridcolor: "#21262d", zerolinecolor: "#30363d", linecolor: "#30363d", tickfont: { color: "#8b949e" } };
    const data = [
      {
        x,
        y: view.equity.map((p) => p.equity),
        type: "scatter",
        mode: "lines",
        name: "equity",
        line: { color: "#58a6ff", width: 1.6 },
        hovertemplate: "%{y:,.2f}<extra>equity</extra>",
      },
      {
        x,
        y: drawdowns,
        type: "scatter",
        mode: "lines",
        name: "drawdown",
        yaxis: "y2",
        fill: "tozeroy",
        line: { color: "#f85149", width: 1 },
        fillcolor: "rgba(248, 81, 73, 0.25)",
        hovertemplate: "%{y:.2f}%<extra>drawdown</extra>",
      },
    ];
    const layout = {
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: "system-ui, sans-serif", color: "#c9d1d9", size: 12 },
      margin: { l: 64, r: 16, t: 8, b: 36 },
      showlegend: false,
      hovermode: "x unified",
      hoverlabel: { bgcolor: "#1c2330", bordercolor: "#30363d", font: { color: "#e6edf3" } },
      xaxis: { ...axis, anchor: "y2", type: "date" },
      yaxis: { ...axis, domain: [0.34, 1], tickformat: ",.2~f", title: { text: "equity", font: { color: "#8b949e", size: 11 } } },
      yaxis2: { ...axis, domain: [0, 0.26], ticksuffix: "%", nticks: 4, range: [deepest * 1.08, 0], title: { text: "drawdown", font: { color: "#8b949e", size: 11 } } },
      uirevision: view.runId ?? "run", // keep the user's zoom across updates
      datarevision: Date.now(),
    };
    window.Plotly.react(chart, data, layout, { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] });
  }

  // -- the stream ------------------------------------------------------------------------------
  function setStream(state, text) {
    const node = $("#stream-state");
    node.dataset.state = state;
    node.textContent = text;
  }

  async function connect() {
    clearTimeout(stream.timer);
    if (!token || stream.socket) return;
    setStream("connecting", "connecting…");
    let ticket;
    try {
      ticket = (await api("/auth/ticket", { method: "POST" })).ticket;
    } catch (error) {
      if (!(error instanceof SessionEnded)) retry();
      return;
    }
    if (!token || stream.socket) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${API}/stream`);
    stream.socket = socket;
    socket.addEventListener("open", () => socket.send(JSON.stringify({ ticket })));
    socket.addEventListener("message", (event) => {
      if (stream.socket !== socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      onMessage(message);
    });
    socket.addEventListener("close", () => {
      if (stream.socket !== socket) return; // replaced or logged out
      stream.socket = null;
      if (token) retry();
    });
  }

  /** Try again after 1, 2, 4 … 30 s (with jitter), with a new ticket. */
  function retry() {
    const delay = Math.min(30000, 1000 * 2 ** stream.retries) * (0.8 + Math.random() * 0.4);
    stream.retries += 1;
    setStream("retry", `reconnecting in ${Math.round(delay / 1000)} s`);
    clearTimeout(stream.timer);
    stream.timer = setTimeout(connect, delay);
  }

  const handlers = {
    hello(data) {
      stream.retries = 0;
      setStream("live", "live");
      applyEngine(data.engine);
      if (Array.isArray(data.positions)) renderPositions(data.positions);
      if (data.account) applyAccount(data.account);
      refreshAll(); // what happened while the stream was away
    },
    bar: (data) => applyBar(data),
    equity: (data, at) => addEquity(data, at),
    decision: (data) => addDecisions([data]),
    order: () => refreshSoon(),
    fill: () => refreshSoon(),
    venue: () => loadVenues().catch(() => {}),
    positions: (data) => renderPositions(data),
    alert: (data, at) => addAlert({ kind: data.kind || data.alert, message: data.message, time: data.time ?? at }),
    breaker: (data, at) => addAlert({ kind: "circuit breaker", message: `circuit breaker tripped on ${data.symbol}`, time: at }),
    engine(data) {
      applyEngine(data);
      if (data.state !== "running") {
        refreshSoon();
        loadPositions().catch(() => {});
      }
    },
    control(data, at) {
      const who = data.actor ? ` by ${data.actor}` : "";
      const why = data.reason ? `: ${data.reason}` : "";
      addAlert({ kind: "control", message: `${humanise(data.action)}${who}${why}`, time: at });
    },
    model(data, at) {
      if (data.outcome !== "done") return; // a failed switch comes as an alert too
      const was = data.old ? ` (was ${data.old})` : "";
      const why = data.reason ? `: ${data.reason}` : "";
      addAlert({ kind: "model switch", message: `${data.symbol} ${data.timeframe} now trades ${data.new}${was}${why}`, time: at });
    },
  };

  function onMessage(message) {
    const handle = message && handlers[message.type];
    if (handle) handle(message.data || {}, message.time);
  }

  // -- controls -----------------------------------------------------------------------------------
  function openConfirm(action) {
    const spec = CONTROLS[action];
    if (!spec) return;
    pendingAction = action;
    setText("#confirm-title", spec.title);
    setText("#confirm-text", spec.text);
    const ok = $("#confirm-ok");
    ok.className = spec.tone;
    ok.textContent = action === "lift-halt" ? "Lift halt" : `${action[0].toUpperCase()}${action.slice(1)}`;
    ok.disabled = false;
    const reason = $("#confirm-reason");
    reason.value = "";
    reason.required = Boolean(spec.reasonRequired);
    setText("#confirm-reason-hint", spec.reasonRequired ? "(required)" : "(optional)");
    const symbolRow = $("#confirm-symbol-row");
    symbolRow.hidden = action !== "flatten";
    if (action === "flatten") {
      const symbols = (view.engine && view.engine.symbols) || [];
      $("#confirm-symbol").replaceChildren(
        h("option", { value: "", text: "all positions" }),
        ...symbols.map((s) => h("option", { value: s, text: s })),
      );
    }
    say("#confirm-error", "", "error");
    $("#confirm-dialog").showModal();
    reason.focus();
  }

  async function confirm(event) {
    event.preventDefault();
    const action = pendingAction;
    if (!action) return;
    const reason = $("#confirm-reason").value.trim();
    if (CONTROLS[action].reasonRequired && !reason) {
      say("#confirm-error", "Give a reason: it goes into the audit log.", "error");
      $("#confirm-reason").focus();
      return;
    }
    const body = { reason };
    if (action === "flatten") body.symbol = $("#confirm-symbol").value || null;
    $("#confirm-ok").disabled = true;
    try {
      const answer = await api(`/control/${action}`, { method: "POST", body });
      say("#control-result", `${humanise(answer.action)} accepted: ${answer.detail || "done"}`, "ok");
      if (answer.engine) applyEngine(answer.engine);
      closeConfirm();
    } catch (error) {
      if (error instanceof SessionEnded) return;
      say("#control-result", `${humanise(action)} refused: ${error.message}`, "error");
      closeConfirm();
    }
  }

  function closeConfirm() {
    pendingAction = null;
    const dialog = $("#confirm-dialog");
    if (dialog.open) dialog.close();
  }

  // -- wiring -------------------------------------------------------------------------------------
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#controls").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button && !button.disabled) openConfirm(button.dataset.action);
  });
  $("#confirm-form").addEventListener("submit", confirm);
  $("#confirm-cancel").addEventListener("click", closeConfirm);
  $("#confirm-dialog").addEventListener("close", () => {
    pendingAction = null;
  });
  renderEngine();
  $("#username").focus();
})();
