// One head's card, used by the Heads panel and the model view's large view: the heatmap, the
// head's metrics beside it and the SVG / PNG downloads.

import { AVERAGE_COLOUR, formatNumber, headColour } from "./colors.js";
import { el } from "./dom.js";
import { downloadButtons, heatmapSvg } from "./download.js";
import { headType } from "./head-types.js";
import { createHeatmap } from "./heatmap.js";

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
  const keys = view.keyTokens.length;
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
    metricBlock("Mean distance", distance, Math.max(1, view.tokens.length - 1), view.words ? "words" : "tokens",
      "how far away it looks"),
    known(cls) && metricBlock("On [CLS]", cls * 100, 100, "%", "share of the weight on [CLS]", 1),
    known(sep) && metricBlock("On [SEP]", sep * 100, 100, "%", "share of the weight on [SEP]", 1),
  );
}

/**
 * A head (kind "head") or the heads' average (kind "average") as a figure.
 * view: the view model it belongs to (tokens, keyTokens, pretrained, layer, words); matrix: its
 * weights; scale: the colour scale; entropy, distance, topKeys, cls, sep: its metrics (any may
 * be missing); note: appended to the subtitle; idPrefix: keeps ids unique across panels.
 */
export function headCard({ kind, head, title, matrix, view, scale, entropy, distance, topKeys, cls, sep, note, idPrefix = "" }) {
  const { tokens, keyTokens } = view;
  const titleId = `${idPrefix}heatmap-${head}-title`;
  const unit = view.words ? "words" : view.pretrained ? "WordPieces" : "";
  const readout = el("p", {
    class: "readout",
    "aria-live": "polite",
    text: "Hover or focus a cell for its exact weight.",
  });
  const map = createHeatmap({
    values: matrix,
    rowLabels: tokens,
    colLabels: keyTokens,
    scale,
    label: `${title} attention weights: queries in rows, keys in columns`,
    head,
    cellSize: keyTokens.length <= 16 ? 30 : keyTokens.length <= 32 ? 22 : 16,
    readout,
    topKeys,
    showValues: true,
    nullLabel: "null (not a number)",
    describe: (i, j, value) =>
      `${title}: query “${tokens[i]}” (${i}) → key “${keyTokens[j]}” (${j}): ${value === null ? "null" : String(value)}`,
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
  const typed = kind === "head" ? headType(matrix, { pretrained: view.pretrained }) : null;
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
        text: `${tokens.length} queries × ${keyTokens.length} keys${unit ? ` (${unit})` : ""}${note ? ` · ${note}` : ""}`,
      }),
      typed && el("p", { class: "head-type", data: { type: typed.type } }, "type: ", el("strong", { text: typed.type })),
      downloadButtons(title, svgOf),
    ),
    el("div", { class: "card-body" }, map, metricList({ view, entropy, distance, cls, sep })),
    readout,
  );
}
