// One head's card, used by the Heads panel and the model view's large view: the heatmap, the
// head's metrics beside it and the SVG / PNG downloads.

import { AVERAGE_COLOUR, formatNumber, headColour } from "./colors.js";
import { el } from "./dom.js";
import { downloadButtons, heatmapSvg } from "./download.js";
import { headType } from "./head-types.js";
import { createHeatmap, exactValue } from "./heatmap.js";

const known = (value) => value !== null && value !== undefined;

function metricBlock(label, value, max, unit, hint, digits = 2) {
  const percent = unit === "%";
  const shown = formatNumber(value, digits);
  return el(
    "div",
    { class: "metric" },
    el("dt", { text: label }),
    el(
      "dd",
      {},
      el("strong", { text: shown }),
      percent ? unit : ` ${unit}`,
      el("meter", {
        min: 0,
        max: max || 1,
        value: value ?? 0,
        "aria-label": `${label}: ${shown}${percent ? "%" : ""} of at most ${formatNumber(max, 2)}`,
      }),
      el("small", { text: hint }),
    ),
  );
}

function metricList({ view, entropy, distance, cls, sep }) {
  const keys = (view.overview ?? view).keyTokens.length;
  const maxEntropy = Math.log(keys);
  return el(
    "dl",
    {
      class: "metrics",
      data: {
        cls: known(cls) ? cls : null,
        sep: known(sep) ? sep : null,
        entropy: known(entropy) ? entropy : null,
        meanDistance: known(distance) ? distance : null,
      },
    },
    metricBlock("Entropy", entropy, maxEntropy, "nats", `0 = one key, ${formatNumber(maxEntropy, 2)} = spread evenly`),
    metricBlock("Mean distance", distance, Math.max(1, (view.overview ?? view).tokens.length - 1), view.words ? "words" : "tokens",
      "how far away it looks"),
    known(cls) && metricBlock("On [CLS]", cls * 100, 100, "%", "share of the weight on [CLS]", 1),
    known(sep) && metricBlock("On [SEP]", sep * 100, 100, "%", "share of the weight on [SEP]", 1),
  );
}

/** "256 queries × 256 keys (subword tokens)", and for an overview, its blocks. */
function sizeLine(view, unit) {
  const { tokens, keyTokens, overview } = view;
  const sizes = (queries, keys) => `${queries} queries × ${keys} keys${unit ? ` (${unit})` : ""}`;
  if (!overview) return sizes(tokens.length, keyTokens.length);
  const block = Math.round(overview.tokens.length / tokens.length);
  return `Overview of ${sizes(overview.tokens.length, overview.keyTokens.length)}: blocks of about ${block} tokens, their ${overview.statistic}`;
}

/**
 * A head (kind "head") or the heads' average (kind "average") as a figure.
 * view: the view model it belongs to (tokens, keyTokens, pretrained, layer, words); matrix: its
 * weights; scale: the colour scale; entropy, distance, topKeys, cls, sep: its metrics (any may
 * be missing); note: appended to the subtitle; idPrefix: keeps ids unique across panels;
 * map: {describe(i, j), onChoose(i, j)} for a map whose cells are not single weights (an overview).
 */
export function headCard({ kind, head, title, matrix, view, scale, entropy, distance, topKeys, cls, sep, note, idPrefix = "", map }) {
  const { tokens, keyTokens } = view;
  const titleId = `${idPrefix}heatmap-${head}-title`;
  const unit = view.words ? "words" : view.pretrained ? "subword tokens" : "";
  const readout = el("p", {
    class: "readout",
    "aria-live": "polite",
    text: "Hover or focus a cell for its exact weight.",
  });
  const label = `${title} attention weights: queries in rows, keys in columns`;
  const describe =
    map?.describe ??
    ((i, j) => `${title}: query “${tokens[i]}” (${i}) → key “${keyTokens[j]}” (${j}): ${exactValue(matrix[i][j])}`);
  const drawn = createHeatmap({
    values: matrix,
    rowLabels: tokens,
    colLabels: keyTokens,
    scale,
    label,
    head,
    cellSize: keyTokens.length <= 16 ? 30 : 22,
    readout,
    topKeys,
    showValues: true,
    nullLabel: "null (not a number)",
    describe: (i, j) => describe(i, j),
    kind: view.overview ? "overview" : "exact",
    onChoose: map?.onChoose,
  });
  const svgOf = () =>
    heatmapSvg({
      values: matrix,
      rowLabels: tokens,
      colLabels: keyTokens,
      scale,
      title: `${title} — attention weights`,
      subtitle: `“${tokens.join(" ")}” · rows: queries, columns: keys`,
    });
  const typed = kind === "head" && !view.overview ? headType(matrix, { pretrained: view.pretrained }) : null;
  const dot = el("span", {
    class: "head-dot",
    "aria-hidden": "true",
    style: { background: kind === "head" ? headColour(head) : AVERAGE_COLOUR },
  });
  return el(
    "figure",
    {
      class: `heatmap-card ${kind}`,
      data: { kind, head, layer: view.pretrained ? view.layer : null },
      "aria-labelledby": titleId,
    },
    el(
      "figcaption",
      {},
      el("h3", { id: titleId }, dot, title),
      el("p", {
        class: "card-sub",
        text: `${sizeLine(view, unit)}${note ? ` · ${note}` : ""}`,
      }),
      typed && el("p", { class: "head-type", data: { type: typed.type } }, "type: ", el("strong", { text: typed.type })),
      downloadButtons(title, svgOf),
    ),
    el("div", { class: "card-body" }, drawn, metricList({ view, entropy, distance, cls, sep })),
    readout,
    view.overview && el("div", { class: "card-detail", data: { part: "detail" } }),
  );
}
