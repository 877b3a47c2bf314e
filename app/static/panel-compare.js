// The Compare panel: two heads (of any layers) side by side on the same tokens, on one colour
// scale, and their difference A − B on a diverging scale (red: B attends more, blue: A does).

import { makeScale, renderLegend } from "./colors.js";
import { el, part } from "./dom.js";
import { downloadButtons, heatmapSvg } from "./download.js";
import { headCard } from "./head-card.js";
import { createHeatmap } from "./heatmap.js";
import { weightScale } from "./view-model.js";

const nameOf = (view, head) => (view.pretrained ? `Layer ${view.layer}, head ${head}` : `Head ${head}`);

export class ComparePanel {
  /** `container`: the panel, holding the head-a, head-b and maps parts. */
  constructor(container) {
    this.a = part(container, "head-a");
    this.b = part(container, "head-b");
    this.maps = part(container, "maps");
    this.views = [];
    for (const select of [this.a, this.b]) select.addEventListener("change", () => this.draw());
  }

  /** `views`: every layer's view of the result on the page (position, layer, attention, tokens…). */
  show(views) {
    this.views = views;
    const options = () =>
      views.flatMap((view) => view.attention.map((_, h) => new Option(nameOf(view, h), `${view.position}:${h}`)));
    for (const [select, fallback] of [[this.a, 0], [this.b, 1]]) {
      const previous = select.value;
      const all = options();
      select.replaceChildren(...all);
      select.value = all.some((o) => o.value === previous) ? previous : all[Math.min(fallback, all.length - 1)].value;
    }
    this.draw();
  }

  chosen(select) {
    const [position, head] = select.value.split(":").map(Number);
    const view = this.views.find((v) => v.position === position);
    return { view, head, matrix: view.attention[head], name: nameOf(view, head) };
  }

  draw() {
    if (!this.views.length) return;
    const a = this.chosen(this.a);
    const b = this.chosen(this.b);
    const scale = weightScale([a.matrix, b.matrix]);
    const card = (side, { view, head, matrix, name }) =>
      headCard({ kind: "head", head, title: `${side}: ${name}`, matrix, view, scale, idPrefix: `compare-${side}-`, note: "one scale for A and B" });
    this.maps.replaceChildren(card("A", a), card("B", b), this.difference(a, b));
  }

  difference(a, b) {
    const diff = a.matrix.map((row, i) => row.map((w, j) => (w === null || b.matrix[i][j] === null ? null : w - b.matrix[i][j])));
    const bound = Math.max(1e-9, ...diff.flat().filter((v) => v !== null).map(Math.abs));
    const scale = makeScale("diverging", -bound, bound);
    const title = `A − B: ${a.name} minus ${b.name}`;
    const { tokens, keyTokens } = a.view;
    const readout = el("p", { class: "readout", "aria-live": "polite", text: "Hover or focus a cell for the difference." });
    const map = createHeatmap({
      values: diff,
      rowLabels: tokens,
      colLabels: keyTokens,
      scale,
      label: `${title}: queries in rows, keys in columns`,
      head: "difference",
      readout,
      showValues: true,
    });
    return el(
      "figure",
      { class: "heatmap-card difference", data: { kind: "difference" } },
      el(
        "figcaption",
        {},
        el("h3", { text: title }),
        el("p", { class: "card-sub", text: "Blue: A attends more; red: B does." }),
        downloadButtons(title, () => heatmapSvg({ values: diff, rowLabels: tokens, colLabels: keyTokens, scale, title, subtitle: "A − B, queries in rows, keys in columns" })),
      ),
      map,
      renderLegend(scale, "A − B"),
      readout,
    );
  }
}
