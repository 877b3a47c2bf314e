// The Connections panel: the BertViz-style lines of the head chosen in its own selector (or of
// the heads' average), for the view it was last given.

import { AVERAGE_COLOUR, headColour } from "./colors.js";
import { renderConnections } from "./connections.js";
import { fillHeadSelect, part } from "./dom.js";
import { connectionsSvg, downloadButtons } from "./download.js";
import { averageOf, layerPrefix } from "./view-model.js";

export class ConnectionsPanel {
  /**
   * `container`: the panel, holding the head, lines, caption and readout parts. onHead(head): a
   * head (not the average) was chosen here, so that the other views follow.
   */
  constructor(container, { onHead = () => {} } = {}) {
    this.select = part(container, "head");
    this.lines = part(container, "lines");
    this.caption = part(container, "caption");
    this.readout = part(container, "readout");
    this.exports = part(container, "exports");
    this.view = null;
    this.select.addEventListener("change", () => {
      this.draw();
      if (this.select.value !== "average") onHead(Number(this.select.value));
    });
  }

  /** Offer the heads of `view` and draw `head` (the one chosen in every view). */
  show(view, head) {
    this.view = view;
    fillHeadSelect(this.select, view.attention?.length ?? 0, { average: true });
    this.selectHead(head);
    this.draw();
  }

  /** Another view chose `head`: follow it (without redrawing when nothing changes). */
  selectHead(head) {
    if (this.select.value === String(head) || !this.select.querySelector(`option[value="${head}"]`)) return false;
    this.select.value = String(head);
    return true;
  }

  followHead(head) {
    if (this.selectHead(head)) this.draw();
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
      : `${prefix}${prefix ? "head" : "Head"} ${h}`;
    const drawn = {
      matrix: isAverage ? averageOf(view.attention) : view.attention[h],
      tokens: view.tokens,
      keyTokens: view.keyTokens,
      colour: isAverage ? AVERAGE_COLOUR : headColour(h),
    };
    renderConnections(this.lines, { ...drawn, name, readout: this.readout });
    const title = `Connections, ${name}`;
    this.exports.replaceChildren(downloadButtons(title, () => connectionsSvg({ ...drawn, title })));
    this.caption.textContent = `${name}: each query token (left) linked to every key token (right); line weight = attention weight.`;
    this.readout.textContent = "";
  }
}
