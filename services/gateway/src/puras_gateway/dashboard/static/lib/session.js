// The credential lives in sessionStorage only: gone when the tab closes, never in a URL
// (routes are hash paths without secrets), never sent anywhere but the Authorization
// header of a same-origin /v1 call.
const KEY = "puras.session";

/** @typedef {{kind: "key" | "admin", token: string, label: string}} Session */

/** @returns {Session | null} */
export function loadSession() {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw);
    if ((s.kind === "key" || s.kind === "admin") && typeof s.token === "string") return s;
  } catch (_) {
    /* a damaged entry means signed out */
  }
  return null;
}

/** @param {Session} s */
export function saveSession(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

/** What a key looks like on screen: its public prefix, never its secret. */
export function keyLabel(token) {
  const dot = token.indexOf(".");
  return dot > 0 ? token.slice(0, dot) : "admin";
}
