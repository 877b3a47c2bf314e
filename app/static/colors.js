// Colour scales drawn by hand: a sequential ramp for weights and a diverging one for signed values.

import { el } from "./dom.js";

const SEQUENTIAL = ["#f7f9fc", "#d6e2f5", "#9fb8ea", "#6a85d8", "#4453b8", "#2a2a7f", "#170f4a"];
const DIVERGING = ["#b2182b", "#e0785f", "#f6c8b1", "#f7f7f5", "#c2dcec", "#5ea3cc", "#1f5f9f"];

/** Distinct colours for heads (the connection lines, the head badges). */
export const HEAD_COLOURS = [
  "#4f46e5", "#db2777", "#059669", "#d97706",
  "#0891b2", "#7c3aed", "#dc2626", "#65a30d",
];

/** The colour of the heads' average. */
export const AVERAGE_COLOUR = "#1b1f2a";

export function headColour(head) {
  return HEAD_COLOURS[head % HEAD_COLOURS.length];
}

function hexToRgb(hex) {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

const SEQ_RGB = SEQUENTIAL.map(hexToRgb);
const DIV_RGB = DIVERGING.map(hexToRgb);

function ramp(stops, t) {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [stops[i], stops[i + 1]];
  return a.map((v, k) => Math.round(v + (b[k] - v) * f));
}

/** WCAG relative luminance of an sRGB colour (0 black, 1 white). */
function luminance(rgb) {
  const [r, g, b] = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/**
 * The ink drawn on dark cells and on light ones (heatmap.css: white for .on-dark, else black).
 * Pure black, not the page's ink: at the crossover between the two, black and white still give
 * 4.58:1, a lighter ink would leave mid-tone cells under WCAG's 4.5:1.
 */
const LIGHT_INK = 1;
const DARK_INK = 0;

/** WCAG contrast ratio of two luminances. */
const contrast = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);

/**
 * A colour scale over [min, max]: `sequential` from min (light) to max (dark), or `diverging`
 * around zero, symmetric in the largest absolute value.
 */
export function makeScale(kind, min, max) {
  const stops = kind === "diverging" ? DIV_RGB : SEQ_RGB;
  const lo = kind === "diverging" ? -Math.max(Math.abs(min), Math.abs(max)) : min;
  const hi = kind === "diverging" ? -lo : max;
  const span = hi - lo || 1;
  const rgb = (value) => ramp(stops, (value - lo) / span);
  return {
    kind,
    min: lo,
    max: hi,
    /** [r, g, b] of the value: what a canvas writes into its pixels. */
    rgb,
    colour(value) {
      return `rgb(${rgb(value).join(",")})`;
    },
    /** Whether text on this value's colour should be light: the ink with the higher contrast. */
    dark(value) {
      const l = luminance(rgb(value));
      return contrast(l, LIGHT_INK) > contrast(l, DARK_INK);
    },
    gradient() {
      const hex = kind === "diverging" ? DIVERGING : SEQUENTIAL;
      return `linear-gradient(to right, ${hex.join(", ")})`;
    },
    stops() {
      return kind === "diverging" ? DIVERGING : SEQUENTIAL;
    },
  };
}

/** Smallest and largest finite number in a nested array; [0, 0] when there is none. */
export function extent(values) {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  const walk = (v) => {
    if (Array.isArray(v)) {
      for (const item of v) walk(item);
    } else if (typeof v === "number" && Number.isFinite(v)) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  };
  walk(values);
  return min <= max ? [min, max] : [0, 0];
}

/** A short human label for a number: 4 significant decimals at most. */
export function formatNumber(value, digits = 3) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (value !== 0 && Math.abs(value) < 10 ** -digits) return value.toExponential(1);
  return Number(value.toFixed(digits)).toString();
}

/** A legend: the gradient bar with its end labels and a swatch for masked cells. */
export function renderLegend(scale, label, { masked = false } = {}) {
  const ends = `${formatNumber(scale.min)} to ${formatNumber(scale.max)}`;
  const reading =
    scale.kind === "diverging" ? "red for negative, white for zero, blue for positive," : "light for low, dark for high,";
  return el(
    "div",
    {
      class: "legend",
      role: "img",
      "aria-label": `Colour scale for ${label}: ${reading} from ${ends}${masked ? "; hatched cells are masked or not a number" : ""}`,
    },
    el("span", { class: "legend-title", text: label }),
    el(
      "span",
      { class: "legend-scale" },
      el("span", { class: "legend-end", text: formatNumber(scale.min) }),
      el("span", { class: "legend-bar", style: { "background-image": scale.gradient() } }),
      el("span", { class: "legend-end", text: formatNumber(scale.max) }),
    ),
    scale.kind === "diverging" && el("span", { class: "legend-zero", text: "0 in the middle" }),
    masked && el("span", { class: "legend-masked" }, el("span", { class: "swatch masked-swatch" }), " masked"),
  );
}
