// Live score changes: reads the newline-delimited JSON stream of
// GET /v1/watch/scores, keeps the most recent changes, tells subscribed
// views about each one and shows the connection state in the top bar. While
// the stream is not confirmed open the page polls instead, and the stream is
// retried with exponential backoff.

import { openScoreStream } from "./api.js";

const live = {
  state: "connecting",
  listeners: new Set(),
  recent: [], // newest first
  backoff: 2000,
  pollTimer: null,
  poll: null, // called every few seconds while polling
};

// liveState is "connecting", "on" (streaming) or "poll".
export function liveState() {
  return live.state;
}

// recentChanges returns the last 50 changes seen, newest first.
export function recentChanges() {
  return live.recent;
}

// subscribe calls fn with every score change until the returned function
// is called.
export function subscribe(fn) {
  live.listeners.add(fn);
  return () => live.listeners.delete(fn);
}

// startLive opens the stream; poll is called every 5 s while the stream is
// down.
export function startLive(poll) {
  live.poll = poll;
  watch();
}

function setLive(state, text) {
  live.state = state;
  const box = document.getElementById("live");
  box.className = "live " + state;
  document.getElementById("live-text").textContent = text;
}

function emitChange(c) {
  live.recent.unshift(c);
  live.recent.length = Math.min(live.recent.length, 50);
  for (const fn of live.listeners) fn(c);
}

async function watch() {
  // Poll until the stream is confirmed open.
  startPolling();
  let resp;
  try {
    resp = await openScoreStream();
  } catch (e) {
    return retryWatch("stream unavailable: " + e.message);
  }
  setLive("on", "live");
  live.backoff = 2000;
  stopPolling();
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        let msg;
        try {
          msg = JSON.parse(line);
        } catch (e) {
          continue;
        }
        if (msg.error) throw new Error(msg.error.message || "stream error");
        if (msg.result && msg.result.change) emitChange(msg.result.change);
      }
    }
    retryWatch("stream ended");
  } catch (e) {
    retryWatch(e.message);
  }
}

function retryWatch(why) {
  setLive("poll", "polling (" + why + ")");
  startPolling();
  setTimeout(watch, live.backoff);
  live.backoff = Math.min(live.backoff * 2, 60000);
}

function startPolling() {
  if (live.pollTimer) return;
  live.pollTimer = setInterval(() => {
    if (live.poll) live.poll();
  }, 5000);
}

function stopPolling() {
  clearInterval(live.pollTimer);
  live.pollTimer = null;
}
