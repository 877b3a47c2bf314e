// The steps panel: the pipeline of docs/architecture.md in order, each step a small labelled heatmap
// with its shape and a one-line explanation; per-head steps follow the head selector. For a
// pretrained model the panel shows one layer's attention block (from its input X to W_O).

import { formatNumber, renderLegend } from "./colors.js";
import { el } from "./dom.js";
import { downloadButtons, heatmapSvg } from "./download.js";
import { createHeatmap } from "./heatmap.js";
import { stepScales } from "./step-scales.js";
import { shapeLabel, shapeOf } from "./view-model.js";

const sub = (t) => `<sub>${t}</sub>`;

function positionalText(config) {
  switch (config.positional_encoding) {
    case "none":
      return "No positional encoding is used, so this is all zeros: without it attention cannot tell word order.";
    case "learned":
      return "A learned vector per position (one table row each), added so the model can tell word order.";
    case "rope":
      return "RoPE acts inside attention (it rotates q and k), so nothing is added here: zeros.";
    case "alibi":
      return "ALiBi acts inside attention (a distance penalty on the scores), so nothing is added here: zeros.";
    default:
      return "Sines and cosines of the position at many frequencies, added so the model can tell word order.";
  }
}

function maskText(config) {
  const parts = [];
  if (config.causal) parts.push("the causal mask hides later tokens");
  if (config.window) parts.push(`the window hides keys ${Number(config.window)} or more tokens away`);
  if (config.positional_encoding === "alibi") parts.push("ALiBi subtracts a penalty growing with distance");
  if (!parts.length) return "Masks and biases come in here (causal, window, padding, ALiBi); with none set, the scores pass through unchanged.";
  return `Masks and biases: ${parts.join("; ")}. Hatched cells are masked (“may not attend”).`;
}

/** Every step, in pipeline order: its number, title, shape names, axes and explanation. */
export const STEPS = [
  {
    name: "token_embeddings", num: "1a", title: "Token embeddings", dims: "L × d_model",
    rows: "token", cols: "dim",
    explain: () => "Each token becomes a vector of d_model numbers, drawn from the seed: the same word always gets the same vector.",
  },
  {
    name: "positional", num: "1b", title: "Positional encoding", dims: "L × d_model",
    rows: "token", cols: "dim", explain: positionalText,
  },
  {
    name: "inputs", num: "1c", title: "Embedded position layer (the sum)", dims: "L × d_model",
    rows: "token", cols: "dim",
    explain: () => "Token embedding plus positional encoding: the input X that attention works on.",
  },
  {
    name: "q", num: "2", title: "Queries Q", dims: "H × L × d_k", perHead: true,
    rows: "query", cols: "dim",
    explain: (c) => `Q = X·W${sub("Q")}, split into heads: what each token is looking for.${c.positional_encoding === "rope" ? " Shown after the RoPE rotation." : ""}`,
  },
  {
    name: "k", num: "3", title: "Keys K", dims: "H_kv × S × d_k", perHead: true, kv: true,
    rows: "key", cols: "dim",
    explain: (c) => `K = X·W${sub("K")}: what each token offers to the queries that look for it.${c.positional_encoding === "rope" ? " Shown after the RoPE rotation." : ""}`,
  },
  {
    name: "v", num: "3", title: "Values V", dims: "H_kv × S × d_v", perHead: true, kv: true,
    rows: "key", cols: "dim",
    explain: () => `V = X·W${sub("V")}: the content a token passes on when it is attended to.`,
  },
  {
    name: "scores", num: "4", title: "Scores Q×Kᵀ", dims: "H × L × S", perHead: true,
    rows: "query", cols: "key",
    explain: () => "The dot product of every query with every key: how well each pair matches.",
  },
  {
    name: "scaled_scores", num: "5", title: "Scaled scores", dims: "H × L × S", perHead: true,
    rows: "query", cols: "key",
    explain: (c) => `Multiplied by ${c.scale !== undefined ? `scale = ${Number(c.scale).toPrecision(4)}` : "the scale"} (1/√d_k unless set), so the scores do not grow with the head size and the softmax stays soft.`,
  },
  {
    name: "masked_scores", num: "5b", title: "Masked scores", dims: "H × L × S", perHead: true,
    rows: "query", cols: "key", explain: maskText,
  },
  {
    name: "attention", num: "6", title: "Softmax: attention weights", dims: "H × L × S", perHead: true,
    rows: "query", cols: "key", sequential: true,
    explain: () => "Softmax over each row turns scores into weights that sum to 1: how much each query takes from each key.",
  },
  {
    name: "head_outputs", num: "7", title: "Per-head output", dims: "H × L × d_v", perHead: true,
    rows: "query", cols: "dim",
    explain: () => "Each head's output: the attention-weighted sum of the value vectors, one row per query.",
  },
  {
    name: "concat", num: "8", title: "Concatenation of the heads", dims: "L × (H·d_v)",
    rows: "query", cols: "dim", grouped: true,
    explain: () => "The heads' outputs placed side by side (separators between heads).",
  },
  {
    name: "output", num: "9", title: "Output projection", dims: "L × d_model",
    rows: "query", cols: "dim",
    explain: () => `The output projection W${sub("O")} mixes the heads back into d_model numbers per token: the layer's output.`,
  },
];

/**
 * What changes for one layer of a pretrained BERT: its input is not token + position embeddings
 * but the previous layer's output, and its output projection is followed by the residual, the
 * LayerNorm and the feed-forward block. Keyed by step name; `layer` is 0-based.
 */
const PRETRAINED = {
  inputs: {
    num: "1",
    title: "The layer’s input X",
    explain: (_, layer) =>
      layer === 0
        ? "What enters the first layer (layer 0): BERT’s embeddings, each WordPiece’s learned vector plus a learned position vector and a segment vector, layer-normalised."
        : `What enters layer ${layer}: the output of layer ${layer - 1}, after its attention, residual connection, LayerNorm and feed-forward block.`,
  },
  masked_scores: {
    explain: () => "One sentence and no padding: nothing is masked, so the scores pass through unchanged.",
  },
  output: {
    title: "Output projection (the attention block’s output)",
    explain: () => `W${sub("O")} mixes the heads back into d_model numbers per token. BERT then adds the layer’s input (a residual connection), layer-normalises, and applies its feed-forward block to give the next layer’s input.`,
  },
};

function labelsFor(axis, result, count) {
  if (axis === "dim") return Array.from({ length: count }, (_, j) => String(j));
  const source = axis === "key" ? result.key_tokens ?? result.tokens : result.tokens;
  return Array.from({ length: count }, (_, i) => source[i] ?? `#${i}`);
}

function stepHeader(def, titleId, shape) {
  return el(
    "header",
    { class: "step-header" },
    el("span", { class: "step-num", "aria-hidden": "true", text: def.num }),
    el("h3", { id: titleId, text: def.title }),
    el("span", { class: "shape", data: { shape }, text: shape || "not returned" }),
    el("span", { class: "shape-names", text: `(${def.dims})` }),
  );
}

/** The matrix a step shows: the chosen head's slice of a per-head step, and how to name it. */
function sliceOf(def, data, dims, { config, head }) {
  if (dims.length !== 3) return { matrix: data, caption: "", index: null };
  if (!def.perHead) return { matrix: data[0], caption: "", index: null }; // a leading batch axis of 1
  const heads = config.num_heads ?? 1;
  const kvHeads = config.num_kv_heads ?? heads;
  const count = dims[0];
  const index = def.kv ? Math.floor((head * count) / heads) : Math.min(head, count - 1);
  const caption =
    def.kv && kvHeads !== heads
      ? `K/V head ${index} of 0–${count - 1}, shared by query heads ${index * (heads / count)}–${(index + 1) * (heads / count) - 1}`
      : `Head ${index} of 0–${count - 1}`;
  return { matrix: data[index], caption, index };
}

/** The legend's title: what the colours are, and whether the scale is shared or clipped. */
function legendTitle(def, { scale, clipped, shared }) {
  const parts = [def.sequential ? "weight" : "value"];
  if (shared) parts.push("one scale for the three score steps");
  if (clipped) parts.push(`clipped at ±${formatNumber(scale.max)}: ${clipped} larger values drawn at the ends`);
  return parts.join(" · ");
}

function stepFigure(def, data, dims, { result, config, head, prefix, scaled }) {
  const { matrix, caption, index } = sliceOf(def, data, dims, { config, head });
  const { scale } = scaled;
  const rows = matrix.length;
  const cols = rows ? matrix[0].length : 0;
  const rowLabels = labelsFor(def.rows, result, rows);
  const colLabels = labelsFor(def.cols, result, cols);
  const name = `${prefix}${def.title}${caption ? `, ${caption}` : ""}`;
  const readout = el("p", { class: "readout", "aria-live": "polite", text: "Hover or focus a cell for its value." });
  const map = createHeatmap({
    values: matrix,
    rowLabels,
    colLabels,
    scale,
    label: `${name}: ${rows} × ${cols}`,
    rowAxis: def.rows,
    colAxis: def.cols,
    head: index,
    cellSize: def.cols === "dim" ? 14 : 22,
    readout,
    groupSize: def.grouped ? config.head_dim ?? cols / (config.num_heads ?? 1) : 0,
    nullLabel: "masked (null)",
    showValues: true,
  });
  const legend = renderLegend(scale, legendTitle(def, scaled), { masked: def.name === "masked_scores" });
  return el(
    "figure",
    { class: "step-figure", data: { scaleMax: scale.max, shared: scaled.shared ? "true" : null } },
    el("figcaption", { text: `${prefix}${def.title}${caption ? ` — ${caption}` : ""}: ${rows} × ${cols}` }),
    map,
    legend,
    downloadButtons(name, () =>
      heatmapSvg({ values: matrix, rowLabels, colLabels, scale, title: name, subtitle: `${rows} × ${cols} · ${def.dims}` }),
    ),
    readout,
  );
}

function renderStep(def, { result, config, head, prefix, scaled }) {
  const titleId = `step-${def.name}-title`;
  const data = result.steps?.[def.name];
  const dims = data === undefined || data === null ? [] : shapeOf(data);
  return el(
    "article",
    { class: "step", data: { step: def.name }, "aria-labelledby": titleId },
    stepHeader(def, titleId, shapeLabel(dims)),
    el("p", { class: "step-explain", html: def.explain(config, def.layer) }),
    dims.length ? stepFigure(def, data, dims, { result, config, head, prefix, scaled: scaled.get(def.name) }) : null,
  );
}

/**
 * Draw the steps of `result` into `container`. With `layer` (0-based; a pretrained model's
 * layer), only the steps the response traced are drawn, explained for that layer of BERT.
 */
export function renderSteps(container, { result, config, head, layer = null, shareScores = true }) {
  const prefix = layer === null ? "" : `Layer ${layer}: `;
  const scaled = stepScales(result.steps, STEPS, { shareScores });
  const items = [];
  for (const step of STEPS) {
    if (layer !== null && result.steps?.[step.name] === undefined) continue;
    const def = layer === null ? step : { ...step, ...PRETRAINED[step.name], layer };
    const article = renderStep(def, { result, config, head, prefix, scaled });
    const table = article.querySelector("table");
    const width = table ? table.rows[0].cells.length * (def.cols === "dim" ? 14 : 22) : 0;
    items.push(el("li", { class: width > 440 ? "wide" : "narrow" }, article));
  }
  container.replaceChildren(el("ol", { class: "steps" }, items));
}
