// Access to the oracle's public REST API (/v1): the paths the dashboard
// reads, a JSON GET helper that turns failures into APIError, and the
// opening of the GET /v1/watch/scores stream.

// APIError is a failed API call: the HTTP status (0 when the member could
// not be reached), the RPC code and the server's message.
export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// paths are the REST resources the dashboard reads.
export const paths = {
  fleet: "/v1/fleet",
  nodes: (params) => "/v1/nodes?" + params.toString(),
  node: (address) => "/v1/nodes/" + encodeURIComponent(address),
  cluster: "/v1/cluster",
  health: "/v1/health",
  feedLatest: "/v1/feed/latest",
  feedLatestIncomplete: "/v1/feed/latest?includeIncomplete=true",
  feedEpoch: (epoch) => "/v1/feed/epochs/" + encodeURIComponent(epoch),
  nodeProof: (epoch, address) => "/v1/feed/epochs/" + encodeURIComponent(epoch) + "/nodes/" + encodeURIComponent(address) + "/proof",
  watchScores: "/v1/watch/scores",
};

// api GETs a JSON resource. It rejects with APIError for an unreachable
// member, an error status or a body that is not JSON, and passes an
// AbortError through unchanged.
export async function api(path, signal) {
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

// openScoreStream opens the newline-delimited JSON stream of score changes
// and resolves to the response once its headers arrived with a success
// status and a readable body.
export async function openScoreStream() {
  const resp = await fetch(paths.watchScores, { headers: { Accept: "application/json" } });
  if (!resp.ok || !resp.body) throw new Error("status " + resp.status);
  return resp;
}
