// The model view of a pretrained result: every layer × head as a thumbnail heatmap (one Tab stop,
// arrow keys inside), the chosen layer's per-head metrics, the attention rollout and the shares of
// attention on [CLS] and [SEP].

import { formatNumber } from "./colors.js";
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
  return `Layer ${layer + 1}, head ${head + 1}: ${parts.join(", ")}`;
}

/**
 * Fill `table` with the layer × head grid.
 * layers: one entry per layer {layer (0-based index in the model), attention (H × n × n),
 * metrics {entropy, mean_distance}, shares {cls, sep}}; scale: the shared colour scale;
 * onOpen(position, head): called on click or Enter; readout: polite live region.
 */
export function renderModelGrid(table, { layers, scale, onOpen, readout }) {
  const heads = layers[0]?.attention.length ?? 0;
  const head = table.createTHead();
  const headRow = head.insertRow();
  const corner = document.createElement("td");
  corner.className = "corner";
  corner.innerHTML = '<span class="axis-note"><span>layers ↓</span><span>heads →</span></span>';
  corner.setAttribute("aria-hidden", "true");
  headRow.append(corner);
  for (let h = 0; h < heads; h += 1) {
    const th = document.createElement("th");
    th.scope = "col";
    th.className = "col-label";
    th.dataset.head = String(h);
    th.textContent = `H${h + 1}`;
    th.setAttribute("aria-label", `Head ${h + 1}`);
    headRow.append(th);
  }
  const body = table.createTBody();
  const buttons = layers.map((entry, k) => {
    const tr = body.insertRow();
    tr.dataset.layer = String(k);
    const th = document.createElement("th");
    th.scope = "row";
    th.className = "row-label";
    th.textContent = `Layer ${entry.layer + 1}`;
    tr.append(th);
    return entry.attention.map((matrix, h) => {
      const td = tr.insertCell();
      const button = document.createElement("button");
      button.type = "button";
      button.className = "thumb";
      button.dataset.layer = String(k);
      button.dataset.head = String(h);
      button.tabIndex = k === 0 && h === 0 ? 0 : -1;
      const label = thumbnailLabel(entry.layer, h, {
        entropy: entry.metrics.entropy?.[h],
        distance: entry.metrics.mean_distance?.[h],
        cls: entry.shares.cls?.[h],
        sep: entry.shares.sep?.[h],
      });
      button.setAttribute("aria-label", label);
      button.title = label;
      const canvas = document.createElement("canvas");
      canvas.setAttribute("aria-hidden", "true");
      drawThumbnail(canvas, matrix, scale);
      button.append(canvas);
      td.append(button);
      return button;
    });
  });
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

function cell(tag, text, className) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (className) el.className = className;
  return el;
}

/** A number cell with a bar behind it: `fraction` of the column's range. */
function barCell(text, fraction, value) {
  const td = cell("td", text, "num");
  td.style.setProperty("--v", String(Math.max(0, Math.min(1, fraction || 0))));
  if (value !== undefined && value !== null) td.dataset.value = String(value);
  return td;
}

/**
 * The chosen layer's metrics per head as a table: entropy, mean distance, [CLS] and [SEP] shares.
 * maxEntropy and maxDistance set the bars' full length.
 */
export function renderLayerMetrics(table, { layer, metrics, shares, head, maxEntropy, maxDistance, unit }) {
  table.replaceChildren(); // createTHead() would otherwise hand back the old head
  const caption = document.createElement("caption");
  caption.textContent = `Layer ${layer + 1}, per head`;
  const thead = table.createTHead();
  const headRow = thead.insertRow();
  for (const [text, title] of [
    ["Head", ""],
    ["Entropy", "nats"],
    ["Distance", unit],
    ["[CLS]", "share"],
    ["[SEP]", "share"],
  ]) {
    const th = cell("th", text);
    th.scope = "col";
    if (title) th.append(cell("small", ` ${title}`));
    headRow.append(th);
  }
  const body = table.createTBody();
  const heads = metrics.entropy?.length ?? 0;
  for (let h = 0; h < heads; h += 1) {
    const tr = body.insertRow();
    tr.dataset.head = String(h);
    if (h === head) tr.classList.add("current");
    const th = cell("th", `Head ${h + 1}`);
    th.scope = "row";
    const e = metrics.entropy?.[h];
    const d = metrics.mean_distance?.[h];
    const c = shares.cls?.[h];
    const s = shares.sep?.[h];
    tr.append(
      th,
      barCell(formatNumber(e, 2), e / (maxEntropy || 1), e),
      barCell(formatNumber(d, 2), d / (maxDistance || 1), d),
      barCell(percent(c), c, c),
      barCell(percent(s), s, s),
    );
  }
  table.replaceChildren(caption, thead, body);
}

/**
 * A figure holding one labelled heatmap with an explanation and a live readout.
 * id: the figure's id; rows × cols values; describe(i, j, value) names a cell.
 */
export function matrixFigure({ id, title, explain, values, rowLabels, colLabels, scale, label, describe, cellSize, rowAxis, colAxis }) {
  const figure = document.createElement("figure");
  figure.className = "heatmap-card matrix-card";
  figure.id = id;
  const titleId = `${id}-title`;
  figure.setAttribute("aria-labelledby", titleId);
  const caption = document.createElement("figcaption");
  const h3 = cell("h3", title);
  h3.id = titleId;
  caption.append(h3);
  const text = cell("p", "", "card-sub matrix-explain");
  text.innerHTML = explain;
  const readout = cell("p", "Hover or focus a cell for its exact value.", "readout");
  readout.setAttribute("aria-live", "polite");
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
  figure.append(caption, text, map, readout);
  return figure;
}
