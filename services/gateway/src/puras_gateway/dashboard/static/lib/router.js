// Hash routes ("#/jobs/job_123?status=running"): served by one static page with no
// server-side fallback, and no secret ever goes into them.
import { useEffect, useState } from "./ui.js";

/** @returns {{path: string, query: URLSearchParams}} */
export function currentLocation() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  return { path: path || "/", query: new URLSearchParams(q < 0 ? "" : raw.slice(q + 1)) };
}

/** Re-renders on every hash change. */
export function useLocation() {
  const [loc, setLoc] = useState(currentLocation);
  useEffect(() => {
    const on = () => setLoc(currentLocation());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return loc;
}

/**
 * Goes to a route, e.g. navigate("/jobs", {status: "failed"}).
 * @param {string} path
 * @param {Record<string, string | number | null | undefined>} [query]
 * @param {{replace?: boolean}} [opts]
 */
export function navigate(path, query, opts = {}) {
  const target = "#" + href(path, query).slice(1);
  if (opts.replace) history.replaceState(null, "", target);
  else location.hash = target.slice(1);
  if (opts.replace) dispatchEvent(new HashChangeEvent("hashchange"));
}

/** The href of a route, for <a href=...> (links keep working with the keyboard). */
export function href(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return "#" + path + (s ? "?" + s : "");
}

/**
 * Matches a path against patterns like "/jobs/:id".
 * @returns {Record<string, string> | null}
 */
export function match(pattern, path) {
  const p = pattern.split("/").filter(Boolean);
  const a = path.split("/").filter(Boolean);
  if (p.length !== a.length) return null;
  const params = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(":")) params[p[i].slice(1)] = decodeURIComponent(a[i]);
    else if (p[i] !== a[i]) return null;
  }
  return params;
}
