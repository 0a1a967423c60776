// TrueGPU dashboard: a single page over the public REST API (/v1).
// Plain JavaScript, no build step. Every string from the API is inserted as
// text (never as HTML): node-reported fields such as device names are
// untrusted.
"use strict";

(function () {
  // ---------- small helpers ----------

  const $app = document.getElementById("app");

  // el builds an element: el("td", {class: "num"}, "text", childNode, ...).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "style") e.setAttribute("style", v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // fill replaces node's children; arrays among them are flattened.
  function fill(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
  }

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, signal) {
    let resp;
    try {
      resp = await fetch(path, { headers: { Accept: "application/json" }, signal });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new APIError(0, 14, "the oracle member cannot be reached (" + e.message + ")");
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      /* handled below */
    }
    if (!resp.ok) {
      const msg = body && body.message ? body.message : resp.status + " " + resp.statusText;
      throw new APIError(resp.status, body ? body.code : 0, msg);
    }
    if (body === null) throw new APIError(resp.status, 13, "the response of " + path + " is not JSON");
    return body;
  }

  const STATUSES = ["trusted", "probation", "suspect", "rejected"];
  const STATUS_ENUM = {
    trusted: "NODE_STATUS_TRUSTED",
    probation: "NODE_STATUS_PROBATION",
    suspect: "NODE_STATUS_SUSPECT",
    rejected: "NODE_STATUS_REJECTED",
  };
  const STATUS_HELP = {
    trusted: "Enough passing evidence across every dimension. Schedulers can use it and reward contracts pay it.",
    probation: "New or recently reset: not enough evidence yet to be trusted.",
    suspect: "Recent failures. Schedulers should avoid it until it recovers.",
    rejected: "Failed identity or integrity checks. Rewards should not be paid.",
    unspecified: "No status recorded.",
  };
  const DIMENSIONS = [
    ["identity", "Identity", "unique, anchored, consistent fingerprint"],
    ["capacity", "Capacity", "meets its claimed class's timing"],
    ["liveness", "Liveness", "answers challenges over time"],
    ["correctness", "Correctness", "work proofs are valid"],
  ];

  function statusName(s) {
    if (!s) return "unspecified";
    return String(s).replace("NODE_STATUS_", "").toLowerCase();
  }
  function statusBadge(s, big) {
    const n = statusName(s);
    return el("span", { class: "badge " + n + (big ? " big" : ""), dataset: { status: n } }, n);
  }
  // Basis points (0..10000) as a percentage.
  function pct(bp) {
    return (Number(bp || 0) / 100).toFixed(2) + "%";
  }
  function level(bp) {
    bp = Number(bp || 0);
    return bp >= 8000 ? "hi" : bp >= 5000 ? "mid" : "lo";
  }
  function bar(bp, cls, wide) {
    const w = Math.max(0, Math.min(100, Number(bp || 0) / 100));
    return el("span", { class: "bar" + (wide ? " wide" : "") }, el("span", { class: cls || level(bp), style: "width:" + w + "%" }));
  }
  function scoreCell(bp) {
    return el("div", { class: "scorecell" }, el("span", {}, pct(bp)), bar(bp));
  }
  function num(x) {
    return Number(x || 0);
  }
  function fmtInt(x) {
    return num(x).toLocaleString("en-US");
  }
  // Unix milliseconds (a string for int64 in protojson) to a UTC time.
  function fmtTime(ms) {
    ms = num(ms);
    if (!ms) return "—";
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }
  function shortAddr(a) {
    return a && a.length > 14 ? a.slice(0, 8) + "…" + a.slice(-6) : a || "";
  }
  function shortHex(h, n) {
    n = n || 10;
    return h && h.length > 2 * n + 3 ? h.slice(0, n + 2) + "…" + h.slice(-n) : h || "";
  }
  // protojson bytes are base64; show them as 0x hex.
  function b64hex(b64) {
    if (!b64) return "";
    let bin;
    try {
      bin = atob(b64);
    } catch (e) {
      return "(invalid base64)";
    }
    let out = "0x";
    for (let i = 0; i < bin.length; i++) out += bin.charCodeAt(i).toString(16).padStart(2, "0");
    return out;
  }
  // timeRange keeps a chart's time axis sensible with a single point.
  function timeRange(u, min, max) {
    return min === max ? [min - 60, max + 60] : [min, max];
  }
  function nodeLink(addr, text) {
    return el("a", { href: "#/nodes/" + addr, class: "mono", title: addr }, text || addr);
  }
  function errorBox(e) {
    return el("div", { class: "error", role: "alert" }, e.status === 404 ? "Not found: " : "Error: ", e.message);
  }
  function card(title, ...children) {
    return el("section", { class: "card" }, title ? el("h2", {}, title) : null, ...children);
  }
  function setServedBy(read) {
    if (read && read.servedBy) document.getElementById("served-by").textContent = read.servedBy;
  }

  // ---------- live updates ----------

  const live = {
    state: "connecting",
    listeners: new Set(),
    recent: [], // newest first
    backoff: 2000,
    pollTimer: null,
  };

  function setLive(state, text) {
    live.state = state;
    const box = document.getElementById("live");
    box.className = "live " + state;
    document.getElementById("live-text").textContent = text;
  }

  function emitChange(c) {
    live.recent.unshift(c);
    live.recent.length = Math.min(live.recent.length, 50);
    for (const fn of live.listeners) fn(c);
  }

  // watch reads the newline-delimited JSON stream of GET /v1/watch/scores.
  // When it fails, the page polls and retries the stream with backoff.
  async function watch() {
    // Poll until the stream is confirmed open.
    startPolling();
    let resp;
    try {
      resp = await fetch("/v1/watch/scores", { headers: { Accept: "application/json" } });
      if (!resp.ok || !resp.body) throw new Error("status " + resp.status);
    } catch (e) {
      return retryWatch("stream unavailable: " + e.message);
    }
    setLive("on", "live");
    live.backoff = 2000;
    stopPolling();
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (!line) continue;
          let msg;
          try {
            msg = JSON.parse(line);
          } catch (e) {
            continue;
          }
          if (msg.error) throw new Error(msg.error.message || "stream error");
          if (msg.result && msg.result.change) emitChange(msg.result.change);
        }
      }
      retryWatch("stream ended");
    } catch (e) {
      retryWatch(e.message);
    }
  }

  function retryWatch(why) {
    setLive("poll", "polling (" + why + ")");
    startPolling();
    setTimeout(watch, live.backoff);
    live.backoff = Math.min(live.backoff * 2, 60000);
  }

  function startPolling() {
    if (live.pollTimer) return;
    live.pollTimer = setInterval(() => {
      if (current && current.refresh) current.refresh();
    }, 5000);
  }
  function stopPolling() {
    clearInterval(live.pollTimer);
    live.pollTimer = null;
  }

  // ---------- router ----------

  let current = null; // {refresh(), dispose()}

  function parseHash() {
    const h = location.hash.replace(/^#/, "") || "/";
    const [path, query] = h.split("?");
    const params = new URLSearchParams(query || "");
    const parts = path.split("/").filter(Boolean);
    return { parts, params };
  }

  function route() {
    if (current && current.dispose) current.dispose();
    current = null;
    const { parts, params } = parseHash();
    let nav = "fleet";
    fill($app);
    if (parts.length === 0) current = fleetPage();
    else if (parts[0] === "nodes" && parts[1]) current = nodePage(decodeURIComponent(parts[1]), params.get("c"));
    else if (parts[0] === "cluster") (nav = "cluster"), (current = clusterPage());
    else if (parts[0] === "feed") (nav = "feed"), (current = feedPage(parts[1], params.get("node")));
    else $app.append(errorBox({ status: 404, message: "no page at #" + parts.join("/") }));
    for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
  }

  // ---------- fleet page ----------

  // Table state survives navigation to a node page and back. The server
  // filters, orders and pages (GET /v1/nodes); the page keeps the tokens
  // of the pages it went through, so Previous goes back one.
  const table = {
    order: "address", // ListNodes order_by
    status: "",
    cls: "",
    minScore: "",
    q: "", // address search, within the page
    pageSize: 100,
    tokens: [""], // page token of each page so far; the last is shown
    offsets: [0], // rows before each of those pages
  };
  const PAGE_SIZES = [25, 50, 100, 200, 500];

  // Columns; those with orders sort on the server (the first order on the
  // first click, the next on the next).
  const COLUMNS = [
    { key: "address", label: "Node", orders: ["address"] },
    { key: "status", label: "Status" },
    { key: "score", label: "Score", num: true, orders: ["score desc", "score"] },
    ...DIMENSIONS.map(([k, label]) => ({ key: k, label, num: true })),
    { key: "classes", label: "Class" },
    { key: "devices", label: "GPUs", num: true },
    { key: "reason", label: "Top reason" },
    { key: "updated", label: "Updated", orders: ["updated desc"] },
  ];

  function fleetPage() {
    const ac = new AbortController();
    let rows = []; // NodeSummary of the page shown
    let total = 0; // nodes matching the filters (totalSize)
    let nextToken = ""; // the next page's token, "" on the last page
    let fleet = null;
    let chart = null;
    const statsBox = el("div", { class: "stats", id: "fleet-stats" }, el("div", { class: "loading" }, "Loading fleet…"));
    const classBox = el("div", { id: "by-class" });
    const chartBox = el("div", { class: "chart", id: "fakes-chart" });
    const changesBox = el("ul", { class: "changes", id: "changes" });
    const tableBox = el("div", { class: "table-wrap" });
    const countBox = el("span", { class: "count", id: "node-count" });
    const errBox = el("div");

    const pagerBox = el("div", { class: "pager", id: "pager" });

    // firstPage starts the listing over (new filters or order) and loads it.
    function firstPage() {
      table.tokens = [""];
      table.offsets = [0];
      loadNodes();
    }
    const classSelect = el("select", { id: "f-class", onchange: (e) => ((table.cls = e.target.value), firstPage()) }, el("option", { value: "" }, "all classes"));
    const fullAddress = (q) => /^0x[0-9a-f]{40}$/.test(q);
    const filters = el(
      "div",
      { class: "filters" },
      el("label", {}, "Status",
        el("select", { id: "f-status", onchange: (e) => ((table.status = e.target.value), firstPage()) },
          el("option", { value: "" }, "all statuses"),
          STATUSES.map((s) => el("option", { value: s, selected: table.status === s }, s)))),
      el("label", {}, "Class", classSelect),
      el("label", {}, "Min score %",
        el("input", { id: "f-min", type: "number", min: 0, max: 100, step: 1, value: table.minScore, style: "width:90px",
          onchange: (e) => ((table.minScore = e.target.value), firstPage()) })),
      el("label", {}, "Rows",
        el("select", { id: "f-size", onchange: (e) => ((table.pageSize = Number(e.target.value)), firstPage()) },
          PAGE_SIZES.map((n) => el("option", { value: n, selected: table.pageSize === n }, n)))),
      el("label", { title: "Filters the rows of this page; a whole address opens the node (Enter)" }, "Address (this page)",
        el("input", { id: "f-q", type: "search", placeholder: "0x… or part of one", value: table.q,
          oninput: (e) => ((table.q = e.target.value.trim().toLowerCase()), renderTable()),
          onkeydown: (e) => { if (e.key === "Enter" && fullAddress(table.q)) location.hash = "#/nodes/" + table.q; } })),
      countBox
    );

    $app.append(
      el("h1", {}, "Fleet"),
      el("p", { class: "subtitle" }, "Every registered GPU node, what the oracle has verified about it, and why."),
      errBox,
      statsBox,
      el("div", { class: "grid two" },
        card("Nodes by class", classBox,
          el("div", { class: "legend" }, STATUSES.map((s) => el("span", {}, el("i", { class: "legend-" + s, style: "background:var(--" + s + ")" }), s)))),
        card("Fakes caught over time", chartBox)),
      el("div", { class: "grid" }, card("Nodes", filters, tableBox)),
      el("div", { class: "grid" }, card("Live score changes", changesBox))
    );

    function renderStats() {
      const bs = fleet.byStatus || {};
      const total = num(fleet.totalNodes);
      const rejectedPct = total ? ((100 * num(bs.rejected)) / total).toFixed(1) + "% of nodes" : "";
      fill(statsBox, 
        el("div", { class: "stat" }, el("div", { class: "label" }, "Nodes"), el("div", { class: "value", id: "stat-total" }, fmtInt(total)), el("div", { class: "hint" }, fmtInt(fleet.totalVerdicts) + " verdicts")),
        STATUSES.map((s) =>
          el("div", { class: "stat " + s }, el("div", { class: "label" }, s), el("div", { class: "value", id: "stat-" + s }, fmtInt(bs[s])),
            el("div", { class: "hint" }, s === "rejected" ? rejectedPct : s === "trusted" && total ? ((100 * num(bs[s])) / total).toFixed(1) + "% usable" : "")))
      );
      // Class bars.
      const classes = fleet.byClass || [];
      const max = Math.max(1, ...classes.map((c) => STATUSES.reduce((a, s) => a + num(c.byStatus && c.byStatus[s]), 0)));
      fill(classBox, 
        classes.length === 0
          ? el("p", { class: "empty" }, "No nodes yet.")
          : el("table", {},
              el("thead", {}, el("tr", {}, el("th", {}, "Class"), el("th", { class: "num" }, "Nodes"), el("th", {}, "By status"))),
              el("tbody", {},
                classes.map((c) => {
                  const bsc = c.byStatus || {};
                  const tot = STATUSES.reduce((a, s) => a + num(bsc[s]), 0);
                  return el("tr", {},
                    el("td", {}, el("a", { href: "#/", onclick: (e) => { e.preventDefault(); table.cls = c.class; classSelect.value = c.class; firstPage(); } }, c.class)),
                    el("td", { class: "num" }, tot),
                    el("td", {},
                      el("div", { class: "classbar", style: "width:" + Math.max(8, (100 * tot) / max) + "%", title: STATUSES.map((s) => s + " " + num(bsc[s])).join(", ") },
                        STATUSES.filter((s) => num(bsc[s]) > 0).map((s) => el("span", { class: s, style: "width:" + (100 * num(bsc[s])) / tot + "%" })))));
                })))
      );
      // Class filter options.
      const have = new Set([...classSelect.options].map((o) => o.value));
      for (const c of classes) if (!have.has(c.class)) classSelect.append(el("option", { value: c.class }, c.class));
      classSelect.value = table.cls;
      renderChart();
    }

    function renderChart() {
      const tl = fleet.timeline || [];
      if (typeof uPlot === "undefined") {
        fill(chartBox, el("p", { class: "empty" }, "Chart library not loaded."));
        return;
      }
      if (tl.length === 0) {
        fill(chartBox, el("p", { class: "empty" }, "No verdicts yet."));
        return;
      }
      const xs = tl.map((p) => num(p.atUnixMs) / 1000);
      let cum = 0;
      const data = [xs, tl.map((p) => num(p.rejected)), tl.map((p) => num(p.suspect)), tl.map((p) => (cum += num(p.rejected))), tl.map((p) => num(p.nodes))];
      const width = Math.max(300, chartBox.clientWidth || 600);
      if (chart) chart.destroy();
      fill(chartBox);
      const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 24] }) : undefined;
      chart = new uPlot(
        {
          width,
          height: 240,
          scales: { x: { time: true, range: timeRange }, n: { auto: true, range: (u, min, max) => [0, Math.max(4, max)] } },
          series: [
            { label: "time (UTC)", value: (u, v) => (v == null ? "—" : fmtTime(v * 1000)) },
            { label: "newly rejected", scale: "y", stroke: "#c81e1e", fill: "rgba(200,30,30,0.55)", paths: bars, points: { show: false } },
            { label: "newly suspect", scale: "y", stroke: "#e08a1e", fill: "rgba(224,138,30,0.45)", paths: bars, points: { show: false } },
            { label: "rejected (total)", scale: "y", stroke: "#7f1d1d", width: 2, dash: [6, 4] },
            { label: "nodes known", scale: "n", stroke: "#3b5bdb", width: 1.5 },
          ],
          axes: [
            { stroke: "#667085", grid: { stroke: "#eef0f3" } },
            { scale: "y", label: "nodes caught", stroke: "#667085", grid: { stroke: "#eef0f3" } },
            { scale: "n", side: 1, label: "fleet size", stroke: "#3b5bdb", grid: { show: false } },
          ],
        },
        data,
        chartBox
      );
    }

    // The rows of the page that match the address search.
    function shown() {
      const q = table.q;
      return rows.filter((n) => !q || n.address.toLowerCase().includes(q));
    }

    function renderTable() {
      const list = shown();
      const from = table.offsets[table.offsets.length - 1];
      countBox.textContent = (rows.length === 0 ? "0" : fmtInt(from + 1) + "–" + fmtInt(from + rows.length)) + " of " + fmtInt(total) + " nodes" +
        (list.length === rows.length ? "" : " · " + list.length + " on this page match the address");
      const head = el("tr", {},
        COLUMNS.map((c) => {
          if (!c.orders) return el("th", { class: c.num ? "num" : "" }, c.label);
          const at = c.orders.indexOf(table.order);
          const dir = at < 0 ? "none" : table.order.endsWith(" desc") ? "descending" : "ascending";
          return el("th", {
            class: "sortable" + (c.num ? " num" : ""), dataset: { sort: c.key }, "aria-sort": dir,
            title: "Order by " + c.label + " (on the server)",
            onclick: () => {
              table.order = c.orders[(at + 1) % c.orders.length];
              firstPage();
            },
          }, c.label, at >= 0 ? el("span", { class: "arrow" }, dir === "ascending" ? " ▲" : " ▼") : null);
        }));
      const body = el("tbody", {},
        list.map((n) =>
          el("tr", { dataset: { address: n.address } },
            el("td", {}, nodeLink(n.address, shortAddr(n.address))),
            el("td", {}, statusBadge(n.status)),
            el("td", { class: "num score" }, scoreCell(n.scoreBp)),
            DIMENSIONS.map(([k]) => el("td", { class: "num" }, pct(n.dimensions && n.dimensions[k] && n.dimensions[k].scoreBp))),
            el("td", {}, (n.classes || []).join(", ")),
            el("td", { class: "num" }, n.deviceCount || 0),
            el("td", {}, n.topReason ? el("span", { class: "code" }, n.topReason) : ""),
            el("td", { class: "mono", title: fmtTime(n.updatedAtUnixMs) }, fmtTime(n.updatedAtUnixMs).slice(5, 16)))));
      const page = table.tokens.length;
      fill(pagerBox,
        el("button", { id: "page-prev", disabled: page <= 1,
          onclick: () => { table.tokens.pop(); table.offsets.pop(); loadNodes(); } }, "← Previous"),
        el("span", { class: "muted" }, "page " + page),
        el("button", { id: "page-next", disabled: !nextToken,
          onclick: () => { table.offsets.push(from + rows.length); table.tokens.push(nextToken); loadNodes(); } }, "Next →"));
      fill(tableBox,
        el("table", { id: "nodes-table", dataset: { order: table.order, page: String(page) } }, el("thead", {}, head), body),
        rows.length === 0 ? el("p", { class: "empty" }, nextToken ? "No matching nodes in this stretch of the listing; Next continues." : "No nodes match the filter.") : null,
        fullAddress(table.q) && list.length === 0 ? el("p", {}, nodeLink(table.q, "Open node " + table.q)) : null,
        pagerBox
      );
    }

    function renderChanges() {
      fill(changesBox, 
        live.recent.length === 0
          ? el("li", { class: "empty" }, live.state === "on" ? "Watching for changes…" : "No changes seen yet.")
          : live.recent.slice(0, 20).map((c) =>
              el("li", {},
                el("span", { class: "mono" }, fmtTime(c.atUnixMs).slice(11, 19)),
                nodeLink(c.address, shortAddr(c.address)),
                statusBadge(c.oldStatus), "→", statusBadge(c.newStatus),
                el("span", {}, pct(c.oldScoreBp) + " → " + pct(c.newScoreBp)),
                c.reason ? el("span", { class: "code" }, c.reason) : null))
      );
    }

    async function loadFleet() {
      try {
        fleet = await api("/v1/fleet", ac.signal);
        setServedBy(fleet.read);
        renderStats();
      } catch (e) {
        if (e.name !== "AbortError") fill(errBox, errorBox(e));
      }
    }

    // loadNodes reads the current page of ListNodes: the server filters,
    // orders and pages; only the address search runs here, on the page.
    let loadSeq = 0;
    async function loadNodes() {
      const seq = ++loadSeq;
      const p = new URLSearchParams({ pageSize: String(table.pageSize), orderBy: table.order });
      if (table.status) p.set("status", STATUS_ENUM[table.status]);
      if (table.cls) p.set("class", table.cls);
      if (table.minScore !== "" && !isNaN(Number(table.minScore))) p.set("minScoreBp", String(Math.round(Number(table.minScore) * 100)));
      const token = table.tokens[table.tokens.length - 1];
      if (token) p.set("pageToken", token);
      try {
        const r = await api("/v1/nodes?" + p.toString(), ac.signal);
        if (seq !== loadSeq) return;
        rows = r.nodes || [];
        total = num(r.totalSize);
        nextToken = r.nextPageToken || "";
        fill(errBox);
        renderTable();
      } catch (e) {
        if (e.name === "AbortError" || seq !== loadSeq) return;
        if (e.status === 400 && token) {
          // A token of a listing the server no longer continues: start over.
          firstPage();
          return;
        }
        fill(errBox, errorBox(e));
      }
    }

    // A change updates its row in place at once; the page itself is read
    // again at most every few seconds (the row may move, leave the filter,
    // or another node come in).
    let fleetTimer = null;
    let pageTimer = null;
    function onChange(c) {
      const row = rows.find((n) => n.address.toLowerCase() === String(c.address).toLowerCase());
      if (row) {
        row.scoreBp = c.newScoreBp;
        row.status = c.newStatus;
        row.updatedAtUnixMs = c.atUnixMs;
        if (c.reason) row.topReason = c.reason;
        renderTable();
        const tr = tableBox.querySelector('tr[data-address="' + CSS.escape(row.address) + '"]');
        if (tr) {
          tr.classList.add("flash");
          tr.addEventListener("animationend", () => tr.classList.remove("flash"), { once: true });
        }
      }
      if (!pageTimer) pageTimer = setTimeout(() => ((pageTimer = null), loadNodes()), 3000);
      renderChanges();
      if (!fleetTimer) fleetTimer = setTimeout(() => ((fleetTimer = null), loadFleet()), 1500);
    }
    live.listeners.add(onChange);

    const onResize = () => fleet && renderChart();
    window.addEventListener("resize", onResize);

    renderChanges();
    loadFleet();
    loadNodes();
    return {
      refresh: () => (loadFleet(), loadNodes()),
      dispose: () => {
        ac.abort();
        live.listeners.delete(onChange);
        window.removeEventListener("resize", onResize);
        clearTimeout(fleetTimer);
        clearTimeout(pageTimer);
        if (chart) chart.destroy();
      },
    };
  }

  // ---------- node page ----------

  function nodePage(address, focusChallenge) {
    const ac = new AbortController();
    let chart = null;
    const root = el("div", { id: "node-page" }, el("div", { class: "loading" }, "Loading node " + address + "…"));
    $app.append(root);

    async function load() {
      let resp;
      try {
        resp = await api("/v1/nodes/" + encodeURIComponent(address), ac.signal);
      } catch (e) {
        if (e.name !== "AbortError") fill(root, el("p", {}, el("a", { href: "#/" }, "← Fleet")), errorBox(e));
        return;
      }
      setServedBy(resp.read);
      render(resp.node);
      loadProof(resp.node.address);
    }

    const proofBox = el("div", { id: "node-proof" }, el("p", { class: "empty" }, "Looking up the latest signed report…"));
    async function loadProof(addr) {
      try {
        const latest = await api("/v1/feed/latest", ac.signal);
        const ep = latest.report.epoch;
        const p = await api("/v1/feed/epochs/" + ep + "/nodes/" + addr + "/proof", ac.signal);
        fill(proofBox, 
          el("dl", { class: "kv" },
            el("dt", {}, "Epoch"), el("dd", {}, el("a", { href: "#/feed/" + ep }, ep)),
            el("dt", {}, "Score in leaf"), el("dd", {}, pct(p.scoreBp)),
            el("dt", {}, "Status in leaf"), el("dd", {}, statusBadge(p.status)),
            el("dt", {}, "Leaf"), el("dd", { class: "sig" }, b64hex(p.leaf)),
            el("dt", {}, "Root"), el("dd", { class: "sig" }, b64hex(p.root)),
            el("dt", {}, "Proof"), el("dd", {}, (p.proof || []).length + " sibling hashes · ",
              el("a", { href: "#/feed/" + ep + "?node=" + addr }, "show"))));
      } catch (e) {
        if (e.name === "AbortError") return;
        fill(proofBox, el("p", { class: "empty" }, e.status === 404 ? "Not in a complete signed report yet." : "Unavailable: " + e.message));
      }
    }

    function render(n) {
      const st = statusName(n.status);
      const d = n.dimensions || {};
      const ch = n.recentChallenges || [];
      const counters = n.counters || {};
      if (chart) chart.destroy();

      const reasons = n.reasons || [];
      const why = el("section", { class: "card why " + st, id: "why" },
        el("h2", {}, "Why is this node ", statusBadge(n.status), "?"),
        el("p", { class: "muted" }, STATUS_HELP[st] || ""),
        reasons.length === 0
          ? el("p", { class: "empty" }, "No penalties recorded.")
          : reasons.map((r) =>
              el("div", { class: "reason", dataset: { code: r.code } },
                el("span", { class: "code" }, r.code),
                r.detail ? el("div", { class: "detail" }, r.detail) : null,
                (r.evidence || []).length
                  ? el("div", { class: "evidence" },
                      (r.evidence || []).map((ev) => {
                        const parts = [];
                        if (ev.challengeId)
                          parts.push(el("a", { href: "#/nodes/" + n.address + "?c=" + encodeURIComponent(ev.challengeId), class: "evidence-link", title: "challenge " + ev.challengeId }, "challenge " + shortHex(ev.challengeId, 6)));
                        if (num(ev.appliedIndex)) parts.push("Raft index " + ev.appliedIndex);
                        if (num(ev.atUnixMs)) parts.push(fmtTime(ev.atUnixMs));
                        const others = (ev.relatedAddresses || []).filter((a) => a.toLowerCase() !== n.address.toLowerCase());
                        if (others.length) parts.push(el("span", {}, "shared with ", others.map((a, i) => [i ? ", " : "", nodeLink(a, shortAddr(a))])));
                        return el("span", {}, parts.map((p, i) => [i ? " · " : "", p]));
                      }))
                  : null))
      );

      const dims = el("div", { class: "dims" },
        DIMENSIONS.map(([k, label, help]) => {
          const x = d[k] || {};
          return el("div", { class: "card dim", dataset: { dim: k } },
            el("div", { class: "name", title: help }, label),
            el("div", { class: "value" }, pct(x.scoreBp)),
            bar(x.scoreBp, null, true),
            el("div", { class: "sub" }, el("span", {}, "confidence"), el("span", {}, pct(x.confidenceBp))),
            bar(x.confidenceBp, "conf", true));
        }));

      const chartBox = el("div", { class: "chart", id: "timing-chart" });
      const history = el("table", { id: "challenges" },
        el("thead", {}, el("tr", {},
          el("th", {}, "Challenge"), el("th", { class: "num" }, "GPU"), el("th", {}, "Issued (UTC)"),
          el("th", { class: "num" }, "Commit latency"), el("th", { class: "num" }, "Class profile"), el("th", { class: "num" }, "Ratio"),
          el("th", { class: "num" }, "Deadline"), el("th", { class: "num", title: "memory phase: walk latency against its deadline after the commitment" }, "Walk"),
          el("th", {}, "Outcome"), el("th", {}, "Reason"), el("th", {}, "Storm"))),
        el("tbody", {},
          ch.map((c) => {
            const lat = num(c.commitLatencyMs), exp = num(c.expectedLatencyMs);
            const budget = num(c.commitDeadlineUnixMs) - num(c.issuedAtUnixMs);
            const oc = c.outcome || "";
            const ocClass = oc === "accepted" ? "ok" : oc === "rejected" || oc === "missed" ? "bad" : "neutral";
            return el("tr", { id: "c-" + c.challengeId, dataset: { challenge: c.challengeId } },
              el("td", { class: "mono", title: c.challengeId }, shortHex(c.challengeId, 6)),
              el("td", { class: "num" }, c.deviceIndex || 0),
              el("td", { class: "mono" }, fmtTime(c.issuedAtUnixMs).slice(0, 19)),
              el("td", { class: "num" }, lat ? fmtInt(lat) + " ms" : "—"),
              el("td", { class: "num" }, exp ? fmtInt(exp) + " ms" : "—"),
              el("td", { class: "num" }, lat && exp ? (lat / exp).toFixed(2) + "×" : "—"),
              el("td", { class: "num" }, budget > 0 ? fmtInt(budget) + " ms" : "—"),
              el("td", { class: "num", title: num(c.walkExpectedLatencyMs) ? "expected " + fmtInt(num(c.walkExpectedLatencyMs)) + " ms" : "" },
                num(c.walkDeadlineMs) ? (num(c.walkLatencyMs) ? fmtInt(num(c.walkLatencyMs)) + " ms" : "—") + " / " + fmtInt(num(c.walkDeadlineMs)) + " ms" : "—"),
              el("td", {}, el("span", { class: "badge " + ocClass }, oc || "—")),
              el("td", {}, c.reason ? el("span", { class: "code" }, c.reason) : ""),
              el("td", { class: "mono" }, c.stormId || ""));
          })));

      const devices = el("table", { id: "devices" },
        el("thead", {}, el("tr", {}, ["GPU", "Claimed class", "Reported name", "UUID", "Memory", "PCI bus", "CC", "Driver / CUDA", ""].map((x) => el("th", {}, x)))),
        el("tbody", {},
          (n.devices || []).map((dev) => {
            const fp = dev.fingerprint || {};
            const hexId = (x) => "0x" + num(x).toString(16).toUpperCase().padStart(8, "0");
            const more = [
              ["Serial", fp.serial], ["Board part number", fp.boardPartNumber], ["Board id", fp.boardId],
              ["PCI device id", hexId(fp.pciDeviceId)], ["PCI subsystem id", hexId(fp.pciSubsystemId)], ["VBIOS", fp.vbiosVersion],
              ["Max SM clock", fp.maxSmClockMhz + " MHz"], ["Max memory clock", fp.maxMemoryClockMhz + " MHz"],
              ["Power limit", (num(fp.powerLimitMw) / 1000).toFixed(0) + " W"], ["MIG", fp.migEnabled ? "enabled" : "disabled"],
              ["Confidential computing", fp.ccMode || "unknown"], ["Not reported by the driver", (fp.unsupportedFields || []).join(", ")],
            ];
            return el("tr", { class: "device", dataset: { device: dev.index || 0 } },
              el("td", { class: "num" }, dev.index || 0),
              el("td", {}, dev.claimedClass),
              el("td", {}, fp.name || "—"),
              el("td", { class: "mono" }, fp.uuid || "—"),
              el("td", { class: "num" }, fp.memoryTotalBytes ? (num(fp.memoryTotalBytes) / 2 ** 30).toFixed(0) + " GiB" : "—"),
              el("td", { class: "mono" }, fp.pciBusId || "—"),
              el("td", {}, (fp.computeCapabilityMajor || 0) + "." + (fp.computeCapabilityMinor || 0)),
              el("td", {}, (fp.driverVersion || "—") + " / " + (num(fp.cudaDriverVersion) / 1000).toFixed(1)),
              el("td", {},
                el("details", {}, el("summary", {}, "fingerprint"),
                  el("dl", { class: "kv" }, more.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v === undefined || v === "" ? "—" : String(v))])))));
          })));

      fill(root, 
        el("p", {}, el("a", { href: "#/" }, "← Fleet")),
        el("div", { class: "nodehead" },
          el("div", {},
            el("div", { class: "addr", id: "node-address" }, n.address),
            el("div", { class: "meta" }, "registered " + fmtTime(n.registeredAtUnixMs) + " · updated " + fmtTime(n.updatedAtUnixMs))),
          statusBadge(n.status, true),
          el("div", { class: "score", id: "node-score", title: "overall score" }, pct(n.scoreBp))),
        why,
        dims,
        el("div", { class: "grid two" },
          card("Counters",
            el("dl", { class: "kv", id: "counters" },
              el("dt", {}, "Challenges issued"), el("dd", {}, fmtInt(counters.issued)),
              el("dt", {}, "Accepted"), el("dd", {}, fmtInt(counters.accepted)),
              el("dt", {}, "Rejected"), el("dd", {}, fmtInt(counters.rejected)),
              el("dt", {}, "Missed"), el("dd", {}, fmtInt(counters.missed))),
            el("h2", { style: "margin-top:16px" }, "Latest signed report"), proofBox),
          card("Commit latency against the class profile", chartBox)),
        el("div", { class: "grid" }, card("Challenge history (newest first)", el("div", { class: "table-wrap" }, history))),
        el("div", { class: "grid" }, card("Devices and fingerprints", el("div", { class: "table-wrap" }, devices)))
      );
      renderTiming(ch, chartBox);
      if (focusChallenge) {
        const tr = document.getElementById("c-" + focusChallenge);
        if (tr) {
          tr.classList.add("highlight");
          tr.scrollIntoView({ block: "center" });
        }
      }
    }

    function renderTiming(ch, box) {
      if (typeof uPlot === "undefined" || ch.length === 0) {
        fill(box, el("p", { class: "empty" }, ch.length ? "Chart library not loaded." : "No challenges yet."));
        return;
      }
      const pts = ch.slice().reverse(); // oldest first
      const data = [
        pts.map((c) => num(c.issuedAtUnixMs) / 1000),
        pts.map((c) => (num(c.commitLatencyMs) ? num(c.commitLatencyMs) : null)),
        pts.map((c) => num(c.expectedLatencyMs) || null),
        pts.map((c) => num(c.commitDeadlineUnixMs) - num(c.issuedAtUnixMs) || null),
      ];
      chart = new uPlot(
        {
          width: Math.max(300, box.clientWidth || 600),
          height: 260,
          scales: { x: { time: true, range: timeRange }, y: { range: (u, min, max) => [0, Math.max(10, max * 1.1)] } },
          series: [
            { label: "issued (UTC)", value: (u, v) => (v == null ? "—" : fmtTime(v * 1000)) },
            { label: "commit latency", stroke: "#3b5bdb", width: 2, points: { show: true, size: 6, fill: "#3b5bdb" }, value: (u, v) => (v == null ? "—" : v + " ms") },
            { label: "class profile", stroke: "#15803d", width: 1.5, dash: [6, 4], points: { show: false }, value: (u, v) => (v == null ? "—" : v + " ms") },
            { label: "deadline", stroke: "#c81e1e", width: 1.5, dash: [2, 4], points: { show: false }, value: (u, v) => (v == null ? "—" : v + " ms") },
          ],
          axes: [{ stroke: "#667085", grid: { stroke: "#eef0f3" } }, { label: "ms", stroke: "#667085", grid: { stroke: "#eef0f3" } }],
        },
        data,
        box
      );
    }

    let reloadTimer = null;
    function onChange(c) {
      if (String(c.address).toLowerCase() !== address.toLowerCase()) return;
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(load, 300);
    }
    live.listeners.add(onChange);
    load();
    return {
      refresh: load,
      dispose: () => {
        ac.abort();
        live.listeners.delete(onChange);
        clearTimeout(reloadTimer);
        if (chart) chart.destroy();
      },
    };
  }

  // ---------- cluster page ----------

  function clusterPage() {
    const ac = new AbortController();
    const root = el("div", { id: "cluster-page" }, el("div", { class: "loading" }, "Loading cluster…"));
    $app.append(el("h1", {}, "Cluster"), el("p", { class: "subtitle" }, "The oracle members that replicate verdicts with Raft and sign the epoch reports."), root);

    async function load() {
      let c, h;
      try {
        [c, h] = await Promise.all([api("/v1/cluster", ac.signal), api("/v1/health", ac.signal).catch((e) => ({ status: "unknown", problems: [e.message] }))]);
      } catch (e) {
        if (e.name !== "AbortError") fill(root, errorBox(e));
        return;
      }
      if (c.servedBy) document.getElementById("served-by").textContent = c.servedBy;
      const members = c.members || [];
      const voters = members.filter((m) => m.suffrage === "voter").length;
      const stat = (label, value, hint, id) =>
        el("div", { class: "stat" }, el("div", { class: "label" }, label), el("div", { class: "value", id }, value), hint ? el("div", { class: "hint" }, hint) : null);
      fill(root, 
        el("div", { class: "stats" },
          stat("Leader", c.leaderId || "none", "term " + c.term, "cluster-leader"),
          stat("Members", members.length, voters + " voters"),
          stat("Current epoch", c.currentEpoch, "open", "cluster-epoch"),
          stat("Last signed epoch", num(c.lastCompleteEpoch) ? c.lastCompleteEpoch : "—", "complete report"),
          stat("Signatures needed", c.reportThreshold + " of " + voters, "k of n"),
          stat("Nodes", fmtInt(c.nodeCount)),
          stat("Commit / applied", fmtInt(c.commitIndex), "applied " + fmtInt(c.appliedIndex))),
        card("Members",
          el("div", { class: "table-wrap" },
            el("table", { id: "members" },
              el("thead", {}, el("tr", {}, ["Member", "Role", "Suffrage", "Raft", "gRPC", "HTTP", "Signing key"].map((x) => el("th", {}, x)))),
              el("tbody", {},
                members.map((m) =>
                  el("tr", { dataset: { member: m.id } },
                    el("td", { class: "nowrap" }, el("b", {}, m.id)),
                    el("td", {}, m.leader ? el("span", { class: "badge ok" }, "leader") : el("span", { class: "badge neutral" }, "follower")),
                    el("td", {}, m.suffrage),
                    el("td", { class: "mono" }, m.raftAddress),
                    el("td", { class: "mono" }, m.grpcAddress),
                    el("td", { class: "mono" }, m.httpAddress),
                    el("td", { class: "mono", title: m.signerAddress }, m.signerAddress))))))),
        el("div", { style: "height:16px" }),
        card("Health of " + (c.servedBy || "this member"),
          el("dl", { class: "kv", id: "health" },
            el("dt", {}, "Status"), el("dd", {}, el("span", { class: "badge " + (h.status === "serving" ? "ok" : "bad") }, h.status)),
            el("dt", {}, "Raft state"), el("dd", {}, h.raftState || "—"),
            el("dt", {}, "Applied index"), el("dd", {}, fmtInt(h.appliedIndex)),
            el("dt", {}, "Leader"), el("dd", {}, h.leaderId || "unknown"),
            el("dt", {}, "Problems"), el("dd", {}, (h.problems || []).length ? (h.problems || []).join("; ") : "none")))
      );
    }
    load();
    const timer = setInterval(load, 5000);
    return { refresh: load, dispose: () => (ac.abort(), clearInterval(timer)) };
  }

  // ---------- feed page ----------

  function feedPage(epoch, nodeAddr) {
    const ac = new AbortController();
    const root = el("div", { id: "feed-page" }, el("div", { class: "loading" }, "Loading report…"));
    $app.append(
      el("h1", {}, epoch ? "Epoch " + epoch : "Latest report"),
      el("p", { class: "subtitle" }, "Per epoch, the reputation table is hashed into a Merkle root and each oracle member signs the report (EIP-712) after auditing the epoch's proofs."),
      root
    );

    function reportCard(r, title) {
      const sigs = r.signatures || [];
      const signedBy = new Set(sigs.map((s) => String(s.signerAddress).toLowerCase()));
      const signers = r.signers || [];
      const dom = r.domain || {};
      return el("section", { class: "card", id: "report", dataset: { epoch: r.epoch } },
        el("h2", {}, title, " ", r.complete ? el("span", { class: "badge ok" }, "complete") : el("span", { class: "badge warn" }, "collecting signatures")),
        el("p", {},
          el("span", { class: "progress" }, signers.map((s) => el("span", { class: signedBy.has(s.toLowerCase()) ? "on" : "" }))),
          " ", sigs.length + " of " + signers.length + " members signed; " + r.threshold + " needed"),
        el("dl", { class: "kv" },
          el("dt", {}, "Epoch / round"), el("dd", {}, r.epoch + " / " + r.round),
          el("dt", {}, "Timestamp"), el("dd", {}, fmtTime(num(r.timestamp) * 1000)),
          el("dt", {}, "Nodes (leaves)"), el("dd", {}, fmtInt(r.count)),
          el("dt", {}, "Merkle root"), el("dd", { class: "sig", id: "report-root" }, b64hex(r.root)),
          el("dt", {}, "EIP-712 digest"), el("dd", { class: "sig" }, b64hex(r.digest)),
          el("dt", {}, "Config digest"), el("dd", { class: "sig" }, b64hex(r.configDigest)),
          el("dt", {}, "Domain"), el("dd", {}, dom.name + " v" + dom.version + " · chain " + dom.chainId + " · contract ", el("span", { class: "mono" }, dom.verifyingContract))),
        el("h2", { style: "margin-top:16px" }, "Signatures"),
        el("div", { class: "table-wrap" },
          el("table", { id: "signatures" },
            el("thead", {}, el("tr", {}, ["Signer", "Member", "Signature (r‖s‖v)"].map((x) => el("th", {}, x)))),
            el("tbody", {},
              signers.map((addr) => {
                const s = sigs.find((x) => String(x.signerAddress).toLowerCase() === addr.toLowerCase());
                return el("tr", { dataset: { signer: addr } },
                  el("td", { class: "mono" }, addr),
                  el("td", { class: "nowrap" }, s ? s.memberId : el("span", { class: "badge neutral" }, "not yet")),
                  el("td", { class: "sig" }, s ? b64hex(s.signature) : "—"));
              })))));
    }

    const proofBox = el("div", { id: "proof-result" });
    async function lookupProof(ep, addr) {
      fill(proofBox, el("p", { class: "loading" }, "Looking up " + addr + "…"));
      try {
        const p = await api("/v1/feed/epochs/" + encodeURIComponent(ep) + "/nodes/" + encodeURIComponent(addr) + "/proof", ac.signal);
        fill(proofBox, 
          el("dl", { class: "kv" },
            el("dt", {}, "Node"), el("dd", {}, nodeLink(p.address)),
            el("dt", {}, "Score / status"), el("dd", {}, pct(p.scoreBp), " ", statusBadge(p.status)),
            el("dt", {}, "Leaf"), el("dd", { class: "sig" }, b64hex(p.leaf)),
            el("dt", {}, "Root"), el("dd", { class: "sig" }, b64hex(p.root)),
            el("dt", {}, "Proof"), el("dd", {}, el("ol", { class: "sig" }, (p.proof || []).map((h) => el("li", {}, b64hex(h)))))));
      } catch (e) {
        if (e.name !== "AbortError") fill(proofBox, errorBox(e));
      }
    }

    async function load() {
      try {
        let shown, latestComplete = null;
        if (epoch) {
          shown = (await api("/v1/feed/epochs/" + encodeURIComponent(epoch), ac.signal)).report;
        } else {
          shown = (await api("/v1/feed/latest?includeIncomplete=true", ac.signal)).report;
          if (!shown.complete) latestComplete = await api("/v1/feed/latest", ac.signal).then((r) => r.report, () => null);
        }
        const ep = shown.epoch;
        const epochInput = el("input", { type: "number", min: 1, value: ep, style: "width:110px", id: "epoch-input" });
        const addrInput = el("input", { class: "addr", placeholder: "0x… node address", value: nodeAddr || "", id: "proof-address" });
        const proofEpoch = latestComplete && !epoch ? latestComplete.epoch : ep;
        fill(root, 
          el("div", { class: "filters" },
            el("label", {}, "Epoch", epochInput),
            el("button", { onclick: () => (location.hash = "#/feed/" + encodeURIComponent(epochInput.value)) }, "Open"),
            epoch ? el("a", { href: "#/feed" }, "latest") : null),
          el("div", { class: "grid" },
            reportCard(shown, epoch ? "Report of epoch " + ep : shown.complete ? "Latest report (epoch " + ep + ")" : "Newest report (epoch " + ep + ")"),
            latestComplete ? reportCard(latestComplete, "Latest complete report (epoch " + latestComplete.epoch + ")") : null),
          card("Node proof in epoch " + proofEpoch,
            el("p", { class: "subtitle" }, "A reward contract checks a node's (address, score, status) leaf against the signed root with this Merkle proof."),
            el("div", { class: "filters" }, el("label", {}, "Node", addrInput),
              el("button", { onclick: () => addrInput.value.trim() && lookupProof(proofEpoch, addrInput.value.trim()) }, "Get proof")),
            proofBox)
        );
        if (nodeAddr) lookupProof(proofEpoch, nodeAddr);
      } catch (e) {
        if (e.name === "AbortError") return;
        fill(root, e.status === 404 && !epoch ? el("p", { class: "empty" }, "No epoch report has been published yet.") : errorBox(e));
      }
    }
    load();
    return { refresh: () => {}, dispose: () => ac.abort() };
  }

  // ---------- start ----------

  window.addEventListener("hashchange", route);
  route();
  watch();
})();
