// The pipeline strip at the top of the results: the lecture's flow (embedded position layer → Q,
// K, V → Q×Kᵀ → ÷√d_k → mask → softmax → ×V → concat → linear) as buttons, each with the real
// shape of its step and what it means (from GET /steps); a click opens that step in the Steps tab.
// Under it, the linear layers' weights (the random model's) and one query token followed through
// the head chosen everywhere, with its actual numbers. The strip downloads as SVG or PNG.

import { formatNumber } from "./colors.js";
import { el, part } from "./dom.js";
import { downloadButtons } from "./download.js";
import { stripSvg } from "./figure-svg.js";
import { shapeLabel, shapeOf } from "./view-model.js";
import { WeightsView } from "./weights-view.js";

/** The boxes of the strip, in order: a label and the step (or steps) each stands for. */
const BOXES = [
  { label: "X = embedding + position", steps: ["inputs"] },
  { label: "Q", steps: ["q"] },
  { label: "K", steps: ["k"] },
  { label: "V", steps: ["v"] },
  { label: "Q×Kᵀ", steps: ["scores"] },
  { label: "÷√d_k", steps: ["scaled_scores"] },
  { label: "mask", steps: ["masked_scores"] },
  { label: "softmax", steps: ["attention"] },
  { label: "×V", steps: ["head_outputs"] },
  { label: "concat", steps: ["concat"] },
  { label: "linear W_O", steps: ["output"] },
];
const SHOWN_DIMS = 6; // a vector's first numbers; the Steps tab has them all

const row = (values) => values.map((v) => formatNumber(v, 3));
const vector = (values) => `[${row(values.slice(0, SHOWN_DIMS)).join(", ")}${values.length > SHOWN_DIMS ? ", …" : ""}] (${values.length} numbers)`;

export class PipelineStrip {
  /**
   * `container`: holds the boxes, query, trace, exports and weights parts. onOpen(step): a box
   * was clicked; apiKey(): the key for the weights' request.
   */
  constructor(container, { onOpen, apiKey }) {
    this.container = container;
    this.boxes = part(container, "boxes");
    this.query = part(container, "query");
    this.trace = part(container, "trace");
    this.onOpen = onOpen;
    this.registry = new Map(); // GET /steps: name -> {shape, meaning}
    this.data = null;
    this.weights = new WeightsView(part(container, "weight-buttons"), part(container, "weights"), apiKey);
    this.exports = part(container, "exports");
    this.request = undefined; // the request whose weights are offered: a new result, new weights
    this.query.addEventListener("change", () => this.drawTrace());
  }

  /** Open the fold the strip sits in (the Steps tab was chosen), so that it is in sight. */
  unfold() {
    const fold = this.container.closest("details");
    if (fold) fold.open = true;
  }

  /** The step registry from GET /steps (the strip's meanings and shape names). */
  setRegistry(steps) {
    this.registry = new Map((steps ?? []).map((s) => [s.name, s]));
    if (this.data) this.draw(this.data);
  }

  /**
   * data: {tokens, keyTokens, steps (one sequence, no batch axis), head, kvHead, config (the
   * answer's), request (the page's, whose weights are offered), layer (a pretrained model's, or
   * undefined), missing (what to say while there are no steps)}; steps may be missing (a pretrained model's come with the Steps tab): the strip
   * then shows shape names only.
   */
  draw(data) {
    this.data = data;
    this.boxes.replaceChildren(...BOXES.map((box, k) => this.box(box, k)));
    this.exports.replaceChildren(downloadButtons(this.figureName(), () => this.svg()));
    if (data.request !== this.request) this.weights.show(data.request ?? null, data.config ?? {});
    this.request = data.request;
    const previous = this.query.value;
    this.query.replaceChildren(...data.tokens.map((t, i) => new Option(`${i} ${t}`, String(i))));
    this.query.value = data.tokens[Number(previous)] !== undefined ? previous : "0";
    this.drawTrace();
  }

  /** The shape of step `name`: the real one, or the registry's names until the steps arrive. */
  shapeOf(name) {
    const step = this.data.steps?.[name];
    return step === undefined || step === null ? this.registry.get(name)?.shape ?? "" : shapeLabel(shapeOf(step));
  }

  /** The export's name: the pipeline of the layer (pretrained) and head shown. */
  figureName() {
    const { layer, head } = this.data;
    return `pipeline ${layer === undefined ? "" : `layer ${layer} `}head ${head}`;
  }

  svg() {
    const boxes = BOXES.map((box) => ({ label: box.label, shape: this.shapeOf(box.steps[0]) }));
    const title = `The pipeline, with the real shapes: ${this.figureName().replace("pipeline ", "")}`;
    return stripSvg({ boxes, title, subtitle: `${this.data.tokens.length} tokens: ${this.data.tokens.join(" ")}` });
  }

  box(box, k) {
    const name = box.steps[0];
    const info = this.registry.get(name);
    const shape = this.shapeOf(name);
    return el(
      "li",
      {},
      k > 0 && el("span", { class: "arrow", "aria-hidden": "true", text: "→" }),
      el(
        "button",
        {
          type: "button",
          class: "strip-box",
          data: { step: name },
          title: info?.meaning ?? null,
          "aria-label": `${box.label}: ${shape}${info ? `, ${info.meaning}` : ""}. Open it in the Steps tab.`,
          on: { click: () => this.onOpen(name) },
        },
        el("span", { class: "strip-label", text: box.label }),
        el("span", { class: "strip-shape", data: { shape }, text: shape }),
      ),
    );
  }

  /** The chosen query through the chosen head, number by number. */
  drawTrace() {
    const { steps, tokens, keyTokens, head, kvHead, missing } = this.data;
    if (!steps?.q) {
      const why = missing ?? "The numbers of one query appear here once the steps of this layer are computed: the Steps tab asks for them when it is opened.";
      this.trace.replaceChildren(el("p", { class: "note", text: why }));
      return;
    }
    const i = Number(this.query.value);
    const keys = keyTokens ?? tokens;
    const cols = Math.min(keys.length, steps.scores[head][i].length);
    const dHead = steps.head_outputs[head][i].length;
    const lines = [
      ["X[i]", "its embedding + position", vector(steps.inputs[i])],
      ["Q[i]", `its query, head ${head}`, vector(steps.q[head][i])],
      ["K", `keys of K/V head ${kvHead}`, `${steps.k[kvHead].length} rows, one per key`],
    ];
    const table = el(
      "table",
      { class: "trace-table", data: { query: i, head } },
      el("caption", { text: `Query “${tokens[i]}” (${i}) through head ${head}: one number per key` }),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "step" }), keys.slice(0, cols).map((k, j) => el("th", { scope: "col", text: `${j} ${k}` })))),
      el(
        "tbody",
        {},
        [
          ["Q[i]·K[j]", "scores"],
          ["÷√d_k", "scaled_scores"],
          ["mask", "masked_scores"],
          ["softmax", "attention"],
        ].map(([label, name]) =>
          el(
            "tr",
            { data: { step: name } },
            el("th", { scope: "row", text: label }),
            steps[name][head][i].slice(0, cols).map((v) => el("td", { data: { value: v === null ? "null" : String(v) }, text: v === null ? "masked" : formatNumber(v, 3) })),
          ),
        ),
      ),
    );
    const after = [
      ["Σ softmax × V[j]", `its head ${head} output`, vector(steps.head_outputs[head][i])],
      ["concat[i]", `head ${head}'s slice: numbers ${head * dHead} to ${(head + 1) * dHead - 1}`, vector(steps.concat[i].slice(head * dHead, (head + 1) * dHead))],
      ["output[i]", "after W_O", vector(steps.output[i])],
    ];
    const list = (items) => el("dl", { class: "trace-list" }, items.map(([term, what, value]) => [el("dt", {}, el("strong", { text: term }), ` ${what}`), el("dd", { text: value })]));
    // a scroll box reachable from the keyboard (axe: scrollable-region-focusable)
    const scroll = el("div", { class: "matrix-scroll", tabindex: "0", role: "region", "aria-label": `Query ${i} through head ${head}, one number per key (scrolls)` }, table);
    this.trace.replaceChildren(list(lines), scroll, list(after));
  }
}
