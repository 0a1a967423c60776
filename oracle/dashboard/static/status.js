// The oracle's vocabulary for nodes: the four statuses (as the page names
// them, as the API's enum names them, and what each means) and the four
// score dimensions.

export const STATUSES = ["trusted", "probation", "suspect", "rejected"];

export const STATUS_ENUM = {
  trusted: "NODE_STATUS_TRUSTED",
  probation: "NODE_STATUS_PROBATION",
  suspect: "NODE_STATUS_SUSPECT",
  rejected: "NODE_STATUS_REJECTED",
};

export const STATUS_HELP = {
  trusted: "Enough passing evidence across every dimension. Schedulers can use it and reward contracts pay it.",
  probation: "New or recently reset: not enough evidence yet to be trusted.",
  suspect: "Recent failures. Schedulers should avoid it until it recovers.",
  rejected: "Failed identity or integrity checks. Rewards should not be paid.",
  unspecified: "No status recorded.",
};

// DIMENSIONS: [key in the API, label, what it checks].
export const DIMENSIONS = [
  ["identity", "Identity", "unique, anchored, consistent fingerprint"],
  ["capacity", "Capacity", "meets its claimed class's timing"],
  ["liveness", "Liveness", "answers challenges over time"],
  ["correctness", "Correctness", "work proofs are valid"],
];

// statusName turns an API status (NODE_STATUS_TRUSTED) into its page name
// (trusted); a missing status is "unspecified".
export function statusName(s) {
  if (!s) return "unspecified";
  return String(s).replace("NODE_STATUS_", "").toLowerCase();
}
