// The page at any length: every rule that changes what is asked for or drawn as an input grows,
// written once (docs/explorer.md, "Long inputs"), and the request bodies that follow from them.

/** A matrix up to this many rows and columns is an HTML table (a focusable cell each); above, a canvas. */
export const TABLE_MAX = 32;

/** Past this many tokens the first request asks for a pooled overview instead of every weight. */
export const OVERVIEW_FROM = 128;

/** A long input's steps are offered for its first this many tokens (cut-steps.js). */
export const STEPS_TOKENS = 128;

/** The overview's blocks per side (output.pool), at most. */
export const POOL_CELLS = 64;

/**
 * The overview's cells over all its maps (layers × heads × blocks²): its answer holds a max and
 * a mean per cell, about 7 bytes each in JSON, beside the L × d_model output, so this keeps an
 * overview under 2 MB whatever the model (MiniLM's 6 × 12 heads at 256 tokens: 28 × 28 blocks
 * each, 1.5 MB with its output; the random model's few heads: 64 × 64).
 */
export const OVERVIEW_CELLS = 60_000;

/** Blocks per side for an overview of `maps` maps. */
export const poolFor = (maps) => Math.max(8, Math.min(POOL_CELLS, Math.floor(Math.sqrt(OVERVIEW_CELLS / Math.max(1, maps)))));

/** The exact window opened on a head: this many query rows, drawn this many key columns wide. */
export const WINDOW = 64;

/** From this many tokens the Connections view draws each query's strongest keys only (output.top_k). */
export const CONNECTIONS_TOP_K_FROM = 256;
export const CONNECTIONS_TOP_K = 5;

/** Token lists (the summary's chips, the Connections columns) show this many until asked for all. */
export const TOKENS_SHOWN = 128;

/** Whether a matrix of `rows` × `cols` is drawn as a table. */
export const drawsAsTable = (rows, cols) => rows <= TABLE_MAX && cols <= TABLE_MAX;

/**
 * The tokens of `text` as the random model splits it (words and punctuation, README "text");
 * a lower bound of a pretrained model's WordPieces, which split words further.
 */
export function countTokens(text) {
  const texts = Array.isArray(text) ? text : [text ?? ""];
  return Math.max(...texts.map((t) => (String(t).match(/\w+|[^\w\s]/gu) ?? []).length));
}

/** Whether `body` (as the form wrote it) is long enough to be asked for as an overview. */
export const wantsOverview = (body) => countTokens(body.text) > OVERVIEW_FROM;

/**
 * `body` as the first request of a long input (`maps`: its layers × heads): the pooled overview of every head, the per-head
 * metrics, no steps and no word analysis (each of those is L × L or more per head).
 */
export function overviewBody(body, maps = 1) {
  const output = { ...body.output, pool: poolFor(maps), steps: [], analysis: false };
  return { ...body, output };
}

/** The fields of `body` that choose what is computed, without what it asks to be returned. */
function inputOf(body, layer) {
  const { output, layers, ...input } = body;
  return layer === null || layer === undefined ? input : { ...input, layers: [layer] };
}

/** Exact weights of head `head` (of model layer `layer`, or null) for queries [start, stop). */
export function windowBody(body, { head, layer, start, stop }) {
  const output = { attention: "per_head", heads: [head], queries: { start, stop }, precision: body.output.precision };
  return { ...inputOf(body, layer), output };
}

/** The k strongest keys of every query of head `head` (or of the heads' average when null). */
export function topKBody(body, { head, layer }) {
  const attention = head === null ? "average" : "per_head";
  const heads = head === null ? undefined : [head];
  const output = { attention, heads, top_k: CONNECTIONS_TOP_K, precision: body.output.precision };
  return { ...inputOf(body, layer), output };
}

/** "0–63": the token positions a block covers, from bounds in token positions. */
export const blockLabel = (bounds, b) => `${bounds[b]}–${bounds[b + 1] - 1}`;
