// The Connections panel: the BertViz-style lines of the head chosen in its own selector (or of
// the heads' average), for the view it was last given. Drawn when the panel is open only. A
// long input (an overview on the page: long-inputs.js) draws each query's CONNECTIONS_TOP_K
// strongest keys, asked for with output.top_k, and says how much of the attention they cover;
// the first TOKENS_SHOWN tokens are drawn until all are asked for.

import { postAttention } from "./api.js";
import { AVERAGE_COLOUR, formatNumber, headColour } from "./colors.js";
import { pairsOfMatrix, pairsOfTopK, renderConnections } from "./connections.js";
import { el, fillHeadSelect, note, part } from "./dom.js";
import { connectionsSvg, downloadButtons } from "./download.js";
import { CONNECTIONS_TOP_K, TOKENS_SHOWN, topKBody } from "./long-inputs.js";
import { averageOf, layerPrefix } from "./view-model.js";

/** The top_k of one head (perHead) or of the average, of the answer's one result and layer. */
function topKOf(result, perHead) {
  const pick = (values) => {
    const layer = Array.isArray(result.layers) ? values[0] : values;
    return perHead ? layer[0] : layer; // the one head asked for: drop its axis
  };
  const { keys, weights, mass } = result.top_k;
  return { keys: pick(keys), weights: pick(weights), mass: mass ? pick(mass) : [] };
}

/** A shown × shown matrix of the pairs, for the SVG download (zeros where no line is drawn). */
function matrixOfPairs(pairs, size) {
  const matrix = Array.from({ length: size }, () => new Array(size).fill(0));
  pairs.slice(0, size).forEach((row, i) => row.forEach(([j, w]) => j < size && (matrix[i][j] = w)));
  return matrix;
}

export class ConnectionsPanel {
  /**
   * `container`: the panel, holding the head, lines, caption and readout parts. onHead(head): a
   * head (not the average) was chosen here, so that the other views follow.
   */
  constructor(container, { onHead = () => {} } = {}) {
    this.container = container;
    this.select = part(container, "head");
    this.lines = part(container, "lines");
    this.caption = part(container, "caption");
    this.readout = part(container, "readout");
    this.exports = part(container, "exports");
    this.apiKey = () => "";
    this.view = null;
    this.body = null;
    this.drawn = null; // what is on screen: the view and the choice it was drawn for
    this.controller = null;
    this.select.addEventListener("change", () => {
      this.draw();
      if (this.select.value !== "average") onHead(Number(this.select.value));
    });
  }

  /**
   * Offer the heads of `view` and draw `head` (the one chosen in every view) once shown. body:
   * the request behind the view, apiKey(): the key to send, for the top-k of a long input.
   */
  show(view, head, { body = null, apiKey = () => "" } = {}) {
    this.view = view;
    this.body = body;
    this.apiKey = apiKey;
    this.shown = TOKENS_SHOWN;
    fillHeadSelect(this.select, view.attention?.length ?? 0, { average: true });
    this.selectHead(head);
    this.drawn = null;
    this.draw();
  }

  /** The panel came into view: draw what waited for it. */
  revealed() {
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
    if (!view?.attention?.length || this.container.hidden) return;
    const choice = this.select.value;
    if (this.drawn?.view === view && this.drawn.choice === choice && this.drawn.shown === this.shown) return;
    this.drawn = { view, choice, shown: this.shown };
    const isAverage = choice === "average";
    const h = isAverage ? 0 : Number(choice);
    const prefix = layerPrefix(view);
    const name = isAverage
      ? `${prefix}${prefix ? "average" : "Average"} of ${view.attention.length} heads`
      : `${prefix}${prefix ? "head" : "Head"} ${h}`;
    const colour = isAverage ? AVERAGE_COLOUR : headColour(h);
    if (view.overview) this.drawTopK({ view, head: isAverage ? null : h, name, colour });
    else {
      const matrix = isAverage ? averageOf(view.attention) : view.attention[h];
      const caption = `${name}: each query token (left) linked to every key token (right); line weight = attention weight.`;
      this.drawPairs({ pairs: pairsOfMatrix(matrix), tokens: view.tokens, keyTokens: view.keyTokens, name, colour, caption });
    }
  }

  /** A long input: fetch the chosen head's top_k, then draw its lines. */
  async drawTopK({ view, head, name, colour }) {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.lines.dataset.state = "loading";
    this.lines.replaceChildren(note(`Fetching the ${CONNECTIONS_TOP_K} strongest keys of each query…`));
    const layer = view.pretrained ? view.layer : null;
    let outcome;
    try {
      outcome = await postAttention(topKBody(this.body, { head, layer }), this.apiKey(), controller.signal);
    } catch {
      return; // a newer choice or result
    }
    if (this.controller !== controller) return;
    this.controller = null;
    if (!outcome.ok) {
      this.lines.dataset.state = "error";
      this.lines.replaceChildren(note(`The strongest keys could not be fetched: ${outcome.message}`));
      return;
    }
    const { keys, weights, mass } = topKOf(outcome.data.results[0], head !== null);
    const covered = mass.length ? mass.reduce((a, b) => a + (b ?? 0), 0) / mass.length : null;
    const { tokens, keyTokens } = view.overview;
    const caption =
      `${name}: each query token (left) linked to its ${CONNECTIONS_TOP_K} strongest keys (right), ` +
      `which cover ${formatNumber(covered * 100, 1)}% of its attention on average; line weight = attention weight.`;
    this.drawPairs({ pairs: pairsOfTopK(keys, weights), tokens, keyTokens, name, colour, caption, covered });
  }

  drawPairs({ pairs, tokens, keyTokens, name, colour, caption, covered = null }) {
    const shown = Math.min(this.shown, Math.max(tokens.length, keyTokens.length));
    renderConnections(this.lines, { pairs, tokens, keyTokens, colour, name, readout: this.readout, shown });
    this.lines.dataset.state = "ready";
    if (covered !== null) this.lines.dataset.mass = String(covered);
    else delete this.lines.dataset.mass;
    const size = Math.min(shown, tokens.length, keyTokens.length);
    const drawn = { matrix: matrixOfPairs(pairs, size), tokens: tokens.slice(0, size), keyTokens: keyTokens.slice(0, size), colour };
    const title = `Connections, ${name}`;
    this.exports.replaceChildren(downloadButtons(title, () => connectionsSvg({ ...drawn, title })));
    const hidden = Math.max(tokens.length, keyTokens.length) - shown;
    this.caption.replaceChildren(caption, hidden > 0 ? this.showAllButton(tokens.length, shown) : "");
    this.readout.textContent = "";
  }

  /** "Show all 2,048 tokens": the first `shown` are drawn until asked. */
  showAllButton(total, shown) {
    const button = el("button", {
      type: "button",
      class: "secondary show-all",
      text: `Show all ${total.toLocaleString("en")} tokens`,
    });
    button.addEventListener("click", () => {
      this.shown = Infinity;
      this.draw();
    });
    return el("span", { class: "collapsed-note" }, ` The first ${shown} tokens are drawn. `, button);
  }
}
