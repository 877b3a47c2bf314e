// The linear layers' weights of the random model (output.parameters: the layer's state dict in
// torch.nn.MultiheadAttention's layout): W_Q, W_K, W_V and W_O, each as a heatmap with its bias,
// opened from the pipeline strip and asked for on the first click. Rows are a matrix's outputs,
// columns its inputs: q = X · W_Qᵀ + b_Q.

import { postAttention } from "./api.js";
import { makeScale, renderLegend } from "./colors.js";
import { el, note } from "./dom.js";
import { downloadButtons, heatmapSvg } from "./download.js";
import { matrixFigure } from "./model-view.js";

const NO_WEIGHTS = "The weights are returned for the random model only (output.parameters): a pretrained model has a whole stack of layers, each too large to send.";

/** Split `rows` (a list of rows, or a flat bias) into blocks of the given sizes. */
function splitRows(rows, sizes) {
  let start = 0;
  return sizes.map((size) => {
    const block = rows.slice(start, start + size);
    start += size;
    return block;
  });
}

/**
 * The four matrices of `parameters` (null when the answer has none), named as the lecture does.
 * config: the answer's resolved config (num_heads, num_kv_heads, head_dim).
 */
export function layerWeights(parameters, config) {
  if (!parameters) return null;
  const queryDim = config.num_heads * config.head_dim;
  const kvDim = (config.num_kv_heads ?? config.num_heads) * config.head_dim;
  const sizes = [queryDim, kvDim, kvDim];
  const packed = parameters.in_proj_weight;
  const [wq, wk, wv] = packed ? splitRows(packed, sizes) : ["q", "k", "v"].map((n) => parameters[`${n}_proj_weight`]);
  const [bq, bk, bv] = parameters.in_proj_bias ? splitRows(parameters.in_proj_bias, sizes) : [null, null, null];
  return [
    { id: "w_q", name: "W_Q", step: "q", matrix: wq, bias: bq, rows: "query dims", cols: "X dims", heads: config.num_heads },
    { id: "w_k", name: "W_K", step: "k", matrix: wk, bias: bk, rows: "key dims", cols: "key input dims", heads: config.num_kv_heads },
    { id: "w_v", name: "W_V", step: "v", matrix: wv, bias: bv, rows: "value dims", cols: "value input dims", heads: config.num_kv_heads },
    { id: "w_o", name: "W_O", step: "output", matrix: parameters["out_proj.weight"], bias: parameters["out_proj.bias"] ?? null, rows: "output dims", cols: "concat dims", heads: null },
  ];
}

const shapeText = (matrix) => `${matrix.length} × ${matrix[0]?.length ?? 0}`;

/** Labels of a projection's output rows: head h, dimension d ("h1·3"), or plain indices. */
function rowLabels(weight, headDim) {
  return weight.matrix.map((_, r) => (weight.heads ? `h${Math.floor(r / headDim)}·${r % headDim}` : String(r)));
}

function weightFigure(weight, headDim) {
  const { matrix, bias, name } = weight;
  const values = bias ? [...matrix, bias] : matrix;
  const rows = [...rowLabels(weight, headDim), ...(bias ? ["bias"] : [])];
  const cols = matrix[0].map((_, c) => (name === "W_O" ? `h${Math.floor(c / headDim)}·${c % headDim}` : String(c)));
  const bound = Math.max(1e-9, ...values.flat().map((v) => Math.abs(v ?? 0)));
  const scale = makeScale("diverging", -bound, bound);
  const title = `${name}: ${shapeText(matrix)}${bias ? " and its bias (last row)" : ""}`;
  const figure = matrixFigure({
    id: `weights-${weight.id}`,
    title,
    explain: `Rows: the ${weight.rows} it makes; columns: the ${weight.cols} it reads (PyTorch’s out × in layout, so ${weight.step === "output" ? "output = concat · W_Oᵀ + b_O" : `${weight.step} = input · ${name}ᵀ + b`}).`,
    values,
    rowLabels: rows,
    colLabels: cols,
    scale,
    label: `${name}: ${weight.rows} in rows, ${weight.cols} in columns`,
    rowAxis: "dim",
    colAxis: "dim",
    cellSize: matrix.length > 32 || matrix[0].length > 32 ? 12 : 22,
    describe: (i, j, value) => `${name}[${rows[i]}, ${cols[j]}] = ${value === null ? "null" : String(value)}`,
  });
  figure.dataset.weight = weight.id;
  figure.querySelector("figcaption").append(
    downloadButtons(name, () => heatmapSvg({ values, rowLabels: rows, colLabels: cols, scale, title, subtitle: `${weight.rows} in rows, ${weight.cols} in columns` })),
  );
  figure.append(renderLegend(scale, `${name} weight`));
  return figure;
}

/** The four matrices' shapes from the answer's config, before their numbers are asked for. */
export function weightShapes(config) {
  const d = config.d_model;
  const queryDim = config.num_heads * config.head_dim;
  const kvDim = (config.num_kv_heads ?? config.num_heads) * config.head_dim;
  return {
    w_q: [queryDim, d],
    w_k: [kvDim, config.kdim ?? d],
    w_v: [kvDim, config.vdim ?? d],
    w_o: [d, queryDim],
  };
}

const NAMES = { w_q: "W_Q", w_k: "W_K", w_v: "W_V", w_o: "W_O" };

/** The request for the weights of the page's `request`: the same layer, no attention. */
export const weightsRequest = (request) => ({ ...request, output: { attention: "none", precision: 4, parameters: true } });

export class WeightsView {
  /**
   * `buttons`: where the W_Q… buttons go; `slot`: where the open matrix is drawn (its data-state:
   * idle, loading, ready, error); apiKey(): the key. The weights are asked for on the first click
   * (output.parameters), not with every answer: d_model 64 triples the page's answer, 512 adds MBs.
   */
  constructor(buttons, slot, apiKey) {
    Object.assign(this, { buttons, slot, apiKey });
    this.request = null;
    this.weights = null; // layerWeights of the answer, once fetched
    this.open = null;
    this.controller = null;
  }

  /** request: the page's request (weights only for the random model); config: its answer's. */
  show(request, config) {
    this.controller?.abort();
    Object.assign(this, { request, config, weights: null, headDim: config.head_dim });
    this.slot.dataset.state = "idle";
    if (!request || (request.model ?? "random") !== "random") {
      this.open = null;
      this.buttons.replaceChildren(note(NO_WEIGHTS));
      this.slot.replaceChildren();
      return;
    }
    const shapes = weightShapes(config);
    this.buttons.replaceChildren(...Object.entries(NAMES).map(([id, name]) => this.button(id, `${name} ${shapes[id].join(" × ")}`)));
    if (this.open) this.choose(this.open);
    else this.slot.replaceChildren();
  }

  button(id, text) {
    return el("button", {
      type: "button",
      class: "small weight-button",
      data: { weight: id },
      "aria-pressed": String(this.open === id),
      text,
      on: { click: () => this.choose(this.open === id ? null : id) },
    });
  }

  /** Open the matrix `id` (w_q, w_k, w_v, w_o), fetching the weights first; null closes it. */
  async choose(id) {
    this.open = id;
    for (const b of this.buttons.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.weight === id));
    if (id === null) return this.slot.replaceChildren();
    if (!this.weights && !(await this.fetch())) return;
    const weight = this.weights.find((w) => w.id === this.open);
    if (weight) this.slot.replaceChildren(weightFigure(weight, this.headDim));
  }

  /** POST the weights' request; true once this.weights holds them. */
  async fetch() {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.slot.dataset.state = "loading";
    this.slot.replaceChildren(note("Asking the service for the layer’s weights…"));
    let outcome;
    try {
      outcome = await postAttention(weightsRequest(this.request), this.apiKey(), controller.signal);
    } catch {
      return false; // aborted: a new result
    }
    if (this.controller !== controller) return false;
    this.controller = null;
    if (!outcome.ok) {
      this.slot.dataset.state = "error";
      this.slot.replaceChildren(note(`The weights could not be fetched: ${outcome.message}`));
      return false;
    }
    this.weights = layerWeights(outcome.data.parameters, outcome.data.config);
    this.slot.dataset.state = "ready";
    return true;
  }
}
