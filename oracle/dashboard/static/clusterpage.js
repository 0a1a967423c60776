// The cluster page (#/cluster): the oracle members that replicate verdicts
// with Raft and sign the epoch reports, the cluster's state and the health
// of the member serving the page. It reloads every 5 s.

import { api, paths } from "./api.js";
import { el, fill } from "./dom.js";
import { fmtInt, num } from "./format.js";
import { card, errorBox, setServedBy } from "./widgets.js";

// clusterPage renders the cluster page into app and returns its
// {refresh, dispose}.
export function clusterPage(app) {
  const ac = new AbortController();
  const root = el("div", { id: "cluster-page" }, el("div", { class: "loading" }, "Loading cluster…"));
  app.append(el("h1", {}, "Cluster"), el("p", { class: "subtitle" }, "The oracle members that replicate verdicts with Raft and sign the epoch reports."), root);

  async function load() {
    let c, h;
    try {
      [c, h] = await Promise.all([api(paths.cluster, ac.signal), api(paths.health, ac.signal).catch((e) => ({ status: "unknown", problems: [e.message] }))]);
    } catch (e) {
      if (e.name !== "AbortError") fill(root, errorBox(e));
      return;
    }
    setServedBy(c);
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
