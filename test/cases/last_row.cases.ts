/**
 * last_row cases: a step keeps only its last row (decode/prefill logits) or, when it asks for
 * every row (perplexity), all of them up to the session's maxOutputRows; alone and followed by
 * a matmul (as the logits head), whose buffers are sized for the kept rows only.
 */
import { vars } from '../helpers/op-runner.js';

export interface LastRowCase {
  readonly name: string;
  readonly width: number;
  /** Rows of the step. */
  readonly n: number;
  readonly allRows: boolean;
  /** last_row alone, or last_row then a matmul selecting columns (W one-hot rows, exact in every tier). */
  readonly graph: 'last_row' | 'last_row+matmul';
}

export const LAST_ROW_MAX_OUTPUT_ROWS = 33;
/** Output width of the matmul after last_row ("vocab"). */
export const LAST_ROW_HEAD_ROWS = 11;

export const LAST_ROW_CASES: readonly LastRowCase[] = (['last_row', 'last_row+matmul'] as const).flatMap((graph) =>
  [1, 97, 4096].flatMap((width) =>
    [1, 5, 33].flatMap((n) =>
      [false, true].map((allRows) => ({ name: vars({ graph, width, n, all_rows: allRows }), width, n, allRows, graph })),
    ),
  ),
);

/** Rows a step asks back beyond maxOutputRows: rejected with ERR_INVALID_ARG. */
export const LAST_ROW_OVERFLOW = { maxOutputRows: 4, n: 5, width: 97 } as const;
