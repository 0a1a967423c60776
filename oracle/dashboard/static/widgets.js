// Small page parts shared by the views: status badges, score bars, node
// links, cards, error boxes, and the "served by" footer.

import { el } from "./dom.js";
import { level, pct } from "./format.js";
import { statusName } from "./status.js";

export function statusBadge(s, big) {
  const n = statusName(s);
  return el("span", { class: "badge " + n + (big ? " big" : ""), dataset: { status: n } }, n);
}

// bar is a horizontal bar for basis points, coloured by level unless cls
// is given.
export function bar(bp, cls, wide) {
  const w = Math.max(0, Math.min(100, Number(bp || 0) / 100));
  return el("span", { class: "bar" + (wide ? " wide" : "") }, el("span", { class: cls || level(bp), style: "width:" + w + "%" }));
}

export function scoreCell(bp) {
  return el("div", { class: "scorecell" }, el("span", {}, pct(bp)), bar(bp));
}

export function nodeLink(addr, text) {
  return el("a", { href: "#/nodes/" + addr, class: "mono", title: addr }, text || addr);
}

export function errorBox(e) {
  return el("div", { class: "error", role: "alert" }, e.status === 404 ? "Not found: " : "Error: ", e.message);
}

export function card(title, ...children) {
  return el("section", { class: "card" }, title ? el("h2", {}, title) : null, ...children);
}

// setServedBy shows in the footer which oracle member answered (the
// servedBy field of a response's read metadata).
export function setServedBy(read) {
  if (read && read.servedBy) document.getElementById("served-by").textContent = read.servedBy;
}
