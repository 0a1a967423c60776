// The fleet page (#/): fleet statistics, nodes by class, the chart of fakes
// caught over time, the node table and the live change list. The server
// filters, orders and pages the table (GET /v1/nodes); only the address
// search runs in the page. Live changes update rows in place and the page
// of rows is read again at most every 3 s.

import { api, paths } from "./api.js";
import { barPaths, chartsLoaded, newChart, timeRange } from "./charts.js";
import { el, fill } from "./dom.js";
import { fmtInt, fmtTime, num, pct, shortAddr } from "./format.js";
import { liveState, recentChanges, subscribe } from "./live.js";
import { DIMENSIONS, STATUSES, STATUS_ENUM } from "./status.js";
import { card, errorBox, nodeLink, scoreCell, setServedBy, statusBadge } from "./widgets.js";

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

// fleetPage renders the fleet page into app and returns its
// {refresh, dispose}.
export function fleetPage(app) {
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

  app.append(
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
    if (!chartsLoaded()) {
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
    const bars = barPaths();
    chart = newChart(
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
      recentChanges().length === 0
        ? el("li", { class: "empty" }, liveState() === "on" ? "Watching for changes…" : "No changes seen yet.")
        : recentChanges().slice(0, 20).map((c) =>
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
      fleet = await api(paths.fleet, ac.signal);
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
      const r = await api(paths.nodes(p), ac.signal);
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

  // sortRows puts the page's rows back in the listing's order after a
  // change moved one (the server's order: ties by address, ascending but
  // for the ascending score order, which is the descending one read
  // backwards).
  function sortRows() {
    const addr = (n) => String(n.address).toLowerCase();
    const byAddr = (a, b) => (addr(a) < addr(b) ? -1 : addr(a) > addr(b) ? 1 : 0);
    const by = {
      "score desc": (a, b) => num(b.scoreBp) - num(a.scoreBp) || byAddr(a, b),
      score: (a, b) => num(a.scoreBp) - num(b.scoreBp) || byAddr(b, a),
      "updated desc": (a, b) => num(b.updatedAtUnixMs) - num(a.updatedAtUnixMs) || byAddr(a, b),
    }[table.order] || byAddr;
    rows.sort(by);
  }

  // A change updates its row in place at once, in its place in the page's
  // order; the page itself is read again at most every few seconds (the
  // row may move to another page, leave the filter, or another node come
  // in).
  let fleetTimer = null;
  let pageTimer = null;
  function onChange(c) {
    const row = rows.find((n) => n.address.toLowerCase() === String(c.address).toLowerCase());
    if (row) {
      row.scoreBp = c.newScoreBp;
      row.status = c.newStatus;
      row.updatedAtUnixMs = c.atUnixMs;
      if (c.reason) row.topReason = c.reason;
      sortRows();
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
  const unsubscribe = subscribe(onChange);

  const onResize = () => fleet && renderChart();
  window.addEventListener("resize", onResize);

  renderChanges();
  loadFleet();
  loadNodes();
  return {
    refresh: () => (loadFleet(), loadNodes()),
    dispose: () => {
      ac.abort();
      unsubscribe();
      window.removeEventListener("resize", onResize);
      clearTimeout(fleetTimer);
      clearTimeout(pageTimer);
      if (chart) chart.destroy();
    },
  };
}
