// One matrix drawn as an HTML table: each cell coloured, focusable by roving focus, its exact value
// in data-value, shown in a tooltip and in an aria-live readout on hover or keyboard focus.

import { formatNumber } from "./colors.js";

let tooltip = null;

function tooltipElement() {
  tooltip ??= document.getElementById("tooltip");
  return tooltip;
}

/** The value as the JSON response wrote it (JSON numbers survive JS's shortest round trip). */
export function exactValue(value) {
  return value === null || value === undefined ? "null" : String(value);
}

function showTooltip(cell, text) {
  const tip = tooltipElement();
  if (!tip) return;
  tip.textContent = text;
  tip.hidden = false;
  const box = cell.getBoundingClientRect();
  const width = tip.offsetWidth;
  const height = tip.offsetHeight;
  let left = box.left + box.width / 2 - width / 2;
  left = Math.max(8, Math.min(left, document.documentElement.clientWidth - width - 8));
  let top = box.top - height - 8;
  if (top < 8) top = box.bottom + 8;
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
    const row = `${AXIS_NAMES[opts.rowAxis] ?? "row"} ${i + 1} “${opts.rowLabels[i]}”`;
    const col =
      opts.colAxis === "dim"
        ? `dimension ${j}`
        : `${AXIS_NAMES[opts.colAxis] ?? "column"} ${j + 1} “${opts.colLabels[j]}”`;
    const shown = value === null ? (opts.nullLabel ?? "null") : exactValue(value);
    return `${row} → ${col}: ${shown}`;
  };
}

/**
 * Build a heatmap.
 * opts: values (rows × cols, numbers or null), rowLabels, colLabels, scale, label (the grid's
 * accessible name), rowAxis/colAxis ("query" | "key" | "dim" | "token" | "input" | "layer" |
 * "head"), head (data-head of the
 * cells), cellSize, readout (an element that receives the description), topKeys (column index per
 * row to mark), groupSize (columns per group, drawn with separators), showValues (text in cells),
 * nullLabel, describe(i, j, value).
 */
/** Matrices larger than this are summarised instead of drawn (the DOM would crawl). */
export const MAX_CELLS = 12_000;

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
  if (total > MAX_CELLS) {
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = `${values.length} × ${values[0].length} = ${total} cells: too many to draw here. Shorten the sentence, or download the JSON.`;
    return note;
  }

  const table = document.createElement("table");
  table.className = "heatmap";
  table.setAttribute("role", "grid");
  table.setAttribute("aria-label", label);
  table.setAttribute("aria-rowcount", String(values.length + 1));
  table.style.setProperty("--cell", `${cellSize}px`);
  if (colAxis === "dim") table.classList.add("dims");
  if (head !== null) table.dataset.head = String(head);

  const thead = table.createTHead();
  const headRow = thead.insertRow();
  const corner = document.createElement("td");
  corner.className = "corner";
  corner.setAttribute("aria-hidden", "true");
  corner.innerHTML = `<span class="axis-note"><span>${AXIS_PLURALS[rowAxis] ?? "rows"} ↓</span><span>${AXIS_PLURALS[colAxis] ?? "columns"} →</span></span>`;
  headRow.append(corner);
  colLabels.forEach((text, j) => {
    const th = document.createElement("th");
    th.scope = "col";
    th.className = "col-label";
    th.dataset.col = String(j);
    if (groupSize && j % groupSize === 0 && j > 0) th.classList.add("group-start");
    const span = document.createElement("span");
    span.textContent = text;
    th.title = String(text);
    th.append(span);
    headRow.append(th);
  });

  const tbody = table.createTBody();
  values.forEach((row, i) => {
    const tr = tbody.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.className = "row-label";
    th.dataset.row = String(i);
    th.textContent = rowLabels[i];
    th.title = String(rowLabels[i]);
    tr.append(th);
    row.forEach((value, j) => {
      const td = document.createElement("td");
      td.setAttribute("role", "gridcell");
      td.tabIndex = i === 0 && j === 0 ? 0 : -1;
      td.dataset.row = String(i);
      td.dataset.col = String(j);
      if (head !== null) td.dataset.head = String(head);
      if (rowAxis === "query") td.dataset.query = String(i);
      if (colAxis === "key") td.dataset.key = String(j);
      if (rowAxis === "key") td.dataset.key = String(i);
      td.dataset.value = exactValue(value);
      if (value === null) {
        td.classList.add("null");
      } else {
        td.style.backgroundColor = scale.colour(value);
        if (scale.dark(value)) td.classList.add("on-dark");
      }
      if (groupSize && j % groupSize === 0 && j > 0) td.classList.add("group-start");
      if (topKeys && topKeys[i] === j) td.classList.add("top");
      td.setAttribute("aria-label", describe(i, j, value));
      if (showValues && value !== null) {
        const span = document.createElement("span");
        span.className = "cell-value";
        span.textContent = formatNumber(value, 2).replace(/^(-?)0\./, "$1.");
        td.append(span);
      }
      tr.append(td);
    });
  });

  wireInteractions(table, readout, values);
  const scroller = document.createElement("div");
  scroller.className = "matrix-scroll";
  scroller.append(table);
  return scroller;
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
