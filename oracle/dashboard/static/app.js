// TrueGPU dashboard: a single page over the public REST API (/v1), written
// as plain JavaScript modules that the browser loads directly. This entry
// module routes the URL fragment to a view (#/ fleet, #/nodes/<address>,
// #/cluster, #/feed) and starts the live score updates. A view renders into
// <main id="app"> and returns {refresh(), dispose()}: refresh reloads its
// data (used while live updates fall back to polling), dispose stops its
// requests, timers and subscriptions when the page changes.

import { clusterPage } from "./clusterpage.js";
import { fill } from "./dom.js";
import { feedPage } from "./feedpage.js";
import { fleetPage } from "./fleetpage.js";
import { startLive } from "./live.js";
import { nodePage } from "./nodepage.js";
import { errorBox } from "./widgets.js";

const $app = document.getElementById("app");

let current = null; // the view shown: {refresh(), dispose()}

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
  if (parts.length === 0) current = fleetPage($app);
  else if (parts[0] === "nodes" && parts[1]) current = nodePage($app, decodeURIComponent(parts[1]), params.get("c"));
  else if (parts[0] === "cluster") (nav = "cluster"), (current = clusterPage($app));
  else if (parts[0] === "feed") (nav = "feed"), (current = feedPage($app, parts[1], params.get("node")));
  else $app.append(errorBox({ status: 404, message: "no page at #" + parts.join("/") }));
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
}

window.addEventListener("hashchange", route);
route();
startLive(() => {
  if (current && current.refresh) current.refresh();
});
