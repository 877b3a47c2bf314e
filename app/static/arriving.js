// The model view while a streamed answer comes (stream.js): the layers × heads grid filled row
// by row as each layer's frame arrives. Nothing of it can be opened yet: once the end frame has
// come, the whole answer is drawn as any answer is (panel-model.js) and replaces all of this.

import { renderLegend } from "./colors.js";
import { el, part } from "./dom.js";
import { drawThumbnail } from "./model-view.js";
import { viewOf, weightScale } from "./view-model.js";

/** The parts of the model panel that belong to the whole answer: emptied while layers come. */
const WHOLE_ANSWER_PARTS = ["grid-exports", "grid-readout", "detail", "metrics", "rollout", "shares"];

export class ArrivingGrid {
  /**
   * `panel`: the model panel (its data-part pieces); tabs: the page's Tabs; state: the page
   * state (statistic, shownPretrained); restore(): draw again the result the page holds, if any.
   */
  constructor(panel, { tabs, state, restore }) {
    this.panel = panel;
    this.tabs = tabs;
    this.state = state;
    this.restore = restore;
    this.reset();
  }

  reset() {
    this.rows = new Map(); // position in the head's layers -> {canvases, attention}
    this.scale = null;
  }

  part(name) {
    return part(this.panel, name);
  }

  /** The head has come: the grid's frame, a row of empty cells for each layer to come. */
  start(answer) {
    this.reset();
    const { layers, config } = answer.head;
    const heads = config.num_heads ?? 0;
    this.panel.dataset.arriving = "true";
    const tab = this.tabs.byId("tab-model");
    tab.hidden = false;
    // a pretrained result opens on its model view (explorer.js, render): show it filling
    if (!this.state.shownPretrained) this.tabs.select(tab);
    for (const name of WHOLE_ANSWER_PARTS) this.part(name).replaceChildren();
    this.part("legend").replaceChildren();
    this.part("metrics-title").textContent = "Per-head metrics";
    this.part("grid-sub").textContent = `${layers.length} layers × ${heads} heads, drawn as each layer is computed.`;
    const header = Array.from({ length: heads }, (_, h) => el("th", { scope: "col", class: "col-label", text: `H${h}` }));
    const rows = layers.map((layer, k) =>
      el(
        "tr",
        { data: { layer: k, arriving: "pending" } },
        el("th", { scope: "row", class: "row-label", text: `Layer ${layer}` }),
        header.map(() => el("td", {}, el("span", { class: "thumb pending", "aria-hidden": "true" }))),
      ),
    );
    const grid = this.part("grid");
    const fresh = grid.cloneNode(false); // no listeners of an earlier grid: nothing opens yet
    fresh.append(el("thead", {}, el("tr", {}, el("td", { class: "corner" }), header)), el("tbody", {}, rows));
    grid.replaceWith(fresh);
  }

  /** Model layer `layer` has come: draw its row, on the scale of every layer drawn so far. */
  layer(answer, layer) {
    const position = answer.head.layers.indexOf(layer);
    const view = viewOf(answer.layerAnswer(layer).results[0], { position: 0, statistic: this.state.statistic });
    const row = this.part("grid").tBodies[0]?.rows[position];
    if (!row) return;
    const canvases = view.attention.map(() => el("canvas", { "aria-hidden": "true" }));
    row.querySelectorAll("td").forEach((cell, h) => cell.replaceChildren(el("span", { class: "thumb arrived", "aria-hidden": "true" }, canvases[h])));
    row.dataset.arriving = "drawn";
    this.rows.set(position, { canvases, attention: view.attention });
    const scale = weightScale([...this.rows.values()].map((drawn) => drawn.attention));
    const wider = this.scale === null || scale.max !== this.scale.max;
    this.scale = scale;
    // a larger weight than any so far changes every colour: the rows drawn before follow it
    for (const [k, drawn] of this.rows) if (wider || k === position) this.paint(drawn);
    if (wider) this.part("legend").replaceChildren(renderLegend(scale, "Attention weight (the layers computed so far)"));
  }

  paint({ canvases, attention }) {
    attention.forEach((matrix, h) => drawThumbnail(canvases[h], matrix, this.scale));
  }

  /** The whole answer has come and is drawn: the grid is the model panel's again. */
  finish() {
    delete this.panel.dataset.arriving;
    this.reset();
  }

  /** The stream broke off: its layers go, and the result the page holds (if any) comes back. */
  abandon() {
    this.finish();
    this.part("grid").replaceChildren();
    this.part("grid-sub").textContent = "";
    this.part("legend").replaceChildren();
    const tab = this.tabs.byId("tab-model");
    if (this.tabs.isSelected(tab)) this.tabs.select(this.tabs.byId("tab-heads"));
    tab.hidden = true;
    this.restore();
  }
}
