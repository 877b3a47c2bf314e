// One matrix drawn as an HTML table: each cell coloured, focusable by roving focus, its exact value
// in data-value, shown in a tooltip and in an aria-live readout on hover or keyboard focus.

import { createCanvasHeatmap } from "./canvas-heatmap.js";
import { el } from "./dom.js";
import { drawsAsTable } from "./long-inputs.js";

let tooltip = null;

function tooltipElement() {
  tooltip ??= document.getElementById("tooltip");
  return tooltip;
}

/** The value as the JSON response wrote it (JSON numbers survive JS's shortest round trip). */
export function exactValue(value) {
  return value === null || value === undefined ? "null" : String(value);
}

/**
 * Show `text` next to `cell` without covering the heatmap's labels or cells: above the table
 * when there is room on screen, else below it, at the cell's column.
 */
function showTooltip(cell, text) {
  placeTooltip(text, cell.getBoundingClientRect(), cell.closest("table").getBoundingClientRect());
}

/** Show `text` at the column of `box` (a cell's screen box), above `grid` (its map's box) or below. */
export function placeTooltip(text, box, grid) {
  const tip = tooltipElement();
  if (!tip) return;
  tip.textContent = text;
  tip.hidden = false;
  const width = tip.offsetWidth;
  const height = tip.offsetHeight;
  let left = box.left + box.width / 2 - width / 2;
  left = Math.max(8, Math.min(left, document.documentElement.clientWidth - width - 8));
  let top = grid.top - height - 6;
  if (top < 8) top = grid.bottom + 6;
  tip.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
}

export function hideTooltip() {
  const tip = tooltipElement();
  if (tip) tip.hidden = true;
}

const AXIS_NAMES = {
  query: "query", key: "key", dim: "dimension", token: "token", input: "input token", layer: "layer", head: "head",
};
const AXIS_PLURALS = {
  query: "queries", key: "keys", dim: "dims", token: "tokens", input: "inputs", layer: "layers", head: "heads",
};

function defaultDescribe(opts) {
  return (i, j, value) => {
    const row = `${AXIS_NAMES[opts.rowAxis] ?? "row"} ${i} “${opts.rowLabels[i]}”`;
    const col =
      opts.colAxis === "dim"
        ? `dimension ${j}`
        : `${AXIS_NAMES[opts.colAxis] ?? "column"} ${j} “${opts.colLabels[j]}”`;
    const shown = value === null ? (opts.nullLabel ?? "null") : exactValue(value);
    return `${row} → ${col}: ${shown}`;
  };
}

/**
 * A number short enough for a cell: at most 4 characters, never in scientific notation (which
 * would wrap); the exact value stays in data-value, the tooltip and the cell's name.
 */
export function cellText(value) {
  const abs = Math.abs(value);
  if (abs >= 9.95) return String(Math.round(value));
  const text = abs >= 0.995 ? value.toFixed(1) : value.toFixed(2).replace(/^(-?)0\./, "$1.");
  return /^-?\.00$/.test(text) ? "0" : text;
}

/** Matrices with more cells than this are drawn on a canvas whatever their axes (a table's DOM would crawl). */
export const MAX_CELLS = 12_000;

/**
 * Build a heatmap.
 * opts: values (rows × cols, numbers or null), rowLabels, colLabels, scale, label (the grid's
 * accessible name), rowAxis/colAxis ("query" | "key" | "dim" | "token" | "input" | "layer" |
 * "head"), head (data-head of the cells), cellSize, readout (an element that receives the
 * description), topKeys (column index per row to mark), groupSize (columns per group, drawn with
 * separators), showValues (text in cells), nullLabel, describe(i, j, value). A tokens × tokens
 * map larger than long-inputs.js drawsAsTable is drawn on a canvas (canvas-heatmap.js), with
 * kind (its data-kind) and onChoose(i, j) (a click or Enter on a cell).
 */
export function createHeatmap(opts) {
  const {
    values,
    rowLabels,
    colLabels,
    scale,
    label,
    rowAxis = "query",
    colAxis = "key",
    head = null,
    cellSize = 28,
    readout = null,
    topKeys = null,
    groupSize = 0,
    showValues = false,
  } = opts;
  const describe = opts.describe ?? defaultDescribe({ ...opts, rowAxis, colAxis });
  const total = values.length * (values[0]?.length ?? 0);
  const tokensByTokens = colAxis !== "dim" && !drawsAsTable(values.length, values[0]?.length ?? 0);
  // an overview is always a canvas, however few its blocks: a block is chosen there (onChoose)
  if (opts.kind === "overview" || tokensByTokens || total > MAX_CELLS) return canvasOf({ ...opts, describe });
  const groupStart = (j) => Boolean(groupSize) && j % groupSize === 0 && j > 0;
  const corner = el("td", {
    class: "corner",
    "aria-hidden": "true",
    html: `<span class="axis-note"><span>${AXIS_PLURALS[rowAxis] ?? "rows"} ↓</span><span>${AXIS_PLURALS[colAxis] ?? "columns"} →</span></span>`,
  });
  const columnHeader = (text, j) =>
    el(
      "th",
      { scope: "col", class: groupStart(j) ? "col-label group-start" : "col-label", data: { col: j }, title: text },
      el("span", { text }),
    );
  const cell = (value, i, j) =>
    el(
      "td",
      {
        role: "gridcell",
        tabindex: i === 0 && j === 0 ? 0 : -1,
        class: [
          value === null && "null",
          value !== null && scale.dark(value) && "on-dark",
          groupStart(j) && "group-start",
          topKeys && topKeys[i] === j && "top",
        ].filter(Boolean).join(" ") || null,
        data: {
          row: i,
          col: j,
          head,
          query: rowAxis === "query" ? i : null,
          key: rowAxis === "key" ? i : colAxis === "key" ? j : null,
          value: exactValue(value),
        },
        style: value === null ? {} : { "background-color": scale.colour(value) },
        "aria-label": describe(i, j, value),
      },
      showValues && value !== null
        ? el("span", { class: "cell-value", text: cellText(value) })
        : null,
    );
  const table = el(
    "table",
    {
      class: colAxis === "dim" ? "heatmap dims" : "heatmap",
      role: "grid",
      "aria-label": label,
      "aria-rowcount": values.length + 1,
      style: { "--cell": `${cellSize}px` },
      data: { head },
    },
    el("thead", {}, el("tr", {}, corner, colLabels.map(columnHeader))),
    el(
      "tbody",
      {},
      values.map((row, i) =>
        el(
          "tr",
          {},
          el("th", { scope: "row", class: "row-label", data: { row: i }, title: rowLabels[i], text: rowLabels[i] }),
          row.map((value, j) => cell(value, i, j)),
        ),
      ),
    ),
  );
  wireInteractions(table, readout, values);
  return el("div", { class: "matrix-scroll" }, table);
}

/** The same options drawn on a canvas (a tokens × tokens map past the table's size). */
function canvasOf({ values, rowLabels, colLabels, scale, label, head, readout, describe, kind, onChoose }) {
  return createCanvasHeatmap({
    rows: values.length,
    cols: values[0].length,
    valueAt: (i, j) => values[i][j],
    rowLabel: (i) => rowLabels[i],
    colLabel: (j) => colLabels[j],
    scale,
    label,
    describe: (i, j) => describe(i, j, values[i][j]),
    readout,
    data: { head, kind: kind ?? "exact" },
    onChoose,
  });
}

function cellAt(table, i, j) {
  return table.tBodies[0].rows[i]?.cells[j + 1] ?? null;
}

function highlight(table, cell) {
  for (const el of table.querySelectorAll(".hl")) el.classList.remove("hl");
  if (!cell) return;
  const { row, col } = cell.dataset;
  table.querySelector(`th.row-label[data-row="${row}"]`)?.classList.add("hl");
  table.querySelector(`th.col-label[data-col="${col}"]`)?.classList.add("hl");
}

function activate(table, cell, readout) {
  const text = cell.getAttribute("aria-label");
  highlight(table, cell);
  showTooltip(cell, text);
  if (readout) readout.textContent = text;
  table.dispatchEvent(new CustomEvent("cellactivate", { detail: cell.dataset, bubbles: true }));
}

function wireInteractions(table, readout, values) {
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  let roving = cellAt(table, 0, 0);

  table.addEventListener("mouseover", (event) => {
    const cell = event.target.closest("td[role=gridcell]");
    if (cell) activate(table, cell, readout);
  });
  table.addEventListener("mouseleave", () => {
    highlight(table, table.querySelector("td:focus"));
    hideTooltip();
  });
  table.addEventListener("focusin", (event) => {
    const cell = event.target.closest("td[role=gridcell]");
    if (!cell) return;
    if (roving && roving !== cell) roving.tabIndex = -1;
    cell.tabIndex = 0;
    roving = cell;
    activate(table, cell, readout);
  });
  table.addEventListener("focusout", () => {
    hideTooltip();
    highlight(table, null);
  });
  table.addEventListener("keydown", (event) => {
    const cell = event.target.closest("td[role=gridcell]");
    if (!cell) return;
    let i = Number(cell.dataset.row);
    let j = Number(cell.dataset.col);
    switch (event.key) {
      case "ArrowRight": j = Math.min(cols - 1, j + 1); break;
      case "ArrowLeft": j = Math.max(0, j - 1); break;
      case "ArrowDown": i = Math.min(rows - 1, i + 1); break;
      case "ArrowUp": i = Math.max(0, i - 1); break;
      case "Home": j = 0; if (event.ctrlKey) i = 0; break;
      case "End": j = cols - 1; if (event.ctrlKey) i = rows - 1; break;
      case "PageUp": i = 0; break;
      case "PageDown": i = rows - 1; break;
      case "Escape": hideTooltip(); return;
      default: return;
    }
    event.preventDefault();
    cellAt(table, i, j)?.focus();
  });
}
