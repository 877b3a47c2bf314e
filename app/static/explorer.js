// The attention explorer: reads the form, calls POST /attention, draws heads, connections, steps.

import { FORM_FIELDS, postAttention } from "./api.js";
import { extent, formatNumber, headColour, makeScale, renderLegend } from "./colors.js";
import { renderConnections } from "./connections.js";
import { heatmapSvg, saveBlob, svgToPng } from "./download.js";
import { createHeatmap } from "./heatmap.js";
import { renderSteps, shapeLabel, shapeOf } from "./steps.js";

const KEY_STORAGE = "attention-explorer.api-key";
const $ = (id) => document.getElementById(id);

const state = {
  data: null, // the last successful response, parsed
  raw: "", // ...and as the service sent it
  controller: null,
  generation: 0,
};

// -- the form ----------------------------------------------------------------------------------

const INTEGER_FIELDS = { d_model: true, num_heads: true, seed: true, num_kv_heads: false, window: false };

function readForm() {
  const errors = [];
  const text = $("text").value.trim();
  if (!text) errors.push({ field: "text", message: "Type a sentence first." });
  const config = {};
  for (const [field, required] of Object.entries(INTEGER_FIELDS)) {
    const input = $(field);
    const raw = input.value.trim();
    if (raw === "") {
      if (input.validity.badInput) errors.push({ field, message: "Enter a whole number." });
      else if (required) errors.push({ field, message: "Required: enter a whole number." });
      config[field] = null;
    } else {
      config[field] = Number(raw);
    }
  }
  config.positional_encoding = $("positional_encoding").value;
  config.causal = $("causal").checked;
  const body = {
    text,
    config,
    output: { attention: "per_head", steps: "all", precision: 4, metrics: true },
  };
  return { body, errors };
}

function clearErrors() {
  for (const field of [...FORM_FIELDS, "api_key"]) {
    const slot = $(`${field}-error`);
    if (slot) {
      slot.hidden = true;
      slot.textContent = "";
    }
    $(field)?.removeAttribute("aria-invalid");
  }
  $("form-error").hidden = true;
  $("form-error").textContent = "";
}

function showErrors(fieldErrors, message, { focus }) {
  let first = null;
  for (const { field, message: text } of fieldErrors) {
    const slot = $(`${field}-error`);
    const input = $(field);
    if (!slot || !input) continue;
    slot.textContent = slot.hidden ? text : `${slot.textContent} ${text}`;
    slot.hidden = false;
    input.setAttribute("aria-invalid", "true");
    first ??= input;
  }
  if (message) {
    const banner = $("form-error");
    banner.textContent = message;
    banner.hidden = false;
  }
  if (focus && first) first.focus();
}

function setState(name) {
  $("main").dataset.state = name;
  $("results").setAttribute("aria-busy", String(name === "loading"));
}

async function compute({ userInitiated }) {
  const { body, errors } = readForm();
  clearErrors();
  if (errors.length) {
    showErrors(errors, "Fix the highlighted field and submit again.", { focus: userInitiated });
    $("status").textContent = "Not sent: the form has an error.";
    finish("error");
    return;
  }
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  setState("loading");
  $("status").textContent = "Computing…";
  let outcome;
  try {
    outcome = await postAttention(body, $("api_key").value.trim(), controller.signal);
  } catch {
    return; // aborted by a newer request
  }
  if (state.controller !== controller) return;
  state.controller = null;
  if (outcome.ok) {
    state.data = outcome.data;
    state.raw = outcome.raw;
    render();
    const r = outcome.data.results[0];
    const ms = outcome.data.meta?.elapsed_ms;
    $("status").textContent = `Done: ${r.attention?.length ?? 0} heads over ${r.tokens.length} tokens${ms !== undefined ? ` in ${formatNumber(ms, 1)} ms` : ""}.`;
    $("stale-note").hidden = true;
    finish("ready");
  } else {
    showErrors(outcome.fieldErrors, outcome.message, { focus: userInitiated });
    $("status").textContent = outcome.status ? `Error ${outcome.status}.` : "Network error.";
    $("stale-note").hidden = !state.data;
    if (!state.data) $("summary").textContent = "No result yet: see the message above.";
    finish("error");
  }
}

function finish(name) {
  setState(name);
  state.generation += 1;
  $("main").dataset.generation = String(state.generation);
}

// -- rendering ---------------------------------------------------------------------------------

function averageOf(attention) {
  const heads = attention.length;
  return attention[0].map((row, i) =>
    row.map((_, j) => {
      let sum = 0;
      let n = 0;
      for (let h = 0; h < heads; h += 1) {
        const v = attention[h][i][j];
        if (v !== null) {
          sum += v;
          n += 1;
        }
      }
      return n ? sum / n : null;
    }),
  );
}

function metricBlock(label, value, max, unit, hint) {
  const wrap = document.createElement("div");
  wrap.className = "metric";
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  const strong = document.createElement("strong");
  strong.textContent = formatNumber(value, 2);
  dd.append(strong, ` ${unit}`);
  const meter = document.createElement("meter");
  meter.min = 0;
  meter.max = max || 1;
  meter.value = value ?? 0;
  meter.setAttribute("aria-label", `${label}: ${formatNumber(value, 2)} of at most ${formatNumber(max, 2)}`);
  const small = document.createElement("small");
  small.textContent = hint;
  dd.append(meter, small);
  wrap.append(dt, dd);
  return wrap;
}

function downloadButtons(name, svgOf) {
  const group = document.createElement("div");
  group.className = "card-actions";
  const svgButton = document.createElement("button");
  svgButton.type = "button";
  svgButton.className = "small";
  svgButton.textContent = "SVG";
  svgButton.dataset.download = "svg";
  svgButton.setAttribute("aria-label", `Download ${name} as SVG`);
  svgButton.addEventListener("click", () => {
    saveBlob(new Blob([svgOf()], { type: "image/svg+xml" }), `${slug(name)}.svg`);
  });
  const pngButton = document.createElement("button");
  pngButton.type = "button";
  pngButton.className = "small";
  pngButton.textContent = "PNG";
  pngButton.dataset.download = "png";
  pngButton.setAttribute("aria-label", `Download ${name} as PNG`);
  pngButton.addEventListener("click", async () => {
    try {
      saveBlob(await svgToPng(svgOf()), `${slug(name)}.png`);
    } catch (error) {
      $("status").textContent = `PNG failed: ${error.message}`;
    }
  });
  group.append(svgButton, pngButton);
  return group;
}

const slug = (text) => `attention-${text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/-$/, "")}`;

function headCard({ kind, head, title, matrix, result, scale, entropy, distance, topKeys, note }) {
  const figure = document.createElement("figure");
  figure.className = `heatmap-card ${kind}`;
  figure.dataset.kind = kind;
  figure.dataset.head = String(head);
  const titleId = `heatmap-${head}-title`;
  figure.setAttribute("aria-labelledby", titleId);

  const caption = document.createElement("figcaption");
  const h3 = document.createElement("h3");
  h3.id = titleId;
  const dot = document.createElement("span");
  dot.className = "head-dot";
  dot.style.background = kind === "head" ? headColour(head) : "#1b1f2a";
  dot.setAttribute("aria-hidden", "true");
  h3.append(dot, title);
  const sub = document.createElement("p");
  sub.className = "card-sub";
  sub.textContent = `${result.tokens.length} queries × ${result.key_tokens.length} keys${note ? ` · ${note}` : ""}`;
  caption.append(h3, sub);

  const readout = document.createElement("p");
  readout.className = "readout";
  readout.setAttribute("aria-live", "polite");
  readout.textContent = "Hover or focus a cell for its exact weight.";

  const map = createHeatmap({
    values: matrix,
    rowLabels: result.tokens,
    colLabels: result.key_tokens,
    scale,
    label: `${title} attention weights: queries in rows, keys in columns`,
    head,
    cellSize: result.key_tokens.length <= 16 ? 30 : result.key_tokens.length <= 32 ? 22 : 16,
    readout,
    topKeys,
    showValues: true,
    nullLabel: "null (not a number)",
    describe: (i, j, value) =>
      `${title}: query “${result.tokens[i]}” (${i + 1}) → key “${result.key_tokens[j]}” (${j + 1}): ${value === null ? "null" : String(value)}`,
  });

  const keys = result.key_tokens.length;
  const metrics = document.createElement("dl");
  metrics.className = "metrics";
  metrics.append(
    metricBlock("Entropy", entropy, Math.log(keys), "nats",
      `0 = one key, ${formatNumber(Math.log(keys), 2)} = spread evenly`),
    metricBlock("Mean distance", distance, Math.max(1, result.tokens.length - 1), "tokens",
      "how far away it looks"),
  );
  if (entropy !== null && entropy !== undefined) metrics.dataset.entropy = String(entropy);
  if (distance !== null && distance !== undefined) metrics.dataset.meanDistance = String(distance);

  const body = document.createElement("div");
  body.className = "card-body";
  body.append(map, metrics);
  const svgOf = () =>
    heatmapSvg({
      values: matrix,
      rowLabels: result.tokens,
      colLabels: result.key_tokens,
      scale,
      title: `${title} — attention weights`,
      subtitle: `“${result.tokens.join(" ")}” · rows: queries, columns: keys`,
    });
  caption.append(downloadButtons(title, svgOf));
  figure.append(caption, body, readout);
  return figure;
}

function mean(values) {
  const finite = (values ?? []).filter((v) => v !== null && Number.isFinite(v));
  return finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : null;
}

function renderHeads(result) {
  const attention = result.attention;
  const container = $("heatmaps");
  const legendSlot = $("heads-legend");
  if (!Array.isArray(attention) || !attention.length) {
    container.replaceChildren(message("The response holds no per-head attention."));
    legendSlot.replaceChildren();
    return;
  }
  const average = averageOf(attention);
  const [, hi] = extent(attention);
  const scale = makeScale("sequential", 0, Math.max(hi, 1e-9));
  legendSlot.replaceChildren(renderLegend(scale, "Attention weight (shared by all heads)", { masked: true }));
  const metrics = result.metrics ?? {};
  const cards = attention.map((matrix, h) =>
    headCard({
      kind: "head",
      head: h,
      title: `Head ${h + 1}`,
      matrix,
      result,
      scale,
      entropy: metrics.entropy?.[h] ?? null,
      distance: metrics.mean_distance?.[h] ?? null,
      topKeys: metrics.top_key?.[h] ?? null,
    }),
  );
  cards.push(
    headCard({
      kind: "average",
      head: "average",
      title: "Average of heads",
      matrix: average,
      result,
      scale,
      entropy: mean(metrics.entropy),
      distance: mean(metrics.mean_distance),
      note: "metrics: mean of the heads’",
    }),
  );
  const masked = result.fully_masked_queries ?? [];
  if (masked.length) {
    cards.unshift(
      message(
        `Queries ${masked.map((i) => `“${result.tokens[i]}” (${i + 1})`).join(", ")} can attend to no key: every key is masked, so their rows are zeros.`,
      ),
    );
  }
  container.replaceChildren(...cards);
}

function message(text) {
  const p = document.createElement("p");
  p.className = "note";
  p.textContent = text;
  return p;
}

function fillHeadSelect(select, heads, { average }) {
  const previous = select.value;
  const options = Array.from({ length: heads }, (_, h) => new Option(`Head ${h + 1}`, String(h)));
  if (average) options.push(new Option("Average of heads", "average"));
  select.replaceChildren(...options);
  select.value = options.some((o) => o.value === previous) ? previous : "0";
}

function renderConnectionView() {
  const result = state.data?.results?.[0];
  if (!result?.attention?.length) return;
  const choice = $("conn-head").value;
  const isAverage = choice === "average";
  const h = isAverage ? 0 : Number(choice);
  const name = isAverage ? `Average of ${result.attention.length} heads` : `Head ${h + 1}`;
  renderConnections($("connections"), {
    matrix: isAverage ? averageOf(result.attention) : result.attention[h],
    tokens: result.tokens,
    keyTokens: result.key_tokens,
    colour: isAverage ? "#1b1f2a" : headColour(h),
    name,
    readout: $("conn-readout"),
  });
  $("conn-caption").textContent = `${name}: each query token (left) linked to every key token (right); line weight = attention weight.`;
  $("conn-readout").textContent = "";
}

function renderStepView() {
  const result = state.data?.results?.[0];
  if (!result) return;
  renderSteps($("steps"), {
    result,
    config: state.data.config ?? {},
    head: Number($("step-head").value || 0),
  });
}

function renderSummary(data) {
  const result = data.results[0];
  const c = data.config ?? {};
  const heads = result.attention?.length ?? c.num_heads;
  const kv = c.num_kv_heads && c.num_kv_heads !== heads ? `, ${c.num_kv_heads} K/V heads` : "";
  const parts = [
    `${result.tokens.length} tokens`,
    `${heads} heads of ${c.head_dim ?? "?"} dims${kv}`,
    `scale ${c.scale !== undefined ? formatNumber(c.scale, 4) : "?"}`,
    `${c.positional_encoding ?? "?"} positions`,
  ];
  if (c.causal) parts.push("causal");
  if (c.window) parts.push(`window ${c.window}`);
  const summary = $("summary");
  summary.replaceChildren();
  const tokens = document.createElement("ul");
  tokens.className = "token-list";
  tokens.setAttribute("aria-label", "Tokens");
  for (const t of result.tokens) {
    const chip = document.createElement("li");
    chip.className = "chip";
    chip.textContent = t;
    tokens.append(chip);
  }
  const facts = document.createElement("span");
  facts.className = "facts";
  facts.textContent = parts.join(" · ");
  summary.append(tokens, facts);
  const m = data.meta ?? {};
  $("meta").textContent = [
    m.device && `Computed on ${m.device}`,
    m.dtype,
    m.elapsed_ms !== undefined && `${formatNumber(m.elapsed_ms, 2)} ms`,
    m.version && `service ${m.version}`,
    m.torch_version && `torch ${m.torch_version}`,
  ]
    .filter(Boolean)
    .join(" · ");
}

function render() {
  const data = state.data;
  const result = data.results[0];
  renderSummary(data);
  renderHeads(result);
  const heads = result.attention?.length ?? 0;
  fillHeadSelect($("conn-head"), heads, { average: true });
  fillHeadSelect($("step-head"), shapeOf(result.steps?.q ?? [])[0] ?? heads, { average: false });
  renderConnectionView();
  renderStepView();
  $("download-json").disabled = false;
}

// -- tabs --------------------------------------------------------------------------------------

function selectTab(tab, { focus = false } = {}) {
  for (const other of document.querySelectorAll("[role=tab]")) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
}

function wireTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const k = tabs.indexOf(tab);
      const next = {
        ArrowRight: (k + 1) % tabs.length,
        ArrowLeft: (k - 1 + tabs.length) % tabs.length,
        Home: 0,
        End: tabs.length - 1,
      }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      selectTab(tabs[next], { focus: true });
    });
  }
}

// -- start -------------------------------------------------------------------------------------

function start() {
  const key = $("api_key");
  key.value = sessionStorage.getItem(KEY_STORAGE) ?? "";
  key.addEventListener("input", () => {
    const value = key.value.trim();
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  });
  const form = $("config-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    compute({ userInitiated: true });
  });
  form.addEventListener("keydown", (event) => {
    // Enter on a checkbox submits too (text and number fields do so natively)
    if (event.key === "Enter" && event.target.type === "checkbox") {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  $("download-json").addEventListener("click", () => {
    if (state.raw) saveBlob(new Blob([state.raw], { type: "application/json" }), "attention-response.json");
  });
  $("show-values").addEventListener("change", (event) => {
    $("results").classList.toggle("show-values", event.target.checked);
  });
  $("conn-head").addEventListener("change", renderConnectionView);
  $("step-head").addEventListener("change", renderStepView);
  wireTabs();
  compute({ userInitiated: false });
}

start();

export { averageOf, shapeLabel };
