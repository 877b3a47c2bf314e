// Downloads: the JSON response as it came, a heatmap as a standalone SVG, or that SVG as a PNG.
// Every exported figure names the model, its configuration and seed, in the file and its name.

import { formatNumber } from "./colors.js";
import { el } from "./dom.js";
import { setStatus } from "./status.js";

/** What the figures on the page were computed with: set by each new result. */
const context = { line: "", slug: "attention", metadata: {} };

/** Remember `data`'s model and configuration for the exports of its figures. */
export function setExportContext(data) {
  const c = data?.config ?? {};
  const model = c.model ?? "random";
  const parts = [`model ${model}`];
  if (c.d_model !== undefined) parts.push(`d_model ${c.d_model}`);
  if (c.num_heads !== undefined) parts.push(`${c.num_heads} heads`);
  if (c.num_kv_heads && c.num_kv_heads !== c.num_heads) parts.push(`${c.num_kv_heads} K/V heads`);
  if (c.positional_encoding) parts.push(`${c.positional_encoding} positions`);
  if (c.causal) parts.push("causal");
  if (c.window) parts.push(`window ${c.window}`);
  const seeded = model === "random" && c.seed !== undefined;
  if (seeded) parts.push(`seed ${c.seed}`);
  parts.push("layers and heads numbered from 0");
  context.line = parts.join(" · ");
  context.slug = `attention-${model}${seeded ? `-seed${c.seed}` : ""}`;
  context.metadata = { model, config: c, version: data?.meta?.version };
}

const slug = (text) => text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");

/** The file name of a figure titled `name`: model, seed and the figure (layer, head…) in it. */
export function exportName(name, extension) {
  return `${context.slug}-${slug(name)}.${extension}`;
}

function downloadButton(format, name, save) {
  return el("button", {
    type: "button",
    class: "small",
    text: format.toUpperCase(),
    data: { download: format },
    "aria-label": `Download ${name} as ${format.toUpperCase()}`,
    on: { click: save },
  });
}

/** The SVG and PNG buttons of a figure named `name`; svgOf() draws it. */
export function downloadButtons(name, svgOf) {
  const saveSvg = () => saveBlob(new Blob([svgOf()], { type: "image/svg+xml" }), exportName(name, "svg"));
  const savePng = async () => {
    try {
      saveBlob(await svgToPng(svgOf()), exportName(name, "png"));
    } catch (error) {
      setStatus(`PNG failed: ${error.message}`);
    }
  };
  return el(
    "div",
    { class: "card-actions" },
    downloadButton("svg", name, saveSvg),
    downloadButton("png", name, savePng),
  );
}

export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function escapeXml(text) {
  return String(text).replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const SVG_FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\"";
/** Where an exported figure's drawing may start: under its title, subtitle and context lines. */
export const SVG_HEAD_HEIGHT = 74;

/** How wide an exported figure must be for its title, subtitle and context line to fit. */
export const svgTextWidth = (title, subtitle = "") =>
  32 + Math.max(title.length * 9, subtitle.length * 6.6, context.line.length * 6.6);

/**
 * The opening of an exported SVG: its title and metadata (model, config, seed, figure), a white
 * background, the title, the subtitle and the context line (model · config · seed), in that order.
 */
export function svgHead({ width, height, title, subtitle = "" }) {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${SVG_FONT}>`,
    `<title>${escapeXml(title)}</title>`,
    `<metadata>${escapeXml(JSON.stringify({ ...context.metadata, figure: title }))}</metadata>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="600" fill="#1b1f2a">${escapeXml(title)}</text>`,
    `<text x="16" y="42" font-size="12" fill="#5b6275">${escapeXml(subtitle)}</text>`,
    `<text x="16" y="60" font-size="12" fill="#5b6275">${escapeXml(context.line)}</text>`,
  ];
}

/** A standalone SVG of one heatmap: labels, cells, title and a colour bar. */
export function heatmapSvg({ values, rowLabels, colLabels, scale, title, subtitle = "" }) {
  const cell = 28;
  const longest = (labels) => Math.max(1, ...labels.map((l) => String(l).length));
  const left = 16 + longest(rowLabels) * 7.5;
  const top = SVG_HEAD_HEIGHT + longest(colLabels) * 7;
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  // wide enough for the longest line of text too, so that no subtitle is clipped
  const width = Math.ceil(Math.max(left + cols * cell + 24, svgTextWidth(title, subtitle)));
  const height = Math.ceil(top + rows * cell + 64);
  const parts = [
    ...svgHead({ width, height, title, subtitle }),
    "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#eceef3\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#a3a9b8\" stroke-width=\"2\"/></pattern></defs>",
  ];
  colLabels.forEach((label, j) => {
    const x = left + j * cell + cell / 2 + 4;
    parts.push(
      `<text transform="translate(${x} ${top - 6}) rotate(-90)" font-size="12" fill="#1b1f2a">${escapeXml(label)}</text>`,
    );
  });
  values.forEach((row, i) => {
    const y = top + i * cell;
    parts.push(
      `<text x="${left - 6}" y="${y + cell / 2 + 4}" font-size="12" text-anchor="end" fill="#1b1f2a">${escapeXml(rowLabels[i])}</text>`,
    );
    row.forEach((value, j) => {
      const fill = value === null ? "url(#hatch)" : scale.colour(value);
      parts.push(
        `<rect x="${left + j * cell}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#ffffff" stroke-width="1"><title>${escapeXml(`${rowLabels[i]} → ${colLabels[j]}: ${value}`)}</title></rect>`,
      );
    });
  });
  const barY = top + rows * cell + 24;
  const barW = Math.min(240, Math.max(120, cols * cell));
  const stops = scale.stops();
  parts.push("<defs><linearGradient id=\"scale\">");
  stops.forEach((colour, k) => {
    parts.push(`<stop offset="${(k / (stops.length - 1)).toFixed(3)}" stop-color="${colour}"/>`);
  });
  parts.push("</linearGradient></defs>");
  parts.push(
    `<text x="${left - 6}" y="${barY + 11}" font-size="12" text-anchor="end" fill="#5b6275">${escapeXml(formatNumber(scale.min))}</text>`,
    `<rect x="${left}" y="${barY}" width="${barW}" height="14" fill="url(#scale)" stroke="#c9cedb"/>`,
    `<text x="${left + barW + 6}" y="${barY + 11}" font-size="12" fill="#5b6275">${escapeXml(formatNumber(scale.max))}</text>`,
    "</svg>",
  );
  return parts.join("\n");
}

/** Render an SVG string onto a canvas at `ratio` times its size and resolve to a PNG blob. */
export function svgToPng(svg, ratio = 2) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
    const image = new Image();
    image.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = Math.ceil(image.naturalWidth * ratio);
      canvas.height = Math.ceil(image.naturalHeight * ratio);
      const context = canvas.getContext("2d");
      context.scale(ratio, ratio);
      context.drawImage(image, 0, 0);
      URL.revokeObjectURL(url);
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("canvas gave no PNG"))), "image/png");
    };
    image.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("the SVG could not be drawn"));
    };
    image.src = url;
  });
}

/** A standalone SVG of a connections view: query tokens left, keys right, one line per weight. */
export function connectionsSvg({ matrix, tokens, keyTokens, colour, title }) {
  const row = 24;
  const longest = (labels) => Math.max(1, ...labels.map((l) => String(l).length)) * 7.5;
  const left = 16 + longest(tokens);
  const gap = 240;
  const top = 80;
  const textWidth = 32 + Math.max(title.length * 9, context.line.length * 6.6);
  const width = Math.ceil(Math.max(left + gap + longest(keyTokens) + 32, textWidth));
  const height = top + Math.max(tokens.length, keyTokens.length) * row + 16;
  const max = Math.max(1e-9, ...matrix.flat().filter((w) => w !== null));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${SVG_FONT}>`,
    `<title>${escapeXml(title)}</title>`,
    `<metadata>${escapeXml(JSON.stringify({ ...context.metadata, figure: title }))}</metadata>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="600" fill="#1b1f2a">${escapeXml(title)}</text>`,
    `<text x="16" y="44" font-size="12" fill="#5b6275">${escapeXml(context.line)}</text>`,
  ];
  matrix.forEach((weights, i) => {
    weights.forEach((w, j) => {
      if (w === null || w <= 0) return;
      const y1 = top + (i + 0.5) * row;
      const y2 = top + (j + 0.5) * row;
      parts.push(
        `<line x1="${left + 8}" y1="${y1}" x2="${left + gap - 8}" y2="${y2}" stroke="${colour}" stroke-width="${(0.5 + 5 * (w / max)).toFixed(2)}" stroke-opacity="${(0.1 + 0.9 * (w / max)).toFixed(3)}"><title>${escapeXml(`${tokens[i]} → ${keyTokens[j]}: ${w}`)}</title></line>`,
      );
    });
  });
  tokens.forEach((t, i) => {
    parts.push(`<text x="${left}" y="${top + (i + 0.5) * row + 4}" font-size="12" text-anchor="end" fill="#1b1f2a">${escapeXml(t)}</text>`);
  });
  keyTokens.forEach((t, j) => {
    parts.push(`<text x="${left + gap}" y="${top + (j + 0.5) * row + 4}" font-size="12" fill="#1b1f2a">${escapeXml(t)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}
