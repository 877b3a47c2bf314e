// The BertViz-style view: query tokens on the left, key tokens on the right, one line per
// (query, key) pair whose thickness and opacity follow the attention weight.

import { formatNumber } from "./colors.js";
import { el, svgEl } from "./dom.js";
import { exactValue } from "./heatmap.js";

const ROW = 30; // px per token row; the SVG's y coordinates use the same unit

/** Each query's weighted keys as [key, weight] pairs, strongest first: from L × S weights. */
export function pairsOfMatrix(matrix) {
  return matrix.map((row) =>
    row
      .map((w, j) => [j, w])
      .filter(([, w]) => w !== null && w > 0)
      .sort((a, b) => b[1] - a[1]),
  );
}

/** The same from an answer's top_k of one head: keys and weights (L × k), strongest first. */
export function pairsOfTopK(keys, weights) {
  return keys.map((row, i) => row.map((j, r) => [j, weights[i][r]]).filter(([, w]) => w !== null && w > 0));
}

/**
 * Draw the view into `container`.
 * pairs: per query, its [key, weight] pairs strongest first (pairsOfMatrix, pairsOfTopK) of the
 * chosen head (or the average); colour: the head's colour; name: "Head 2" or "Average of 4
 * heads"; readout: aria-live element; shown: how many tokens of each side to draw (the first).
 */
export function renderConnections(container, { pairs: allPairs, tokens: allTokens, keyTokens: allKeys, colour, name, readout, shown = Infinity }) {
  container.replaceChildren();
  const tokens = allTokens.slice(0, shown);
  const keyTokens = allKeys.slice(0, shown);
  const pairs = allPairs.slice(0, shown).map((row) => row.filter(([j]) => j < keyTokens.length));
  const rows = Math.max(tokens.length, keyTokens.length, 1);
  let max = 0;
  for (const row of pairs) for (const [, v] of row) if (v > max) max = v;
  max ||= 1;

  const height = `${rows * ROW}px`;
  const view = el("div", { class: "connections", style: { "--row": `${ROW}px`, "--head": colour, height } });
  const left = el("div", {
    class: "conn-col conn-queries",
    role: "group",
    "aria-label": `Query tokens (${name}): focus one to see where it looks`,
  });
  const right = el("ul", { class: "conn-col conn-keys", "aria-label": "Key tokens" });
  const svg = svgEl("svg", {
    class: "conn-lines",
    viewBox: `0 0 100 ${rows * ROW}`,
    preserveAspectRatio: "none",
    "aria-hidden": "true",
    focusable: "false",
    style: { height },
  });

  const lines = [];
  pairs.forEach((row, i) => {
    row.forEach(([j, w]) => {
      const rel = w / max;
      const line = svgEl("line", {
        x1: 0,
        x2: 100,
        y1: (i + 0.5) * ROW,
        y2: (j + 0.5) * ROW,
        stroke: colour,
        "vector-effect": "non-scaling-stroke",
        data: { query: i, key: j, weight: exactValue(w) },
        style: {
          "--w": (0.5 + 6 * rel).toFixed(2),
          "--o": (0.06 + 0.8 * rel * rel).toFixed(3),
          "--o-on": (0.15 + 0.85 * rel).toFixed(3),
        },
      });
      svg.append(line);
      lines.push(line);
    });
  });

  const keyItems = keyTokens.map((token, j) =>
    el(
      "li",
      { class: "conn-key", data: { key: j } },
      el("span", { class: "conn-text", text: token }),
      el("span", { class: "conn-weight" }),
    ),
  );
  right.append(...keyItems);

  let pinned = null;
  const buttons = tokens.map((token, i) => {
    const [top, weight] = pairs[i]?.[0] ?? [-1, null];
    const topText = top >= 0 ? `looks most at “${keyTokens[top]}” (${formatNumber(weight)})` : "no key";
    return el("button", {
      type: "button",
      class: "conn-query",
      data: { query: i },
      tabindex: i === 0 ? 0 : -1,
      "aria-pressed": "false",
      "aria-label": `${token}, query ${i}: ${topText}`,
      text: token,
    });
  });
  left.append(...buttons);

  function show(i) {
    view.classList.toggle("focused", i !== null);
    for (const line of lines) line.classList.toggle("on", Number(line.dataset.query) === i);
    buttons.forEach((b, k) => b.classList.toggle("active", k === i));
    const weights = new Map(i === null ? [] : pairs[i]);
    keyItems.forEach((li, j) => {
      const w = weights.get(j);
      li.querySelector(".conn-weight").textContent =
        w === null || w === undefined ? "" : formatNumber(w, 2);
      li.style.setProperty("--bg", w ? (w / max).toFixed(3) : "0");
      li.classList.toggle("weighted", Boolean(w));
    });
    if (readout && i !== null) {
      const strongest = (pairs[i] ?? []).slice(0, 3).map(([j, w]) => `“${keyTokens[j]}” ${formatNumber(w, 3)}`);
      readout.textContent = `${name}: “${tokens[i]}” attends to ${strongest.join(", ")}`;
    }
  }

  left.addEventListener("mouseover", (e) => {
    const b = e.target.closest("button");
    if (b) show(Number(b.dataset.query));
  });
  left.addEventListener("mouseleave", () => show(pinned));
  left.addEventListener("focusin", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    for (const other of buttons) other.tabIndex = -1;
    b.tabIndex = 0;
    show(Number(b.dataset.query));
  });
  left.addEventListener("focusout", () => show(pinned));
  left.addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    const i = Number(b.dataset.query);
    pinned = pinned === i ? null : i;
    buttons.forEach((other, k) => other.setAttribute("aria-pressed", String(k === pinned)));
    show(i);
  });
  left.addEventListener("keydown", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    const i = Number(b.dataset.query);
    const next = {
      ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: buttons.length - 1,
    }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    buttons[Math.max(0, Math.min(buttons.length - 1, next))].focus();
  });

  view.append(left, svg, right);
  container.append(view);
  show(null);
}
