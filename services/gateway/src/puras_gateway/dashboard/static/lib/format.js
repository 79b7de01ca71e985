// Formatting shared by every page: money in integer micros, times, sizes.

/** 1 USD = 1,000,000 micros. Shows enough digits for sub-cent LLM costs. */
export function usd(micros) {
  if (micros === null || micros === undefined) return "–";
  const n = Number(micros) / 1e6;
  const digits = Math.abs(n) < 0.01 && n !== 0 ? 6 : Math.abs(n) < 1 ? 4 : 2;
  return (n < 0 ? "−$" : "$") + Math.abs(n).toFixed(digits);
}

export function micros(n) {
  return n === null || n === undefined ? "–" : `${Number(n).toLocaleString("en-US")} µ$`;
}

/** An ISO time as the viewer's local time; the ISO text stays in the title attribute. */
export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "–";
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(s)) return String(iso);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Milliseconds between two ISO times, as "1.23 s" / "850 ms". */
export function duration(startIso, endIso) {
  if (!startIso || !endIso) return "–";
  const ms = new Date(endIso).getTime() - new Date(startIso).getTime();
  if (!Number.isFinite(ms)) return "–";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}
