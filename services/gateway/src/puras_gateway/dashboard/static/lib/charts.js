// Small SVG charts of spend: bars per day and horizontal bars per name (skill, model).
// Hand-written SVG through Preact, so every label is escaped like any other text. Bars are
// placed in percentages of the chart's width rather than in a scaled viewBox: text keeps
// its size at phone width instead of shrinking with the drawing. Each chart carries its
// figures twice for those who cannot see it: an exact <title> per bar and a table.
import { html } from "./ui.js";
import { usd } from "./format.js";

const pct = (n) => `${Math.round(n * 10000) / 100}%`;

/** Every UTC date from `fromIso` up to (excluding) `toIso`, as "YYYY-MM-DD". */
export function daysBetween(fromIso, toIso) {
  const out = [];
  const end = new Date(toIso).getTime();
  const d = new Date(fromIso);
  d.setUTCHours(0, 0, 0, 0);
  // A range ending exactly at midnight excludes that day; any later instant includes it.
  while (d.getTime() < end && out.length < 400) {
    out.push(d.toISOString().slice(0, 10));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return out;
}

function calls(n) {
  return `${n} call${n === 1 ? "" : "s"}`;
}

/** The figures of a chart as a table, folded away under its figure for sighted users. */
function FigureTable({ caption, keyLabel, rows }) {
  return html`<details class="chart-table">
    <summary>${caption} as a table</summary>
    <div class="table-wrap">
      <table>
        <caption class="sr-only">${caption}</caption>
        <thead><tr><th scope="col">${keyLabel}</th><th scope="col" class="num">Spend</th><th scope="col" class="num">Calls</th></tr></thead>
        <tbody>
          ${rows.map(
            (r) => html`<tr key=${r.key}><th scope="row">${r.key}</th><td class="num">${usd(r.billed_micros)}</td><td class="num">${r.calls}</td></tr>`,
          )}
        </tbody>
      </table>
    </div>
  </details>`;
}

/**
 * Spend per UTC day over [from, to); days without a billed call are drawn as empty slots.
 * @param {{rows: Array<{key: string, billed_micros: number, calls: number}>, from: string, to: string, title: string}} props
 */
export function DayBars({ rows, from, to, title }) {
  const byDay = new Map(rows.map((r) => [r.key, r]));
  const days = daysBetween(from, to);
  const all = days.map((d) => byDay.get(d) || { key: d, billed_micros: 0, calls: 0 });
  const peak = Math.max(0, ...all.map((r) => r.billed_micros));
  const max = Math.max(1, peak);
  const total = all.reduce((s, r) => s + r.billed_micros, 0);
  const height = 160;
  const n = Math.max(all.length, 1);
  const slot = 1 / n;
  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <svg class="chart-svg" width="100%" height=${height + 24} role="img"
      aria-label=${`${title}: ${usd(total)} over ${all.length} days, at most ${usd(peak)} a day`}>
      <line class="chart-axis" x1="0" x2="100%" y1=${height} y2=${height} />
      ${all.map((r, i) => {
        const h = r.billed_micros ? Math.max(2, (height - 8) * (r.billed_micros / max)) : 0;
        return html`<g key=${r.key}>
          <rect class="chart-slot" x=${pct(i * slot)} width=${pct(slot)} y="0" height=${height}>
            <title>${`${r.key}: ${usd(r.billed_micros)}, ${calls(r.calls)}`}</title>
          </rect>
          <rect class="chart-bar" x=${pct(i * slot + slot * 0.1)} width=${pct(slot * 0.8)} y=${height - h} height=${h}>
            <title>${`${r.key}: ${usd(r.billed_micros)}, ${calls(r.calls)}`}</title>
          </rect>
        </g>`;
      })}
      <text class="chart-label" x="0" y=${height + 18}>${days[0] || ""}</text>
      <text class="chart-label" x="100%" y=${height + 18} text-anchor="end">${days[days.length - 1] || ""}</text>
    </svg>
    <${FigureTable} caption=${title} keyLabel="Day (UTC)" rows=${all.filter((r) => r.calls || r.billed_micros)} />
  </figure>`;
}

/**
 * Spend per name (a skill, a model), largest first, each bar labelled with its figure.
 * @param {{rows: Array<{key: string, billed_micros: number, calls: number}>, title: string, keyLabel: string}} props
 */
export function NameBars({ rows, title, keyLabel }) {
  const sorted = [...rows].sort((a, b) => b.billed_micros - a.billed_micros || (a.key < b.key ? -1 : 1));
  const max = Math.max(1, ...sorted.map((r) => r.billed_micros));
  const row = 40;
  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <svg class="chart-svg" width="100%" height=${Math.max(row, sorted.length * row)} role="img"
      aria-label=${`${title}: ${sorted.map((r) => `${r.key} ${usd(r.billed_micros)}`).join(", ")}`}>
      ${sorted.map((r, i) => {
        const y = i * row;
        const label = `${r.key}: ${usd(r.billed_micros)}, ${calls(r.calls)}`;
        return html`<g key=${r.key}>
          <title>${label}</title>
          <text class="chart-name" x="0" y=${y + 14}>${r.key}</text>
          <text class="chart-label" x="100%" y=${y + 14} text-anchor="end">${usd(r.billed_micros)}</text>
          <rect class="chart-track" x="0" y=${y + 20} width="100%" height="12" />
          <rect class="chart-bar" x="0" y=${y + 20} width=${pct(Math.max(0.005, r.billed_micros / max))} height="12" />
        </g>`;
      })}
    </svg>
    <${FigureTable} caption=${title} keyLabel=${keyLabel} rows=${sorted} />
  </figure>`;
}
