// The Connections panel: the BertViz-style lines of the head chosen in its own selector (or of
// the heads' average), for the view it was last given.

import { AVERAGE_COLOUR, headColour } from "./colors.js";
import { renderConnections } from "./connections.js";
import { fillHeadSelect, part } from "./dom.js";
import { averageOf, layerPrefix } from "./view-model.js";

export class ConnectionsPanel {
  /** `container`: the panel, holding the head, lines, caption and readout parts. */
  constructor(container) {
    this.select = part(container, "head");
    this.lines = part(container, "lines");
    this.caption = part(container, "caption");
    this.readout = part(container, "readout");
    this.view = null;
    this.select.addEventListener("change", () => this.draw());
  }

  /** Offer the heads of `view` and draw the chosen one. */
  show(view) {
    this.view = view;
    fillHeadSelect(this.select, view.attention?.length ?? 0, { average: true });
    this.draw();
  }

  draw() {
    const view = this.view;
    if (!view?.attention?.length) return;
    const choice = this.select.value;
    const isAverage = choice === "average";
    const h = isAverage ? 0 : Number(choice);
    const prefix = layerPrefix(view);
    const name = isAverage
      ? `${prefix}${prefix ? "average" : "Average"} of ${view.attention.length} heads`
      : `${prefix}${prefix ? "head" : "Head"} ${h + 1}`;
    renderConnections(this.lines, {
      matrix: isAverage ? averageOf(view.attention) : view.attention[h],
      tokens: view.tokens,
      keyTokens: view.keyTokens,
      colour: isAverage ? AVERAGE_COLOUR : headColour(h),
      name,
      readout: this.readout,
    });
    this.caption.textContent = `${name}: each query token (left) linked to every key token (right); line weight = attention weight.`;
    this.readout.textContent = "";
  }
}
