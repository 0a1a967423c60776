// DOM construction helpers for the dashboard. Every value passed as a child
// is inserted as text (never parsed as HTML): strings from the API, such as
// node-reported device names, are untrusted.

// el builds an element: el("td", {class: "num"}, "text", childNode, ...).
// Attributes that are undefined, null or false are left out; "on…" keys add
// event listeners and "dataset" sets data-* attributes.
export function el(tag, attrs, ...children) {
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
export function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
}
