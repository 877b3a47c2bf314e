// The Model panel of a pretrained result: the layers × heads grid, the chosen layer's per-head
// metrics, the open head in the large view, the attention rollout and the special-token shares.

import { formatNumber, makeScale, renderLegend } from "./colors.js";
import { note, part } from "./dom.js";
import { downloadButtons } from "./download.js";
import { gridSvg } from "./figure-svg.js";
import { headCard } from "./head-card.js";
import { markSelection, matrixFigure, renderLayerMetrics, renderModelGrid } from "./model-view.js";
import { weightScale } from "./view-model.js";

const ROLLOUT_EXPLAIN =
  "How much each token’s final vector (row) draws on each input token (column): every layer’s heads averaged, the residual connection added as ½(A + I), the layers multiplied (Abnar &amp; Zuidema, 2020). Always in WordPieces.";

/** A decoder's answer has no analysis (rollout, words, special-token shares): the encoder's only. */
const ENCODER_ONLY = "Computed for the BERT encoder only: a decoder’s answer has no rollout and no [CLS] or [SEP].";

function rolloutFigure(result, total) {
  const rollout = result.analysis?.rollout;
  if (!result.analysis) return note(`Attention rollout: ${ENCODER_ONLY}`);
  if (!Array.isArray(rollout) || !rollout.length) return note("The response holds no attention rollout.");
  const tokens = result.tokens;
  const scale = weightScale(rollout);
  const figure = matrixFigure({
    id: "rollout",
    title: `Attention rollout through all ${total} layers`,
    explain: ROLLOUT_EXPLAIN,
    values: rollout,
    rowLabels: tokens,
    colLabels: tokens,
    scale,
    label: "Attention rollout: output tokens in rows, input tokens in columns",
    rowAxis: "token",
    colAxis: "input",
    cellSize: tokens.length <= 16 ? 28 : tokens.length <= 32 ? 20 : 14,
    describe: (i, j, value) =>
      `Rollout: token “${tokens[i]}” (${i}) ← input “${tokens[j]}” (${j}): ${value === null ? "null" : String(value)}`,
  });
  figure.append(renderLegend(scale, "rollout weight"));
  return figure;
}

function shareFigure(result, token, values) {
  const layers = result.layers.map((l) => `Layer ${l}`);
  const heads = (values[0] ?? []).map((_, h) => `H${h}`);
  const figure = matrixFigure({
    id: `share-${token.replace(/[^A-Za-z]/g, "").toLowerCase()}`,
    title: `On ${token}`,
    explain: `Per layer (rows) and head (columns): the mean share of the weight on ${token}, from 0 to 1.`,
    values,
    rowLabels: layers,
    colLabels: heads,
    scale: makeScale("sequential", 0, 1),
    label: `Share of attention on ${token}: layers in rows, heads in columns`,
    rowAxis: "layer",
    colAxis: "head",
    cellSize: 26,
    describe: (i, j, value) =>
      `${layers[i]}, head ${j}: ${value === null ? "null" : `${String(value)} (${formatNumber(value * 100, 1)}%)`} of the weight on ${token}`,
  });
  figure.dataset.token = token;
  return figure;
}

/** The SVG / PNG buttons of the whole grid: every layer and head shown, on their one scale. */
function gridExports(layers, scale, unit) {
  const first = layers[0]?.layer ?? 0;
  const last = layers[layers.length - 1]?.layer ?? 0;
  const heads = layers[0]?.attention.length ?? 0;
  const name = `layers ${first}-${last} x heads 0-${heads - 1}`;
  const title = `Layers ${first}–${last} × heads 0–${heads - 1}`;
  const tokens = layers[0]?.tokens ?? [];
  const subtitle = `${tokens.length} ${unit}: ${tokens.join(" ")}`;
  const entries = layers.map((v) => ({ layer: v.layer, attention: v.attention }));
  return downloadButtons(name, () => gridSvg({ layers: entries, scale, title, subtitle }));
}

export class ModelPanel {
  /**
   * `container`: the panel, holding the legend, grid-sub, grid, grid-readout, metrics-title,
   * metrics, detail, rollout and shares parts. onOpen(position, head): a thumbnail was chosen.
   */
  constructor(container, { onOpen }) {
    this.container = container;
    this.onOpen = onOpen;
  }

  part(name) {
    return part(this.container, name);
  }

  /**
   * Draw the whole panel. layers: the view of every layer of `result` (in its order); total: the
   * model's number of layers. The chosen layer and head are drawn by showSelection.
   */
  show(result, layers, total) {
    const all = layers.map((v) => v.attention);
    const scale = weightScale(all);
    this.part("legend").replaceChildren(renderLegend(scale, "Attention weight (one scale for every thumbnail)"));
    const unit = layers[0]?.words ? "words" : result.analysis ? "WordPieces" : "tokens";
    const n = layers[0]?.tokens.length ?? 0;
    this.part("grid-sub").textContent = `${layers.length} layers × ${all[0]?.length ?? 0} heads, each ${n} × ${n} ${unit}. The ringed one is open below.`;
    const table = this.part("grid");
    const fresh = table.cloneNode(false); // drops the old listeners with the old cells
    table.replaceWith(fresh);
    this.part("grid-exports").replaceChildren(gridExports(layers, scale, unit));
    renderModelGrid(fresh, {
      layers: layers.map((v) => ({ layer: v.layer, attention: v.attention, metrics: v.metrics, shares: v.shares })),
      scale,
      onOpen: this.onOpen,
      readout: this.part("grid-readout"),
    });
    this.part("rollout").replaceChildren(rolloutFigure(result, total));
    const shares = Object.entries(result.analysis?.special_share ?? {});
    this.part("shares").replaceChildren(
      ...(shares.length
        ? shares.map(([token, values]) => shareFigure(result, token, values))
        : [note(result.analysis ? "The response holds no special-token shares." : `Special-token shares: ${ENCODER_ONLY}`)]),
    );
  }

  /** The parts that follow the chosen layer (`view`) and head: the ring, the large view, the table. */
  showSelection(view, head) {
    markSelection(this.part("grid"), view.position, head);
    this.part("detail").replaceChildren(
      headCard({
        kind: "head",
        head,
        title: `Layer ${view.layer}, head ${head}`,
        matrix: view.attention[head],
        view,
        scale: weightScale(view.attention),
        entropy: view.metrics.entropy?.[head] ?? null,
        distance: view.metrics.mean_distance?.[head] ?? null,
        topKeys: view.metrics.top_key?.[head] ?? null,
        cls: view.shares.cls?.[head],
        sep: view.shares.sep?.[head],
        idPrefix: "detail-",
        note: `scale of layer ${view.layer}`,
      }),
    );
    this.part("metrics-title").textContent = `Layer ${view.layer}: per-head metrics`;
    renderLayerMetrics(this.part("metrics"), {
      layer: view.layer,
      metrics: view.metrics,
      shares: view.shares,
      head,
      maxEntropy: Math.log(Math.max(2, view.keyTokens.length)),
      maxDistance: Math.max(1, view.tokens.length - 1),
      unit: view.words ? "words" : "tokens",
    });
  }

  /**
   * Recolour the grid by a search's ranking (null: no search): each thumbnail ringed in
   * proportion to its score, the best one most.
   */
  markSearch(ranked) {
    const scores = new Map((ranked ?? []).map((r) => [`${r.layer}:${r.head}`, r.score]));
    const best = ranked?.[0]?.score || 1;
    for (const thumb of this.part("grid").querySelectorAll("button.thumb")) {
      const score = scores.get(`${thumb.dataset.layer}:${thumb.dataset.head}`);
      thumb.classList.toggle("searched", score !== undefined);
      if (score === undefined) delete thumb.dataset.searchScore;
      else thumb.dataset.searchScore = String(score);
      thumb.style.setProperty("--search-strength", score === undefined ? "0" : String(Math.max(0, score / best)));
    }
  }

  /** Say which head opened, and bring the large view into sight if it is off screen. */
  announceOpened(view, head) {
    this.part("grid-readout").textContent = `Layer ${view.layer}, head ${head} is open in the large view below.`;
    const detail = this.part("detail");
    const box = detail.getBoundingClientRect();
    if (box.top > window.innerHeight || box.bottom < 0) detail.scrollIntoView({ block: "nearest" });
  }
}
