/**
 * A roofline chart as a standalone SVG: x = arithmetic intensity (FLOP per byte moved), y =
 * attained GFLOP/s, both log scale. Each backend's roof is min(matrix rate, intensity x memory
 * bandwidth), drawn as a line with its ridge point; each benchmark is a labelled point (ops that
 * do no arithmetic, such as embed or kv_append, have no place on it and are listed below).
 */
import type { Ceilings } from './ceilings.js';
import type { MicroRow } from './results.js';

const W = 1100;
const H = 720;
const M = { left: 80, right: 30, top: 50, bottom: 110 };

const OP_COLORS: Readonly<Record<string, string>> = {
  matmul: '#1f77b4',
  attention: '#d62728',
  rmsnorm: '#2ca02c',
  rope: '#9467bd',
  swiglu: '#ff7f0e',
  add: '#8c564b',
  embed: '#e377c2',
  kv_append: '#7f7f7f',
  last_row: '#bcbd22',
};
const ROOF_COLORS = ['#222222', '#17becf', '#7f3c8d'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function decades(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

function tickLabel(v: number): string {
  if (v >= 1e3 || v < 1e-2) return `1e${Math.round(Math.log10(v))}`;
  return String(v);
}

export interface RooflineOptions {
  readonly title?: string;
}

/** The SVG text of the roofline of `rows` under the roofs of `ceilings`. */
export function rooflineSvg(rows: readonly MicroRow[], ceilings: readonly Ceilings[], opts: RooflineOptions = {}): string {
  const pts = rows.filter((r) => r.measure.flops > 0 && r.measure.gflops > 0);
  const noFlops = rows.filter((r) => !(r.measure.flops > 0));
  const ai = pts.map((r) => r.measure.flops / r.measure.bytes);
  const ridges = ceilings.map((c) => c.matrixGflops / c.bandwidthGBps);
  const xs = [...ai, ...ridges].filter((v) => v > 0 && Number.isFinite(v));
  const ys = [...pts.map((r) => r.measure.gflops), ...ceilings.map((c) => c.matrixGflops)].filter((v) => v > 0 && Number.isFinite(v));
  const xLo = 10 ** Math.floor(Math.log10(Math.min(...xs, 1) / 2));
  const xHi = 10 ** Math.ceil(Math.log10(Math.max(...xs, 1) * 4));
  const yLo = 10 ** Math.floor(Math.log10(Math.min(...ys, 1) / 2));
  const yHi = 10 ** Math.ceil(Math.log10(Math.max(...ys, 1) * 2));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const X = (v: number): number => M.left + ((Math.log10(v) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo))) * pw;
  const Y = (v: number): number => M.top + ph - ((Math.log10(v) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * ph;
  const n = (v: number): string => v.toFixed(1);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(opts.title ?? 'Roofline')}</text>`);
  // grid and axes
  out.push('<g class="grid" stroke="#e4e4e4">');
  for (const t of decades(xLo, xHi)) if (t >= xLo && t <= xHi) out.push(`<line x1="${n(X(t))}" y1="${M.top}" x2="${n(X(t))}" y2="${M.top + ph}"/>`);
  for (const t of decades(yLo, yHi)) if (t >= yLo && t <= yHi) out.push(`<line x1="${M.left}" y1="${n(Y(t))}" x2="${M.left + pw}" y2="${n(Y(t))}"/>`);
  out.push('</g>');
  out.push(`<rect class="frame" x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  out.push('<g class="ticks" fill="#333">');
  for (const t of decades(xLo, xHi)) if (t >= xLo && t <= xHi) out.push(`<text x="${n(X(t))}" y="${M.top + ph + 16}" text-anchor="middle">${tickLabel(t)}</text>`);
  for (const t of decades(yLo, yHi)) if (t >= yLo && t <= yHi) out.push(`<text x="${M.left - 6}" y="${n(Y(t) + 4)}" text-anchor="end">${tickLabel(t)}</text>`);
  out.push('</g>');
  out.push(`<text x="${M.left + pw / 2}" y="${M.top + ph + 36}" text-anchor="middle" font-size="13">arithmetic intensity (FLOP per byte moved)</text>`);
  out.push(`<text transform="translate(20 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="13">attained GFLOP/s</text>`);

  // roofs: min(matrix, I x bandwidth)
  ceilings.forEach((c, i) => {
    const color = ROOF_COLORS[i % ROOF_COLORS.length]!;
    const ridge = c.matrixGflops / c.bandwidthGBps;
    const x0 = Math.max(xLo, yLo / c.bandwidthGBps);
    const path = `M ${n(X(x0))} ${n(Y(x0 * c.bandwidthGBps))} L ${n(X(ridge))} ${n(Y(c.matrixGflops))} L ${n(X(xHi))} ${n(Y(c.matrixGflops))}`;
    out.push(`<path class="roof" data-backend="${c.backend}" d="${path}" fill="none" stroke="${color}" stroke-width="2.5"/>`);
    out.push(
      `<text class="roof-label" x="${n(X(xHi) - 4)}" y="${n(Y(c.matrixGflops) - 6)}" text-anchor="end" fill="${color}">` +
        `${escapeXml(`${c.backend}: ${c.matrixGflops.toFixed(0)} GFLOP/s, ${c.bandwidthGBps.toFixed(1)} GB/s (ridge ${ridge.toFixed(1)} FLOP/B)`)}</text>`,
    );
  });

  // points
  out.push('<g class="points">');
  pts.forEach((r, i) => {
    const x = X(ai[i]!);
    const y = Y(r.measure.gflops);
    const color = OP_COLORS[r.op] ?? '#000';
    const tip = escapeXml(`${r.backend} ${r.name}: ${r.measure.gflops.toFixed(2)} GFLOP/s, ${r.measure.gbps.toFixed(2)} GB/s, ratio ${((r.ratio ?? 0) * 100).toFixed(1)}%`);
    const shape =
      r.backend === 'cuda'
        ? `<rect x="${n(x - 3.5)}" y="${n(y - 3.5)}" width="7" height="7" fill="${color}"><title>${tip}</title></rect>`
        : `<circle cx="${n(x)}" cy="${n(y)}" r="3.5" fill="${color}"><title>${tip}</title></circle>`;
    out.push(`<g class="point" data-name="${escapeXml(r.name)}" data-backend="${r.backend}">${shape}`);
    out.push(`<text x="${n(x + 5)}" y="${n(y - 4)}" font-size="8" fill="${color}">${escapeXml(r.name)}</text></g>`);
  });
  out.push('</g>');

  // legend: ops, backends, rows not on the chart
  const ops = [...new Set(rows.map((r) => r.op))];
  let lx = M.left;
  const ly = H - 50;
  out.push('<g class="legend">');
  for (const op of ops) {
    out.push(`<circle cx="${lx + 5}" cy="${ly}" r="4" fill="${OP_COLORS[op] ?? '#000'}"/><text x="${lx + 12}" y="${ly + 4}">${escapeXml(op)}</text>`);
    lx += 20 + op.length * 7;
  }
  out.push(`<text x="${lx + 10}" y="${ly + 4}">circle: cpu, square: cuda</text>`);
  if (noFlops.length > 0) {
    const names = noFlops.map((r) => `${r.backend} ${r.name}`).join(', ');
    const text = `no arithmetic, not plotted (memory only, see the table): ${names}`;
    out.push(`<text x="${M.left}" y="${H - 28}" font-size="9">${escapeXml(text.length > 220 ? `${text.slice(0, 217)}...` : text)}</text>`);
  }
  out.push('</g>');
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
