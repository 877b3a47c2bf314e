// The model view of a pretrained result: every layer × head as a thumbnail heatmap (one Tab stop,
// arrow keys inside), the chosen layer's per-head metrics, the attention rollout and the shares of
// attention on [CLS] and [SEP].

import { formatNumber } from "./colors.js";
import { el } from "./dom.js";
import { createHeatmap } from "./heatmap.js";

const THUMB_PIXELS = 104; // canvas resolution of a thumbnail (drawn at about half that size)

const percent = (value) => (value === null || value === undefined ? "—" : `${formatNumber(value * 100, 1)}%`);

/** Paint an n × m matrix onto a canvas, one block of pixels per cell. */
export function drawThumbnail(canvas, matrix, scale) {
  const rows = matrix.length;
  const cols = rows ? matrix[0].length : 0;
  const k = Math.max(1, Math.ceil(THUMB_PIXELS / Math.max(rows, cols, 1)));
  canvas.width = Math.max(1, cols * k);
  canvas.height = Math.max(1, rows * k);
  const context = canvas.getContext("2d");
  if (!context) return;
  matrix.forEach((row, i) => {
    row.forEach((value, j) => {
      context.fillStyle = value === null ? "#d9dce5" : scale.colour(value);
      context.fillRect(j * k, i * k, k, k);
    });
  });
}

/** A thumbnail's accessible name: where it is and what the head does, in one sentence. */
export function thumbnailLabel(layer, head, { entropy, distance, cls, sep }) {
  const parts = [`entropy ${formatNumber(entropy, 2)} nats`, `mean distance ${formatNumber(distance, 2)}`];
  if (cls !== undefined) parts.push(`${percent(cls)} on [CLS]`);
  if (sep !== undefined) parts.push(`${percent(sep)} on [SEP]`);
  return `Layer ${layer}, head ${head}: ${parts.join(", ")}`;
}

/**
 * Fill `table` with the layer × head grid.
 * layers: one entry per layer {layer (0-based index in the model), attention (H × n × n),
 * metrics {entropy, mean_distance}, shares {cls, sep}}; scale: the shared colour scale;
 * onOpen(position, head): called on click or Enter; readout: polite live region.
 */
function thumbnail(entry, k, matrix, h, scale) {
  const label = thumbnailLabel(entry.layer, h, {
    entropy: entry.metrics.entropy?.[h],
    distance: entry.metrics.mean_distance?.[h],
    cls: entry.shares.cls?.[h],
    sep: entry.shares.sep?.[h],
  });
  const canvas = el("canvas", { "aria-hidden": "true" });
  drawThumbnail(canvas, matrix, scale);
  return el(
    "button",
    {
      type: "button",
      class: "thumb",
      data: { layer: k, head: h },
      tabindex: k === 0 && h === 0 ? 0 : -1,
      "aria-label": label,
      title: label,
    },
    canvas,
  );
}

/** Past this many layers or heads the grid's thumbnails shrink (model-view.css), 32 × 32 fits. */
const COMPACT_FROM = 13;

export function renderModelGrid(table, { layers, scale, onOpen, readout }) {
  const heads = layers[0]?.attention.length ?? 0;
  table.dataset.density = Math.max(heads, layers.length) >= COMPACT_FROM ? "compact" : "normal";
  const corner = el("td", {
    class: "corner",
    "aria-hidden": "true",
    html: '<span class="axis-note"><span>layers ↓</span><span>heads →</span></span>',
  });
  const columnHeaders = Array.from({ length: heads }, (_, h) =>
    el("th", { scope: "col", class: "col-label", data: { head: h }, "aria-label": `Head ${h}`, text: `H${h}` }),
  );
  const buttons = layers.map((entry, k) => entry.attention.map((matrix, h) => thumbnail(entry, k, matrix, h, scale)));
  const rows = layers.map((entry, k) =>
    el(
      "tr",
      { data: { layer: k } },
      el("th", { scope: "row", class: "row-label", text: `Layer ${entry.layer}` }),
      buttons[k].map((button) => el("td", {}, button)),
    ),
  );
  table.append(el("thead", {}, el("tr", {}, corner, columnHeaders)), el("tbody", {}, rows));
  wireGrid(table, buttons, onOpen, readout);
}

function wireGrid(table, buttons, onOpen, readout) {
  const rows = buttons.length;
  const cols = rows ? buttons[0].length : 0;
  const at = (button) => [Number(button.dataset.layer), Number(button.dataset.head)];
  table.addEventListener("click", (event) => {
    const button = event.target.closest("button.thumb");
    if (button) onOpen(...at(button));
  });
  table.addEventListener("focusin", (event) => {
    const button = event.target.closest("button.thumb");
    if (!button) return;
    for (const row of buttons) for (const other of row) other.tabIndex = -1;
    button.tabIndex = 0;
    if (readout) readout.textContent = `${button.getAttribute("aria-label")}. Enter opens it below.`;
  });
  table.addEventListener("keydown", (event) => {
    const button = event.target.closest("button.thumb");
    if (!button) return;
    let [k, h] = at(button);
    switch (event.key) {
      case "ArrowRight": h = Math.min(cols - 1, h + 1); break;
      case "ArrowLeft": h = Math.max(0, h - 1); break;
      case "ArrowDown": k = Math.min(rows - 1, k + 1); break;
      case "ArrowUp": k = Math.max(0, k - 1); break;
      case "Home": h = 0; if (event.ctrlKey) k = 0; break;
      case "End": h = cols - 1; if (event.ctrlKey) k = rows - 1; break;
      default: return;
    }
    event.preventDefault();
    buttons[k][h].focus();
  });
}

/** Mark the open thumbnail and the chosen layer's row; the roving Tab stop follows them. */
export function markSelection(table, position, head) {
  for (const button of table.querySelectorAll("button.thumb")) {
    const current = Number(button.dataset.layer) === position && Number(button.dataset.head) === head;
    if (current) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
    if (!table.contains(document.activeElement)) button.tabIndex = current ? 0 : -1;
  }
  for (const row of table.tBodies[0]?.rows ?? []) {
    row.classList.toggle("current-layer", Number(row.dataset.layer) === position);
  }
  for (const th of table.querySelectorAll("thead th.col-label")) {
    th.classList.toggle("current-head", Number(th.dataset.head) === head);
  }
}

/** A number cell with a bar behind it: `fraction` of the column's range. */
function barCell(text, fraction, value) {
  const bar = String(Math.max(0, Math.min(1, fraction || 0)));
  return el("td", { class: "num", text, style: { "--v": bar }, data: { value } });
}

const COLUMNS = [
  ["Head", ""],
  ["Entropy", "nats"],
  ["Distance", null],
];
const SHARE_COLUMNS = [
  ["[CLS]", "share"],
  ["[SEP]", "share"],
];

/**
 * The chosen layer's metrics per head as a table: entropy, mean distance, [CLS] and [SEP] shares.
 * maxEntropy and maxDistance set the bars' full length.
 */
export function renderLayerMetrics(table, { layer, metrics, shares, head, maxEntropy, maxDistance, unit }) {
  const withShares = shares.cls !== undefined || shares.sep !== undefined; // a decoder has none
  const headers = [...COLUMNS, ...(withShares ? SHARE_COLUMNS : [])].map(([text, title]) =>
    el("th", { scope: "col" }, text, title !== "" && el("small", { text: ` ${title ?? unit}` })),
  );
  const rows = (metrics.entropy ?? []).map((_, h) => {
    const e = metrics.entropy?.[h];
    const d = metrics.mean_distance?.[h];
    const c = shares.cls?.[h];
    const s = shares.sep?.[h];
    return el(
      "tr",
      { data: { head: h }, class: h === head ? "current" : null },
      el("th", { scope: "row", text: `Head ${h}` }),
      barCell(formatNumber(e, 2), e / (maxEntropy || 1), e),
      barCell(formatNumber(d, 2), d / (maxDistance || 1), d),
      withShares && barCell(percent(c), c, c),
      withShares && barCell(percent(s), s, s),
    );
  });
  table.replaceChildren(
    el("caption", { text: `Layer ${layer}, per head` }),
    el("thead", {}, el("tr", {}, headers)),
    el("tbody", {}, rows),
  );
}

/**
 * A figure holding one labelled heatmap with an explanation and a live readout.
 * id: the figure's id; rows × cols values; describe(i, j, value) names a cell.
 */
export function matrixFigure({ id, title, explain, values, rowLabels, colLabels, scale, label, describe, cellSize, rowAxis, colAxis }) {
  const titleId = `${id}-title`;
  const readout = el("p", { class: "readout", "aria-live": "polite", text: "Hover or focus a cell for its exact value." });
  const map = createHeatmap({
    values,
    rowLabels,
    colLabels,
    scale,
    label,
    rowAxis,
    colAxis,
    cellSize,
    readout,
    showValues: true,
    describe,
  });
  return el(
    "figure",
    { class: "heatmap-card matrix-card", id, "aria-labelledby": titleId },
    el("figcaption", {}, el("h3", { id: titleId, text: title })),
    el("p", { class: "card-sub matrix-explain", html: explain }),
    map,
    readout,
  );
}
