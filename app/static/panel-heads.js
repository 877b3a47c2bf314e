// The Heads panel: one heatmap card per head of the view, then their average, all on one colour
// scale whose legend sits above them.

import { formatNumber, renderLegend } from "./colors.js";
import { el, note, part } from "./dom.js";
import { headCard } from "./head-card.js";
import { exactValue } from "./heatmap.js";
import { averageOf, layerPrefix, mean, weightScale } from "./view-model.js";

function maskedNote(view) {
  const masked = view.fullyMasked ?? [];
  if (!masked.length) return null;
  const queries = masked.map((i) => `“${view.tokens[i]}” (${i})`).join(", ");
  return note(`Queries ${queries} can attend to no key: every key is masked, so their rows are zeros.`);
}

/** What a block of an overview says on hover: its token ranges and both statistics. */
function describeBlock(view, title, h) {
  const { queryBounds, keyBounds, tokens, keyTokens, max, mean: means } = view.overview;
  const range = (bounds, labels, b) => `${bounds[b]}–${bounds[b + 1] - 1} (“${labels[bounds[b]]}” … “${labels[bounds[b + 1] - 1]}”)`;
  return (i, j) =>
    `${title}, block of queries ${range(queryBounds, tokens, i)} × keys ${range(keyBounds, keyTokens, j)}: ` +
    `max ${exactValue(max[h][i][j])}, mean ${exactValue(means[h][i][j])}`;
}

/** Max or mean: which block statistic the overview draws. */
function statisticChoice(view, onStatistic) {
  const choice = (value, text) =>
    el("label", {}, el("input", { type: "radio", name: "overview-statistic", value, checked: view.overview.statistic === value }), ` ${text}`);
  const group = el(
    "fieldset",
    { class: "statistic-choice" },
    el("legend", { text: "Each block drawn by its" }),
    choice("max", "largest weight (max)"),
    choice("mean", "mean weight"),
  );
  group.addEventListener("change", (event) => onStatistic(event.target.value));
  return group;
}

/**
 * Draw `view` into the Heads panel `container` (its legend and cards parts). An overview (a long
 * input) offers max or mean (`onStatistic(name)`) and opens a head's exact cells on a click
 * (`exact`: the ExactWindow, `body`: the request whose answer is on the page).
 */
export function renderHeadsPanel(container, view, { onStatistic = () => {}, exact = null, body = null } = {}) {
  const legendSlot = part(container, "legend");
  const cards = part(container, "cards");
  const attention = view.attention;
  if (!Array.isArray(attention) || !attention.length) {
    cards.replaceChildren(note("The response holds no per-head attention."));
    legendSlot.replaceChildren();
    return;
  }
  // an overview's scale is its blocks' max: the largest weight of all, so exact windows share it
  const scale = weightScale(view.overview?.max ?? attention);
  const legendLabel = view.pretrained
    ? `Attention weight (shared by the ${attention.length} heads of layer ${view.layer})`
    : "Attention weight (shared by all heads)";
  const legend = renderLegend(scale, legendLabel, { masked: true });
  legendSlot.replaceChildren(...(view.overview ? [legend, statisticChoice(view, onStatistic)] : [legend]));
  const metrics = view.metrics ?? {};
  const shares = view.shares;
  const prefix = layerPrefix(view);
  const titleOf = (h) => (prefix ? `${prefix}head ${h}` : `Head ${h}`);
  const overviewMap = (h) => {
    if (!view.overview) return undefined;
    const open = (i, j) => {
      const slot = part(container, "cards").querySelector(`figure[data-head="${h}"] [data-part="detail"]`);
      const { queryBounds, keyBounds } = view.overview;
      exact?.show({ slot, body, view, head: h, title: titleOf(h), scale, row: queryBounds[i], col: keyBounds[j] });
    };
    return { describe: describeBlock(view, titleOf(h), h), onChoose: open };
  };
  const heads = attention.map((matrix, h) =>
    headCard({
      kind: "head",
      head: h,
      title: titleOf(h),
      map: overviewMap(h),
      matrix,
      view,
      scale,
      entropy: metrics.entropy?.[h] ?? null,
      distance: metrics.mean_distance?.[h] ?? null,
      topKeys: metrics.top_key?.[h] ?? null,
      cls: shares?.cls?.[h],
      sep: shares?.sep?.[h],
    }),
  );
  const average = averageOf(attention);
  const averageCard = headCard({
    kind: "average",
    head: "average",
    title: prefix ? `${prefix}average of heads` : "Average of heads",
    matrix: average,
    view,
    scale,
    entropy: mean(metrics.entropy),
    distance: mean(metrics.mean_distance),
    cls: shares?.cls ? mean(shares.cls) : undefined,
    sep: shares?.sep ? mean(shares.sep) : undefined,
    note: "metrics: mean of the heads’",
    map: view.overview ? { describe: (i, j) => `Average of heads, block ${view.tokens[i]} × ${view.keyTokens[j]}: ${formatNumber(average[i][j], 4)}` } : undefined,
  });
  cards.replaceChildren(...[maskedNote(view), ...heads, averageCard].filter(Boolean));
}
