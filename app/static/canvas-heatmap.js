// One matrix drawn on a canvas from pixel data: one pixel per cell written into an ImageData and
// scaled up by CSS (image-rendering: pixelated), so a map of any size is one element, not one
// per cell. Hover and the arrow keys move over the cells; the tooltip and an aria-live readout
// give the cell's description, with its value as the API wrote it. (Tables or canvas: the rule is
// long-inputs.js drawsAsTable.)

import { el } from "./dom.js";
import { hideTooltip, placeTooltip } from "./heatmap.js";

const NULL_RGB = [163, 169, 184]; // the hatching's ink of a masked cell in a table (results.css)
const LABEL_PX = 13; // a label's line: labels thin out to one per this many pixels
const MAP_PX = 512; // the map's side on screen, at most

/** On-screen pixels per cell: the map fits MAP_PX, with cells of 4 to 16 px. */
export const cellPixels = (rows, cols) => Math.max(4, Math.min(16, Math.floor(MAP_PX / Math.max(rows, cols, 1))));

/** Write every cell's colour into the canvas, one pixel per cell. */
function paint(canvas, { rows, cols, valueAt, scale }) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(cols, rows);
  for (let i = 0; i < rows; i += 1) {
    for (let j = 0; j < cols; j += 1) {
      const value = valueAt(i, j);
      const rgb = value === null || value === undefined ? NULL_RGB : scale.rgb(value);
      const at = (i * cols + j) * 4;
      image.data.set(rgb, at);
      image.data[at + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
}

/** The labels of one axis, thinned to one per LABEL_PX on screen (the readout names every cell). */
function axisLabels(axis, count, cell, labelOf) {
  const every = Math.ceil(LABEL_PX / cell);
  const labels = [];
  for (let k = 0; k < count; k += every) {
    const text = String(labelOf(k));
    const offset = { [axis === "row" ? "top" : "left"]: `${k * cell}px` };
    labels.push(el("span", { class: "axis-label", title: text, text, style: offset }));
  }
  const size = { [axis === "row" ? "height" : "width"]: `${count * cell}px` };
  return el("div", { class: `canvas-axis canvas-${axis}s`, "aria-hidden": "true", style: size }, labels);
}

/**
 * A heatmap on a canvas. opts: rows, cols, valueAt(i, j) (a number or null), rowLabel(i),
 * colLabel(j), scale (colors.js), label (the map's accessible name), describe(i, j) (what the
 * tooltip and readout say), readout (an aria-live element), data (the canvas's dataset),
 * onChoose(i, j) (a click or Enter on a cell), onEdge(key) (an arrow key past the edge).
 */
export function createCanvasHeatmap(opts) {
  const { rows, cols, rowLabel, colLabel, label, data = {} } = opts;
  const cell = cellPixels(rows, cols);
  const canvas = el("canvas", {
    class: "heatmap-canvas",
    width: cols,
    height: rows,
    tabindex: 0,
    role: "img",
    "aria-label": `${label}. Arrow keys move between the cells; each is read out below the map.`,
    data: { rows, cols, cell, ...data },
    style: { width: `${cols * cell}px`, height: `${rows * cell}px` },
  });
  paint(canvas, opts);
  const marker = el("div", { class: "canvas-marker", hidden: true, "aria-hidden": "true" });
  const map = el(
    "div",
    { class: "canvas-heatmap", style: { "--cell": `${cell}px` } },
    el("div", { class: "canvas-corner", "aria-hidden": "true" }),
    axisLabels("col", cols, cell, colLabel),
    axisLabels("row", rows, cell, rowLabel),
    el("div", { class: "canvas-plot" }, canvas, marker),
  );
  wire(canvas, marker, cell, opts);
  return el("div", { class: "matrix-scroll" }, map);
}

const KEY_MOVES = {
  ArrowRight: ([i, j]) => [i, j + 1],
  ArrowLeft: ([i, j]) => [i, j - 1],
  ArrowDown: ([i, j]) => [i + 1, j],
  ArrowUp: ([i, j]) => [i - 1, j],
  Home: ([i], ctrl) => [ctrl ? 0 : i, 0],
  End: ([i], ctrl, n) => [ctrl ? n.rows - 1 : i, n.cols - 1],
  PageUp: ([, j]) => [0, j],
  PageDown: ([, j], ctrl, n) => [n.rows - 1, j],
};

function wire(canvas, marker, cell, opts) {
  const { rows, cols, describe, readout, onChoose, onEdge } = opts;
  let focused = null; // [i, j]: the cell the keys move
  let shown = null;
  const inside = ([i, j]) => i >= 0 && j >= 0 && i < rows && j < cols;
  const cellOf = (event) => {
    const box = canvas.getBoundingClientRect();
    const at = [Math.floor((event.clientY - box.top) / cell), Math.floor((event.clientX - box.left) / cell)];
    return inside(at) ? at : null;
  };
  function show([i, j]) {
    shown = [i, j];
    const text = describe(i, j);
    if (readout) readout.textContent = text;
    const box = canvas.getBoundingClientRect();
    placeTooltip(text, { left: box.left + j * cell, width: cell }, box);
    marker.hidden = false;
    marker.style.setProperty("transform", `translate(${j * cell}px, ${i * cell}px)`);
    Object.assign(canvas.dataset, { row: i, col: j });
  }
  function leave() {
    hideTooltip();
    if (document.activeElement === canvas && focused) show(focused);
    else marker.hidden = true;
  }
  canvas.addEventListener("mousemove", (event) => {
    const at = cellOf(event);
    if (at && (at[0] !== shown?.[0] || at[1] !== shown?.[1])) show(at);
  });
  canvas.addEventListener("mouseleave", leave);
  canvas.addEventListener("click", (event) => {
    const at = cellOf(event);
    if (at && onChoose) onChoose(...at);
  });
  canvas.addEventListener("focus", () => show((focused ??= [0, 0])));
  canvas.addEventListener("blur", () => {
    hideTooltip();
    marker.hidden = true;
  });
  canvas.addEventListener("keydown", (event) => {
    if (event.key === "Escape") return hideTooltip();
    if (event.key === "Enter" && onChoose && focused) return onChoose(...focused);
    const move = KEY_MOVES[event.key];
    if (!move) return;
    event.preventDefault();
    const next = move(focused ?? [0, 0], event.ctrlKey, { rows, cols });
    if (inside(next)) show((focused = next));
    else if (onEdge) onEdge(event.key);
  });
}
