/**
 * The roofline SVG: well-formed XML, an <svg> root, one labelled point per row that does
 * arithmetic, the roof of every backend (min(matrix rate, intensity x bandwidth)), names escaped.
 */
import { describe, expect, it } from 'vitest';

import { SHAPE_PRESETS, presetCases } from '../../lib/bench/cases.js';
import type { Ceilings } from '../../lib/bench/ceilings.js';
import { microRow, timingOf } from '../../lib/bench/micro.js';
import type { MicroRow } from '../../lib/bench/results.js';
import { escapeXml, rooflineSvg } from '../../lib/bench/roofline-svg.js';

/** Checks that every tag is closed in order and every attribute is quoted; returns the element names. */
function parseXml(text: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  const body = text.replace(/^<\?xml[^>]*\?>/, '');
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<|&(?!(amp|lt|gt|quot|apos);)/g;
  let m: RegExpExecArray | null;
  while ((m = tag.exec(body)) !== null) {
    if (m[2] === undefined) throw new Error(`stray "${m[0]}" at ${m.index}: ${body.slice(m.index, m.index + 40)}`);
    const [, close, name, , selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else {
      names.push(name);
      if (!selfClose) stack.push(name);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(', ')}`);
  return names;
}

const cpu: Ceilings = { backend: 'cpu', device: 'CPU <test> & co', threads: 2, bandwidthGBps: 20, bandwidthHow: 'bw', matrixGflops: 200, matrixHow: 'gemm' };
const gpu: Ceilings = { backend: 'cuda', device: 'GPU', threads: 0, bandwidthGBps: 3000, bandwidthHow: 'copy', matrixGflops: 600000, matrixHow: 'mma' };

describe('roofline SVG', () => {
  const cases = presetCases(SHAPE_PRESETS['7b'], ['matmul', 'rmsnorm', 'embed', 'kv_append'], ['q8_0']);
  const rows: MicroRow[] = cases.map((c, i) => microRow(c, cpu, timingOf([1e-4 * (i + 1)]), 'k'));
  rows.push(microRow(cases[0]!, gpu, timingOf([1e-6]), 'k'));

  it('is well-formed SVG with a point per row that does arithmetic and a roof per backend', () => {
    const svg = rooflineSvg(rows, [cpu, gpu], { title: 'test <roofline>' });
    const names = parseXml(svg.trim());
    expect(names[0]).toBe('svg');
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    const withFlops = rows.filter((r) => r.measure.flops > 0);
    expect(withFlops.length).toBeLessThan(rows.length); // embed / kv_append do no arithmetic
    expect(svg.match(/<g class="point"/g)).toHaveLength(withFlops.length);
    for (const r of withFlops) expect(svg).toContain(`data-name="${r.name}"`);
    // the cuda row is a square, cpu rows circles
    expect(svg.match(/<g class="point" data-name="[^"]*" data-backend="cuda"><rect/g)).toHaveLength(1);
    // roofs: a sloped segment up to the ridge point, then flat at the matrix rate
    const roofs = [...svg.matchAll(/<path class="roof" data-backend="(\w+)" d="M [\d.]+ [\d.]+ L ([\d.]+) ([\d.]+) L ([\d.]+) ([\d.]+)"/g)];
    expect(roofs.map((r) => r[1])).toEqual(['cpu', 'cuda']);
    for (const r of roofs) expect(Number(r[3])).toBeCloseTo(Number(r[5]), 6); // flat after the ridge
    expect(svg).toContain('test &lt;roofline&gt;');
    expect(svg).toContain('no arithmetic, not plotted');
  });

  it('places a point at its intensity and rate: higher GFLOP/s is higher on the page', () => {
    const a = microRow(cases[0]!, cpu, timingOf([1e-3]), 'k');
    const b = { ...microRow(cases[0]!, cpu, timingOf([1e-4]), 'k'), name: 'faster' };
    const svg = rooflineSvg([a, b], [cpu]);
    const y = (name: string): number => Number(new RegExp(`data-name="${name}"[^>]*><circle cx="[\\d.]+" cy="([\\d.]+)"`).exec(svg)![1]);
    expect(y('faster')).toBeLessThan(y(a.name)); // SVG y grows downwards
  });

  it('escapes XML', () => {
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
  });
});
