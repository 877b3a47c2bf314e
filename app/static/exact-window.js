// The exact weights of one head of a long input, a window at a time: the rows of the visible
// queries are fetched (output.heads + output.queries), drawn WINDOW keys wide, and moved by the
// pan buttons or by the arrow keys past the map's edge. One window is open at a time; a newer
// fetch aborts the older, so that fast panning does not pile requests up.

import { postAttention } from "./api.js";
import { createCanvasHeatmap } from "./canvas-heatmap.js";
import { el, note } from "./dom.js";
import { exactValue, hideTooltip } from "./heatmap.js";
import { WINDOW, windowBody } from "./long-inputs.js";

const STEP = WINDOW / 2; // a pan moves half a window
const clampStart = (start, length) => Math.max(0, Math.min(start, length - WINDOW));

/** The fetched rows (Lq × S) of the one head asked for, whichever family answered. */
function rowsOf(result) {
  const attention = result.attention;
  return Array.isArray(result.layers) ? attention[0][0] : attention[0];
}

export class ExactWindow {
  /** `apiKey()`: the key to send. */
  constructor(apiKey) {
    this.apiKey = apiKey;
    this.controller = null;
    this.open = null; // {slot, body, view, head, title, scale, row, col, rows}
  }

  /** The page's result changed: forget the open window, abort its fetch. */
  reset() {
    this.controller?.abort();
    this.controller = null;
    this.open?.slot.replaceChildren();
    this.open = null;
  }

  /**
   * Show the exact weights of `head` of `view` (an overview) from query `row` and key `col` on,
   * in `slot`. body: the request whose answer is on the page; title: the head's name.
   */
  async show({ slot, body, view, head, title, scale, row, col }) {
    if (this.open && this.open.slot !== slot) this.open.slot.replaceChildren();
    const { tokens, keyTokens } = view.overview;
    const start = clampStart(row, tokens.length);
    const stop = Math.min(tokens.length, start + WINDOW);
    this.open = { slot, body, view, head, title, scale, row: start, col: clampStart(col, keyTokens.length), rows: null };
    const shown = this.open;
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    slot.dataset.state = "loading";
    slot.replaceChildren(note(`Fetching the exact weights of queries ${start}–${stop - 1}…`));
    const request = windowBody(body, { head, layer: view.pretrained ? view.layer : null, start, stop });
    let outcome;
    try {
      outcome = await postAttention(request, this.apiKey(), controller.signal);
    } catch {
      return; // a newer window or result
    }
    if (this.controller !== controller) return;
    this.controller = null;
    if (!outcome.ok) {
      slot.dataset.state = "error";
      slot.replaceChildren(note(`The exact weights could not be fetched: ${outcome.message}`));
      return;
    }
    shown.rows = rowsOf(outcome.data.results[0]);
    this.draw(shown);
  }

  /** Move the open window by rows (a fetch) or by columns (drawn from the rows already here). */
  pan(rows, cols) {
    const open = this.open;
    if (!open?.rows) return;
    const { tokens, keyTokens } = open.view.overview;
    const col = clampStart(open.col + cols, keyTokens.length);
    const row = clampStart(open.row + rows, tokens.length);
    if (row !== open.row) this.show({ ...open, row, col });
    else if (col !== open.col) this.draw(Object.assign(open, { col }));
  }

  draw(open) {
    const { slot, view, head, title, scale, row, col, rows } = open;
    const { tokens, keyTokens } = view.overview;
    const width = Math.min(WINDOW, keyTokens.length - col);
    const readout = el("p", { class: "readout", "aria-live": "polite", text: "Hover or focus a cell for its exact weight." });
    const map = createCanvasHeatmap({
      rows: rows.length,
      cols: width,
      valueAt: (i, j) => rows[i][col + j],
      rowLabel: (i) => tokens[row + i],
      colLabel: (j) => keyTokens[col + j],
      scale,
      label: `${title}, exact attention weights of queries ${row}–${row + rows.length - 1} and keys ${col}–${col + width - 1}`,
      describe: (i, j) =>
        `${title}: query “${tokens[row + i]}” (${row + i}) → key “${keyTokens[col + j]}” (${col + j}): ${exactValue(rows[i][col + j])}`,
      readout,
      data: { head, kind: "window", rowStart: row, colStart: col },
      onEdge: (key) => this.pan(...{ ArrowUp: [-STEP, 0], ArrowDown: [STEP, 0], ArrowLeft: [0, -STEP], ArrowRight: [0, STEP] }[key] ?? [0, 0]),
    });
    hideTooltip();
    slot.dataset.state = "ready";
    slot.replaceChildren(
      el("h4", { text: `Exact weights: queries ${row}–${row + rows.length - 1} × keys ${col}–${col + width - 1} of ${tokens.length}` }),
      this.panButtons(open, width),
      map,
      readout,
    );
  }

  panButtons({ row, col, rows, view }, width) {
    const { tokens, keyTokens } = view.overview;
    const button = (text, rowsBy, colsBy, disabled) =>
      el("button", { type: "button", class: "secondary pan", text, disabled, on: { click: () => this.pan(rowsBy, colsBy) } });
    return el(
      "div",
      { class: "pan-buttons", role: "group", "aria-label": "Move the window" },
      button("↑ Earlier queries", -STEP, 0, row === 0),
      button("↓ Later queries", STEP, 0, row + rows.length >= tokens.length),
      button("← Earlier keys", 0, -STEP, col === 0),
      button("→ Later keys", 0, STEP, col + width >= keyTokens.length),
    );
  }
}
