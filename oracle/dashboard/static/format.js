// Formatting of API values for display: numbers (protojson writes int64 as
// strings), basis points, UTC times, shortened addresses and hashes, and
// base64 bytes as 0x hex.

// num reads a number that may be missing or a protojson int64 string.
export function num(x) {
  return Number(x || 0);
}

// pct shows basis points (0..10000) as a percentage.
export function pct(bp) {
  return (Number(bp || 0) / 100).toFixed(2) + "%";
}

// level names the colour band of a score in basis points.
export function level(bp) {
  bp = Number(bp || 0);
  return bp >= 8000 ? "hi" : bp >= 5000 ? "mid" : "lo";
}

export function fmtInt(x) {
  return num(x).toLocaleString("en-US");
}

// fmtTime shows Unix milliseconds as a UTC time, "—" when unset.
export function fmtTime(ms) {
  ms = num(ms);
  if (!ms) return "—";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function shortAddr(a) {
  return a && a.length > 14 ? a.slice(0, 8) + "…" + a.slice(-6) : a || "";
}

export function shortHex(h, n) {
  n = n || 10;
  return h && h.length > 2 * n + 3 ? h.slice(0, n + 2) + "…" + h.slice(-n) : h || "";
}

// b64hex shows protojson bytes (base64) as 0x hex.
export function b64hex(b64) {
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
