// The Heads panel: one heatmap card per head of the view, then their average, all on one colour
// scale whose legend sits above them.

import { renderLegend } from "./colors.js";
import { note, part } from "./dom.js";
import { headCard } from "./head-card.js";
import { averageOf, layerPrefix, mean, weightScale } from "./view-model.js";

function maskedNote(view) {
  const masked = view.fullyMasked ?? [];
  if (!masked.length) return null;
  const queries = masked.map((i) => `“${view.tokens[i]}” (${i})`).join(", ");
  return note(`Queries ${queries} can attend to no key: every key is masked, so their rows are zeros.`);
}

/** Draw `view` into the Heads panel `container` (its legend and cards parts). */
export function renderHeadsPanel(container, view) {
  const legendSlot = part(container, "legend");
  const cards = part(container, "cards");
  const attention = view.attention;
  if (!Array.isArray(attention) || !attention.length) {
    cards.replaceChildren(note("The response holds no per-head attention."));
    legendSlot.replaceChildren();
    return;
  }
  const scale = weightScale(attention);
  const legendLabel = view.pretrained
    ? `Attention weight (shared by the ${attention.length} heads of layer ${view.layer})`
    : "Attention weight (shared by all heads)";
  legendSlot.replaceChildren(renderLegend(scale, legendLabel, { masked: true }));
  const metrics = view.metrics ?? {};
  const shares = view.shares;
  const prefix = layerPrefix(view);
  const heads = attention.map((matrix, h) =>
    headCard({
      kind: "head",
      head: h,
      title: prefix ? `${prefix}head ${h}` : `Head ${h}`,
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
  const average = headCard({
    kind: "average",
    head: "average",
    title: prefix ? `${prefix}average of heads` : "Average of heads",
    matrix: averageOf(attention),
    view,
    scale,
    entropy: mean(metrics.entropy),
    distance: mean(metrics.mean_distance),
    cls: shares?.cls ? mean(shares.cls) : undefined,
    sep: shares?.sep ? mean(shares.sep) : undefined,
    note: "metrics: mean of the heads’",
  });
  cards.replaceChildren(...[maskedNote(view), ...heads, average].filter(Boolean));
}
