/**
 * Compares a result with its reference (style.md rule 2): elementwise
 * |got - ref| <= atol + rtol * |ref| (llm.c), plus an aggregate bound on the normalized mean
 * squared error NMSE = sum((got - ref)^2) / sum(ref^2) (ggml). NaN matches only NaN and an
 * infinity only the same infinity.
 *
 * On failure it throws an Error whose message holds the evidence: the case description, the
 * tolerances, the first 5 pairs, the worst index and its values, and the faults (listing
 * stops after 10; the total is counted). It uses no test framework, so plain `node --test`
 * files (the GPU runs) can use it too.
 */

export interface Tolerance {
  atol: number;
  rtol: number;
  /** Upper bound on NMSE; omit to check elementwise only. */
  nmse?: number;
}

export interface CloseReport {
  /** Elements outside atol + rtol * |ref|. */
  faults: number;
  maxAbsError: number;
  /** The index with the largest excess over its own tolerance (or -1 when empty). */
  worstIndex: number;
  nmse: number;
}

const SHOW_FIRST = 5;
const LIST_FAULTS = 10;

function isMatchingSpecial(got: number, ref: number): boolean {
  return (Number.isNaN(got) && Number.isNaN(ref)) || (!Number.isFinite(ref) && got === ref);
}

/** Within tolerance (a non-finite ref only matches itself, see isMatchingSpecial). */
function isWithin(got: number, ref: number, tol: Tolerance): boolean {
  return Number.isFinite(ref) && Math.abs(got - ref) <= tol.atol + tol.rtol * Math.abs(ref);
}

/** Measures without throwing. */
export function compareClose(got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance): CloseReport {
  let faults = 0;
  let maxAbsError = 0;
  let worstIndex = ref.length > 0 ? 0 : -1;
  let worstExcess = -Infinity;
  let errSq = 0;
  let refSq = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i] as number;
    const r = ref[i] as number;
    if (isMatchingSpecial(g, r)) continue;
    const err = Math.abs(g - r); // NaN when either is NaN (a fault below)
    const within = isWithin(g, r, tol);
    // How far past its own bound; NaN and a missed infinity count as the worst possible.
    const excess = Number.isFinite(r) && !Number.isNaN(err) ? err - (tol.atol + tol.rtol * Math.abs(r)) : Infinity;
    if (!within) faults++;
    if (excess > worstExcess) {
      worstExcess = excess;
      worstIndex = i;
    }
    if (err > maxAbsError || Number.isNaN(err)) maxAbsError = err;
    errSq += err * err;
    if (Number.isFinite(r)) refSq += r * r;
  }
  // All-zero reference: fall back to the plain mean squared error.
  const nmse = refSq > 0 ? errSq / refSq : errSq / Math.max(ref.length, 1);
  return { faults, maxAbsError, worstIndex, nmse };
}

function fmt(x: number | undefined): string {
  return x === undefined ? 'undefined' : x.toPrecision(9);
}

/** Throws with evidence unless `got` matches `ref` within `tol`. `what` describes the case. */
export function assertClose(got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance, what: string): CloseReport {
  const tolText = `atol ${tol.atol}, rtol ${tol.rtol}${tol.nmse !== undefined ? `, nmse <= ${tol.nmse}` : ''}`;
  if (got.length !== ref.length) {
    throw new Error(`${what}: length ${got.length} != reference length ${ref.length}`);
  }
  const report = compareClose(got, ref, tol);
  const nmseBad = tol.nmse !== undefined && !(report.nmse <= tol.nmse);
  if (report.faults === 0 && !nmseBad) return report;

  const lines: string[] = [`${what}: ${report.faults} of ${ref.length} elements out of tolerance (${tolText}); nmse ${report.nmse.toExponential(3)}`];
  const first: string[] = [];
  for (let i = 0; i < Math.min(SHOW_FIRST, ref.length); i++) first.push(`[${i}] ${fmt(got[i])} vs ${fmt(ref[i])}`);
  lines.push(`  first (got vs ref): ${first.join(', ')}`);
  const w = report.worstIndex;
  lines.push(`  worst: [${w}] got ${fmt(got[w])} ref ${fmt(ref[w])} |diff| ${fmt(Math.abs((got[w] ?? NaN) - (ref[w] ?? NaN)))}`);
  let listed = 0;
  for (let i = 0; i < ref.length && listed < LIST_FAULTS; i++) {
    const g = got[i] as number;
    const r = ref[i] as number;
    if (isMatchingSpecial(g, r)) continue;
    if (!isWithin(g, r, tol)) {
      lines.push(`  fault [${i}] got ${fmt(g)} ref ${fmt(r)}`);
      listed++;
    }
  }
  if (report.faults > listed) lines.push(`  ... ${report.faults - listed} more faults`);
  throw new Error(lines.join('\n'));
}
