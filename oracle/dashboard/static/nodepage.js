// The node page (#/nodes/<address>[?c=<challenge>]): a node's status and
// the reasons and evidence behind it, its score dimensions, counters, its
// leaf in the latest signed report, the commit latency chart, the challenge
// history (the challenge c highlighted) and its devices' fingerprints. It
// reloads when a live change concerns the node.

import { api, paths } from "./api.js";
import { chartsLoaded, newChart, timeRange } from "./charts.js";
import { el, fill } from "./dom.js";
import { b64hex, fmtInt, fmtTime, num, pct, shortAddr, shortHex } from "./format.js";
import { subscribe } from "./live.js";
import { DIMENSIONS, STATUS_HELP, statusName } from "./status.js";
import { bar, card, errorBox, nodeLink, setServedBy, statusBadge } from "./widgets.js";

// nodePage renders the page of the node at address into app, highlighting
// the challenge focusChallenge if given, and returns its {refresh, dispose}.
export function nodePage(app, address, focusChallenge) {
  const ac = new AbortController();
  let chart = null;
  const root = el("div", { id: "node-page" }, el("div", { class: "loading" }, "Loading node " + address + "…"));
  app.append(root);

  async function load() {
    let resp;
    try {
      resp = await api(paths.node(address), ac.signal);
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
      const latest = await api(paths.feedLatest, ac.signal);
      const ep = latest.report.epoch;
      const p = await api(paths.nodeProof(ep, addr), ac.signal);
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
    if (!chartsLoaded() || ch.length === 0) {
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
    chart = newChart(
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
  const unsubscribe = subscribe(onChange);
  load();
  return {
    refresh: load,
    dispose: () => {
      ac.abort();
      unsubscribe();
      clearTimeout(reloadTimer);
      if (chart) chart.destroy();
    },
  };
}
