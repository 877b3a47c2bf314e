// Standalone SVGs of the page's composite figures: the layer × head grid and the pipeline strip.
// Like every export (download.js), each names the model, its configuration and seed inside.

import { formatNumber } from "./colors.js";
import { SVG_HEAD_HEIGHT, escapeXml, svgHead, svgTextWidth } from "./download.js";

const INK = "#1b1f2a";
const MUTED = "#5b6275";
const GRID_CELL = 56; // one thumbnail, its heatmap drawn inside with a 2-pixel margin
const SMALL_GRID_CELL = 24; // ...past SMALL_GRID_FROM thumbnails (a 32 × 32 model: 1,024)
const SMALL_GRID_FROM = 144;

/** The colour bar under a figure: min, the gradient, max. */
function colourBar(scale, x, y, id) {
  const stops = scale.stops();
  return [
    `<defs><linearGradient id="${id}">`,
    ...stops.map((colour, k) => `<stop offset="${(k / (stops.length - 1)).toFixed(3)}" stop-color="${colour}"/>`),
    "</linearGradient></defs>",
    `<text x="${x - 6}" y="${y + 11}" font-size="12" text-anchor="end" fill="${MUTED}">${escapeXml(formatNumber(scale.min))}</text>`,
    `<rect x="${x}" y="${y}" width="200" height="14" fill="url(#${id})" stroke="#c9cedb"/>`,
    `<text x="${x + 206}" y="${y + 11}" font-size="12" fill="${MUTED}">${escapeXml(formatNumber(scale.max))}</text>`,
  ];
}

/** One head's n × n weights as a block of rects at (x, y), `size` pixels square. */
function miniHeatmap(matrix, x, y, size, scale) {
  const n = Math.max(1, matrix.length, matrix[0]?.length ?? 0);
  const k = size / n;
  const parts = [];
  matrix.forEach((row, i) =>
    row.forEach((value, j) => {
      const fill = value === null ? "#d9dce5" : scale.colour(value);
      parts.push(`<rect x="${(x + j * k).toFixed(2)}" y="${(y + i * k).toFixed(2)}" width="${k.toFixed(2)}" height="${k.toFixed(2)}" fill="${fill}"/>`);
    }),
  );
  return parts;
}

/**
 * The layer × head grid: layers [{layer, attention (H × n × n)}], one colour scale for all.
 * Large grids (32 × 32) shrink their thumbnails so that the file stays drawable.
 */
export function gridSvg({ layers, scale, title, subtitle }) {
  const heads = layers[0]?.attention.length ?? 0;
  const cell = layers.length * heads > SMALL_GRID_FROM ? SMALL_GRID_CELL : GRID_CELL;
  const left = 80;
  const top = SVG_HEAD_HEIGHT + 20;
  const width = Math.ceil(Math.max(left + heads * cell + 16, svgTextWidth(title, subtitle)));
  const height = top + layers.length * cell + 48;
  const parts = svgHead({ width, height, title, subtitle });
  for (let h = 0; h < heads; h += 1) {
    parts.push(`<text x="${left + h * cell + cell / 2}" y="${top - 6}" font-size="11" text-anchor="middle" fill="${INK}">H${h}</text>`);
  }
  layers.forEach(({ layer, attention }, k) => {
    const y = top + k * cell;
    parts.push(`<text x="${left - 8}" y="${y + cell / 2 + 4}" font-size="11" text-anchor="end" fill="${INK}">Layer ${layer}</text>`);
    attention.forEach((matrix, h) => {
      parts.push(`<g><title>${escapeXml(`Layer ${layer}, head ${h}`)}</title>`, ...miniHeatmap(matrix, left + h * cell + 2, y + 2, cell - 4, scale), "</g>");
    });
  });
  parts.push(...colourBar(scale, left, top + layers.length * cell + 20, "grid-scale"), "</svg>");
  return parts.join("\n");
}

/** The pipeline strip: boxes [{label, shape}] in a row (wrapped every `perRow`), arrows between. */
export function stripSvg({ boxes, title, subtitle, perRow = 6 }) {
  const boxWidth = Math.max(120, 16 + 8.5 * Math.max(...boxes.map((b) => b.label.length))); // 13 px bold
  const boxHeight = 48;
  const gap = 28;
  const top = SVG_HEAD_HEIGHT + 8;
  const rows = Math.ceil(boxes.length / perRow);
  const width = Math.ceil(Math.max(16 + perRow * (boxWidth + gap), svgTextWidth(title, subtitle)));
  const height = top + rows * (boxHeight + gap) + 8;
  const parts = svgHead({ width, height, title, subtitle });
  boxes.forEach(({ label, shape }, k) => {
    const x = 16 + (k % perRow) * (boxWidth + gap);
    const y = top + Math.floor(k / perRow) * (boxHeight + gap);
    if (k % perRow > 0) parts.push(`<text x="${x - gap / 2}" y="${y + boxHeight / 2 + 5}" font-size="16" text-anchor="middle" fill="${MUTED}">→</text>`);
    parts.push(
      `<rect x="${x}" y="${y}" width="${boxWidth}" height="${boxHeight}" rx="8" fill="#eef0ff" stroke="#c5cad6"/>`,
      `<text x="${x + boxWidth / 2}" y="${y + 20}" font-size="13" font-weight="600" text-anchor="middle" fill="${INK}">${escapeXml(label)}</text>`,
      `<text x="${x + boxWidth / 2}" y="${y + 38}" font-size="12" text-anchor="middle" fill="${MUTED}">${escapeXml(shape)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}
