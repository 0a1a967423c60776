// The feed page (#/feed[/<epoch>][?node=<address>]): a signed epoch report
// (the newest, or the epoch asked for) with its signatures, the latest
// complete report beside a newest one still collecting signatures, and the
// Merkle proof of a node's leaf.

import { api, paths } from "./api.js";
import { el, fill } from "./dom.js";
import { b64hex, fmtInt, fmtTime, num, pct } from "./format.js";
import { card, errorBox, nodeLink, statusBadge } from "./widgets.js";

// feedPage renders the report of epoch (the newest when empty) into app,
// with the proof of nodeAddr if given, and returns its {refresh, dispose}.
export function feedPage(app, epoch, nodeAddr) {
  const ac = new AbortController();
  const root = el("div", { id: "feed-page" }, el("div", { class: "loading" }, "Loading report…"));
  app.append(
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
      const p = await api(paths.nodeProof(ep, addr), ac.signal);
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
        shown = (await api(paths.feedEpoch(epoch), ac.signal)).report;
      } else {
        shown = (await api(paths.feedLatestIncomplete, ac.signal)).report;
        if (!shown.complete) latestComplete = await api(paths.feedLatest, ac.signal).then((r) => r.report, () => null);
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
