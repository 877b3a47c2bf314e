// The state of the page and the view model: the last response turned into what the panels draw
// (one layer of one result, in WordPieces or whole words), with the chosen layer and head.
// It draws nothing.

import { extent, formatNumber, makeScale } from "./colors.js";
import { blockLabel } from "./long-inputs.js";

/** What the page holds between requests. */
export function createState() {
  return {
    data: null, // the last successful response, parsed
    raw: "", // ...and as the service sent it
    body: null, // ...and the request that produced it
    layer: 0, // position in result.layers shown by Heads, Connections, Steps and the large view
    head: 0, // the head open in the model view's large heatmap
    words: false, // word-level attention instead of WordPieces
    shownPretrained: false, // whether the results on the page are a pretrained model's
    statistic: "max", // which of a pooled overview's block statistics the views draw: max or mean
  };
}

export function isPretrained(result) {
  return Array.isArray(result?.layers);
}

/** The first result of the response on the page, or undefined before the first success. */
export const currentResult = (state) => state.data?.results?.[0];

export const showingPretrained = (state) => isPretrained(currentResult(state));

/** How many layers the model has (the response may hold fewer). */
export const layerCount = (state) => state.data.config?.num_layers ?? currentResult(state).layers.length;

/**
 * The attention the Heads, Connections and model views draw. For the random model, the result
 * itself; for a pretrained one, layer `position` of it, in WordPieces or (words) whole words.
 */
export function viewOf(result, { position = 0, words = false, statistic = "max" } = {}) {
  return result?.pool && !result.attention ? overviewOf(result, position, statistic) : exactViewOf(result, position, words);
}

/**
 * A pooled answer (a long input: long-inputs.js) as a view: `attention` is each head's block
 * statistic, `tokens` the blocks' token ranges; `overview` keeps both statistics, the bounds
 * and the real tokens, for the exact windows fetched later.
 */
function overviewOf(result, position, statistic) {
  const pretrained = isPretrained(result);
  const atLayer = (values) => (pretrained ? values?.[position] : values);
  const pool = result.pool;
  const overview = {
    statistic,
    max: atLayer(pool.max),
    mean: atLayer(pool.mean),
    queryBounds: pool.query_bounds,
    keyBounds: pool.key_bounds,
    tokens: result.tokens,
    keyTokens: result.key_tokens,
  };
  return {
    pretrained,
    layer: pretrained ? result.layers[position] : null,
    position,
    words: false,
    tokens: pool.query_bounds.slice(0, -1).map((_, b) => blockLabel(pool.query_bounds, b)),
    keyTokens: pool.key_bounds.slice(0, -1).map((_, b) => blockLabel(pool.key_bounds, b)),
    attention: overview[statistic],
    metrics: { entropy: atLayer(result.metrics?.entropy), mean_distance: atLayer(result.metrics?.mean_distance) },
    shares: { cls: undefined, sep: undefined }, // they come with output.analysis, left out of an overview
    fullyMasked: [],
    overview,
  };
}

function exactViewOf(result, position, words) {
  if (!isPretrained(result)) {
    return {
      pretrained: false,
      tokens: result.tokens,
      keyTokens: result.key_tokens,
      attention: result.attention,
      metrics: result.metrics ?? {},
      shares: null,
      fullyMasked: result.fully_masked_queries ?? [],
    };
  }
  const analysis = result.analysis ?? {};
  const byWord = words && Array.isArray(analysis.words) && Array.isArray(analysis.word_attention);
  const attention = byWord ? analysis.word_attention[position] : result.attention[position];
  const tokens = byWord ? analysis.words : result.tokens;
  const metrics = byWord
    ? computeMetrics(attention)
    : {
        entropy: result.metrics?.entropy?.[position],
        mean_distance: result.metrics?.mean_distance?.[position],
        top_key: result.metrics?.top_key?.[position],
      };
  const shares = {
    cls: analysis.special_share?.["[CLS]"]?.[position],
    sep: analysis.special_share?.["[SEP]"]?.[position],
  };
  return {
    pretrained: true,
    layer: result.layers[position],
    position,
    words: byWord,
    tokens,
    keyTokens: tokens,
    attention,
    metrics,
    shares,
    fullyMasked: [],
  };
}

/** Entropy, mean distance and strongest key per head of H × n × n weights (rows sum to 1). */
export function computeMetrics(attention) {
  const entropy = [];
  const distance = [];
  const top = [];
  for (const matrix of attention) {
    let e = 0;
    let d = 0;
    const tops = [];
    matrix.forEach((row, i) => {
      let best = 0;
      row.forEach((w, j) => {
        if (w === null) return;
        if (w > 0) e -= w * Math.log(w);
        d += w * Math.abs(i - j);
        if (w > (row[best] ?? Number.NEGATIVE_INFINITY)) best = j;
      });
      tops.push(best);
    });
    const n = Math.max(1, matrix.length);
    entropy.push(e / n);
    distance.push(d / n);
    top.push(tops);
  }
  return { entropy, mean_distance: distance, top_key: top };
}

/** The view of the chosen layer of the result on the page. */
export function currentView(state, position = state.layer) {
  return viewOf(currentResult(state), { position, words: state.words, statistic: state.statistic });
}

/** The dimensions of a nested array, following first elements. */
export function shapeOf(value) {
  const dims = [];
  let x = value;
  while (Array.isArray(x)) {
    dims.push(x.length);
    x = x[0];
  }
  return dims;
}

export const shapeLabel = (dims) => dims.join(" × ");

/** How many heads the steps panel offers: the query heads of the traced steps. */
export function stepHeadCount(result, view) {
  const heads = view.attention?.length ?? 0;
  return view.pretrained ? heads : shapeOf(result.steps?.q ?? [])[0] ?? heads;
}

/** "Layer 3, " for a pretrained model's view, "" for the random model's. */
export const layerPrefix = (view) => (view.pretrained ? `Layer ${view.layer}, ` : "");

/** The elementwise mean of H matrices, skipping nulls (masked cells). */
export function averageOf(attention) {
  const heads = attention.length;
  return attention[0].map((row, i) =>
    row.map((_, j) => {
      let sum = 0;
      let n = 0;
      for (let h = 0; h < heads; h += 1) {
        const v = attention[h][i][j];
        if (v !== null) {
          sum += v;
          n += 1;
        }
      }
      return n ? sum / n : null;
    }),
  );
}

/** The mean of the finite numbers in `values`, or null when there is none. */
export function mean(values) {
  const finite = (values ?? []).filter((v) => v !== null && Number.isFinite(v));
  return finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : null;
}

/** One sequential colour scale from 0 to the largest weight of `values`. */
export function weightScale(values) {
  const [, hi] = extent(values);
  return makeScale("sequential", 0, Math.max(hi, 1e-9));
}

/** The status line after a success. */
export function doneMessage(data) {
  const r = data.results[0];
  const ms = data.meta?.elapsed_ms;
  const time = ms !== undefined ? ` in ${formatNumber(ms, 1)} ms` : "";
  const overview = r.pool && !r.attention ? ` (an overview in blocks of ${r.pool.query_bounds[1]} tokens)` : "";
  if (isPretrained(r)) {
    const heads = r.attention?.[0]?.length ?? data.config?.num_heads ?? 0;
    return `Done: ${r.layers.length} layers × ${heads} heads over ${r.tokens.length} tokens${overview}${time}.`;
  }
  return `Done: ${r.attention?.length ?? data.config?.num_heads ?? 0} heads over ${r.tokens.length} tokens${overview}${time}.`;
}

/** The facts of the summary line: tokens, heads, scale, positions… */
export function summaryFacts(data) {
  const result = data.results[0];
  const c = data.config ?? {};
  const scale = `scale ${c.scale !== undefined ? formatNumber(c.scale, 4) : "?"}`;
  if (isPretrained(result)) {
    const words = result.analysis?.words;
    return [
      `${result.tokens.length} ${result.analysis ? "WordPiece " : ""}tokens${Array.isArray(words) ? ` (${Math.max(0, words.length - 2)} words)` : ""}`,
      `${c.model ?? "pretrained"}: ${result.layers.length} layers × ${c.num_heads ?? "?"} heads of ${c.head_dim ?? "?"} dims`,
      `d_model ${c.d_model ?? "?"}`,
      scale,
    ];
  }
  const heads = result.attention?.length ?? c.num_heads;
  const kv = c.num_kv_heads && c.num_kv_heads !== heads ? `, ${c.num_kv_heads} K/V heads` : "";
  const parts = [
    `${result.tokens.length} tokens`,
    `${heads} heads of ${c.head_dim ?? "?"} dims${kv}`,
    scale,
    `${c.positional_encoding ?? "?"} positions`,
  ];
  if (c.causal) parts.push("causal");
  if (c.window) parts.push(`window ${c.window}`);
  return parts;
}

/** The footer line: where and how fast the response was computed. */
export function metaLine(meta = {}) {
  return [
    meta.device && `Computed on ${meta.device}`,
    meta.dtype,
    meta.elapsed_ms !== undefined && `${formatNumber(meta.elapsed_ms, 2)} ms`,
    meta.version && `service ${meta.version}`,
    meta.torch_version && `torch ${meta.torch_version}`,
  ]
    .filter(Boolean)
    .join(" · ");
}
