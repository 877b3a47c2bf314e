// The attention explorer: reads the form, calls POST /attention, draws heads, connections, steps,
// and for a pretrained model the model view (every layer × head, the rollout, special tokens).

import { FORM_FIELDS, getModels, postAttention } from "./api.js";
import { extent, formatNumber, headColour, makeScale, renderLegend } from "./colors.js";
import { renderConnections } from "./connections.js";
import { heatmapSvg, saveBlob, svgToPng } from "./download.js";
import { createHeatmap } from "./heatmap.js";
import {
  computeMetrics,
  markSelection,
  matrixFigure,
  renderLayerMetrics,
  renderModelGrid,
} from "./model-view.js";
import { renderSteps, shapeLabel, shapeOf } from "./steps.js";

const KEY_STORAGE = "attention-explorer.api-key";
const RANDOM = "random";
const $ = (id) => document.getElementById(id);

const state = {
  data: null, // the last successful response, parsed
  raw: "", // ...and as the service sent it
  body: null, // ...and the request that produced it
  controller: null,
  generation: 0,
  models: null, // name -> entry of GET /models, once it answered
  unavailable: null, // why GET /models has no pretrained model
  layer: 0, // position in result.layers shown by Heads, Connections, Steps and the large view
  head: 0, // the head open in the model view's large heatmap
  words: false, // word-level attention instead of WordPieces
  shownPretrained: false, // whether the results on the page are a pretrained model's
  steps: { cache: new Map(), controller: null, layer: null }, // a pretrained model's steps per layer
};

// -- the form ----------------------------------------------------------------------------------

const INTEGER_FIELDS = { d_model: true, num_heads: true, seed: true, num_kv_heads: false, window: false };
const TEXT_HINT = $("text-hint").textContent;

function chosenModel() {
  const name = $("model").value || RANDOM;
  return state.models?.get(name) ?? { name, kind: name === RANDOM ? "seeded" : "pretrained" };
}

function readForm() {
  const errors = [];
  const text = $("text").value.trim();
  if (!text) errors.push({ field: "text", message: "Type a sentence first." });
  const model = chosenModel();
  if (model.kind === "pretrained") {
    const body = {
      model: model.name,
      text,
      layers: "all",
      output: { attention: "per_head", precision: 4, metrics: true, analysis: true },
    };
    return { body, errors };
  }
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

function apiKey() {
  return $("api_key").value.trim();
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
    outcome = await postAttention(body, apiKey(), controller.signal);
  } catch {
    return; // aborted by a newer request
  }
  if (state.controller !== controller) return;
  state.controller = null;
  if (outcome.ok) {
    state.data = outcome.data;
    state.raw = outcome.raw;
    state.body = body;
    resetSteps();
    render();
    $("status").textContent = doneMessage(outcome.data);
    $("stale-note").hidden = true;
    finish("ready");
    if (!state.models) loadModels();
  } else {
    showErrors(outcome.fieldErrors, outcome.message, { focus: userInitiated });
    $("status").textContent = outcome.status ? `Error ${outcome.status}.` : "Network error.";
    $("stale-note").hidden = !state.data;
    if (!state.data) $("summary").textContent = "No result yet: see the message above.";
    finish("error");
  }
}

function doneMessage(data) {
  const r = data.results[0];
  const ms = data.meta?.elapsed_ms;
  const time = ms !== undefined ? ` in ${formatNumber(ms, 1)} ms` : "";
  if (isPretrained(r)) {
    const heads = r.attention?.[0]?.length ?? data.config?.num_heads ?? 0;
    return `Done: ${r.layers.length} layers × ${heads} heads over ${r.tokens.length} tokens${time}.`;
  }
  return `Done: ${r.attention?.length ?? 0} heads over ${r.tokens.length} tokens${time}.`;
}

function finish(name) {
  setState(name);
  state.generation += 1;
  $("main").dataset.generation = String(state.generation);
}

// -- models ------------------------------------------------------------------------------------

function modelLabel(model) {
  return `${model.name} (${model.kind === "pretrained" ? "pretrained" : "seeded, one layer"})`;
}

async function loadModels() {
  const outcome = await getModels(apiKey());
  if (!outcome.ok) return; // the random model works without it; retried after the next success
  state.models = new Map(outcome.data.models.map((m) => [m.name, m]));
  state.unavailable = outcome.data.unavailable ?? null;
  const select = $("model");
  const previous = select.value;
  const options = outcome.data.models.map((m) => {
    const option = new Option(modelLabel(m), m.name);
    option.dataset.kind = m.kind;
    return option;
  });
  if (state.unavailable && !outcome.data.models.some((m) => m.kind === "pretrained")) {
    const option = new Option("pretrained model — unavailable", "");
    option.disabled = true;
    option.dataset.kind = "pretrained";
    option.dataset.unavailable = "true";
    options.push(option);
  }
  select.replaceChildren(...options);
  select.value = options.some((o) => o.value === previous && !o.disabled) ? previous : RANDOM;
  $("model").dataset.loaded = "true";
  applyModelChoice();
}

/** Show the head configuration for the random model, a note on the fixed one otherwise. */
function applyModelChoice() {
  const model = chosenModel();
  const pretrained = model.kind === "pretrained";
  const fieldset = $("heads-config");
  fieldset.hidden = pretrained;
  fieldset.disabled = pretrained;
  const note = $("model-note");
  note.hidden = !pretrained;
  note.textContent = pretrained
    ? `${model.name} has a fixed configuration: ${model.layers ?? "?"} layers × ${model.heads ?? "?"} heads, d_model ${model.d_model ?? "?"} (${model.head_dim ?? "?"} per head), learned positions, at most ${model.max_tokens ?? "?"} tokens. The head configuration fields apply to the random model only, so they are hidden.`
    : "";
  let hint = pretrained
    ? "A trained BERT sentence encoder running on this service’s own attention module: real attention, layer by layer."
    : "Weights drawn from the seed, shaped by the head configuration above.";
  if (state.unavailable) hint += ` The pretrained model is unavailable: ${state.unavailable}`;
  $("model-hint").textContent = hint;
  $("text-hint").textContent = pretrained
    ? `Split into WordPieces by the model’s tokenizer, with [CLS] first and [SEP] last (at most ${model.max_tokens ?? "?"}). Press Enter to compute.`
    : TEXT_HINT;
}

// -- what is shown: one layer of one result --------------------------------------------------

function isPretrained(result) {
  return Array.isArray(result?.layers);
}

const showingPretrained = () => isPretrained(state.data?.results?.[0]);

/**
 * The attention the Heads and Connections views draw. For the random model, the result itself;
 * for a pretrained one, layer `position` of it, in WordPieces or (state.words) whole words.
 */
function viewOf(result, position = state.layer) {
  if (!isPretrained(result)) {
    return {
      pretrained: false,
      tokens: result.tokens,
      keyTokens: result.key_tokens,
      attention: result.attention,
      metrics: result.metrics ?? {},
      shares: null,
      fullyMasked: result.fully_masked_queries ?? [],
    };
  }
  const analysis = result.analysis ?? {};
  const words = state.words && Array.isArray(analysis.words) && Array.isArray(analysis.word_attention);
  const attention = words ? analysis.word_attention[position] : result.attention[position];
  const tokens = words ? analysis.words : result.tokens;
  const metrics = words
    ? computeMetrics(attention)
    : {
        entropy: result.metrics?.entropy?.[position],
        mean_distance: result.metrics?.mean_distance?.[position],
        top_key: result.metrics?.top_key?.[position],
      };
  const shares = {
    cls: analysis.special_share?.["[CLS]"]?.[position],
    sep: analysis.special_share?.["[SEP]"]?.[position],
  };
  return {
    pretrained: true,
    layer: result.layers[position],
    position,
    words,
    tokens,
    keyTokens: tokens,
    attention,
    metrics,
    shares,
    fullyMasked: [],
  };
}

const layerName = (view) => (view.pretrained ? `Layer ${view.layer + 1}, ` : "");

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

function metricBlock(label, value, max, unit, hint, digits = 2) {
  const wrap = document.createElement("div");
  wrap.className = "metric";
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  const strong = document.createElement("strong");
  strong.textContent = formatNumber(value, digits);
  dd.append(strong, unit === "%" ? unit : ` ${unit}`);
  const meter = document.createElement("meter");
  meter.min = 0;
  meter.max = max || 1;
  meter.value = value ?? 0;
  meter.setAttribute("aria-label", `${label}: ${formatNumber(value, digits)}${unit === "%" ? "%" : ""} of at most ${formatNumber(max, 2)}`);
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

function headCard({ kind, head, title, matrix, view, scale, entropy, distance, topKeys, cls, sep, note, idPrefix = "" }) {
  const { tokens, keyTokens } = view;
  const figure = document.createElement("figure");
  figure.className = `heatmap-card ${kind}`;
  figure.dataset.kind = kind;
  figure.dataset.head = String(head);
  if (view.pretrained) figure.dataset.layer = String(view.layer);
  const titleId = `${idPrefix}heatmap-${head}-title`;
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
  const unit = view.words ? "words" : view.pretrained ? "WordPieces" : "";
  sub.textContent = `${tokens.length} queries × ${keyTokens.length} keys${unit ? ` (${unit})` : ""}${note ? ` · ${note}` : ""}`;
  caption.append(h3, sub);

  const readout = document.createElement("p");
  readout.className = "readout";
  readout.setAttribute("aria-live", "polite");
  readout.textContent = "Hover or focus a cell for its exact weight.";

  const map = createHeatmap({
    values: matrix,
    rowLabels: tokens,
    colLabels: keyTokens,
    scale,
    label: `${title} attention weights: queries in rows, keys in columns`,
    head,
    cellSize: keyTokens.length <= 16 ? 30 : keyTokens.length <= 32 ? 22 : 16,
    readout,
    topKeys,
    showValues: true,
    nullLabel: "null (not a number)",
    describe: (i, j, value) =>
      `${title}: query “${tokens[i]}” (${i + 1}) → key “${keyTokens[j]}” (${j + 1}): ${value === null ? "null" : String(value)}`,
  });

  const keys = keyTokens.length;
  const metrics = document.createElement("dl");
  metrics.className = "metrics";
  metrics.append(
    metricBlock("Entropy", entropy, Math.log(keys), "nats",
      `0 = one key, ${formatNumber(Math.log(keys), 2)} = spread evenly`),
    metricBlock("Mean distance", distance, Math.max(1, tokens.length - 1), view.words ? "words" : "tokens",
      "how far away it looks"),
  );
  if (cls !== undefined && cls !== null) {
    metrics.append(metricBlock("On [CLS]", cls * 100, 100, "%", "share of the weight on [CLS]", 1));
    metrics.dataset.cls = String(cls);
  }
  if (sep !== undefined && sep !== null) {
    metrics.append(metricBlock("On [SEP]", sep * 100, 100, "%", "share of the weight on [SEP]", 1));
    metrics.dataset.sep = String(sep);
  }
  if (entropy !== null && entropy !== undefined) metrics.dataset.entropy = String(entropy);
  if (distance !== null && distance !== undefined) metrics.dataset.meanDistance = String(distance);

  const body = document.createElement("div");
  body.className = "card-body";
  body.append(map, metrics);
  const svgOf = () =>
    heatmapSvg({
      values: matrix,
      rowLabels: tokens,
      colLabels: keyTokens,
      scale,
      title: `${title} — attention weights`,
      subtitle: `“${tokens.join(" ")}” · rows: queries, columns: keys`,
    });
  caption.append(downloadButtons(title, svgOf));
  figure.append(caption, body, readout);
  return figure;
}

function mean(values) {
  const finite = (values ?? []).filter((v) => v !== null && Number.isFinite(v));
  return finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : null;
}

function layerScale(attention) {
  const [, hi] = extent(attention);
  return makeScale("sequential", 0, Math.max(hi, 1e-9));
}

function renderHeads(view) {
  const attention = view.attention;
  const container = $("heatmaps");
  const legendSlot = $("heads-legend");
  if (!Array.isArray(attention) || !attention.length) {
    container.replaceChildren(message("The response holds no per-head attention."));
    legendSlot.replaceChildren();
    return;
  }
  const average = averageOf(attention);
  const scale = layerScale(attention);
  const shared = view.pretrained
    ? `Attention weight (shared by the ${attention.length} heads of layer ${view.layer + 1})`
    : "Attention weight (shared by all heads)";
  legendSlot.replaceChildren(renderLegend(scale, shared, { masked: true }));
  const metrics = view.metrics ?? {};
  const cards = attention.map((matrix, h) =>
    headCard({
      kind: "head",
      head: h,
      title: view.pretrained ? `${layerName(view)}head ${h + 1}` : `Head ${h + 1}`,
      matrix,
      view,
      scale,
      entropy: metrics.entropy?.[h] ?? null,
      distance: metrics.mean_distance?.[h] ?? null,
      topKeys: metrics.top_key?.[h] ?? null,
      cls: view.shares?.cls?.[h],
      sep: view.shares?.sep?.[h],
    }),
  );
  cards.push(
    headCard({
      kind: "average",
      head: "average",
      title: view.pretrained ? `${layerName(view)}average of heads` : "Average of heads",
      matrix: average,
      view,
      scale,
      entropy: mean(metrics.entropy),
      distance: mean(metrics.mean_distance),
      cls: view.shares?.cls ? mean(view.shares.cls) : undefined,
      sep: view.shares?.sep ? mean(view.shares.sep) : undefined,
      note: "metrics: mean of the heads’",
    }),
  );
  const masked = view.fullyMasked ?? [];
  if (masked.length) {
    cards.unshift(
      message(
        `Queries ${masked.map((i) => `“${view.tokens[i]}” (${i + 1})`).join(", ")} can attend to no key: every key is masked, so their rows are zeros.`,
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
  const view = viewOf(result);
  if (!view.attention?.length) return;
  const choice = $("conn-head").value;
  const isAverage = choice === "average";
  const h = isAverage ? 0 : Number(choice);
  const prefix = view.pretrained ? `Layer ${view.layer + 1}, ` : "";
  const name = isAverage
    ? `${prefix}${prefix ? "average" : "Average"} of ${view.attention.length} heads`
    : `${prefix}${prefix ? "head" : "Head"} ${h + 1}`;
  renderConnections($("connections"), {
    matrix: isAverage ? averageOf(view.attention) : view.attention[h],
    tokens: view.tokens,
    keyTokens: view.keyTokens,
    colour: isAverage ? "#1b1f2a" : headColour(h),
    name,
    readout: $("conn-readout"),
  });
  $("conn-caption").textContent = `${name}: each query token (left) linked to every key token (right); line weight = attention weight.`;
  $("conn-readout").textContent = "";
}

// -- steps: in the response for the random model, one request per layer for a pretrained one --

function resetSteps() {
  state.steps.controller?.abort();
  state.steps = { cache: new Map(), controller: null, layer: null };
}

function stepsBody(layer) {
  const { model, text } = state.body;
  return { model, text, layers: [layer], output: { attention: "none", steps: "all", precision: 4 } };
}

async function fetchSteps(position) {
  const result = state.data.results[0];
  const layer = result.layers[position];
  if (state.steps.layer === position && state.steps.controller) return; // already on its way
  state.steps.controller?.abort();
  const controller = new AbortController();
  state.steps.controller = controller;
  state.steps.layer = position;
  const container = $("steps");
  container.dataset.state = "loading";
  container.dataset.layer = String(layer);
  container.replaceChildren(message(`Computing the steps of layer ${layer + 1}…`));
  let outcome;
  try {
    outcome = await postAttention(stepsBody(layer), apiKey(), controller.signal);
  } catch {
    return; // aborted: a newer layer or a newer result
  }
  if (state.steps.controller !== controller) return;
  state.steps.controller = null;
  state.steps.layer = null;
  if (outcome.ok) {
    const steps = outcome.data.results[0].steps ?? {};
    const sliced = Object.fromEntries(Object.entries(steps).map(([name, value]) => [name, value[0]]));
    state.steps.cache.set(position, sliced);
    if (state.layer === position) renderStepView();
  } else {
    container.dataset.state = "error";
    container.replaceChildren(message(`The steps of layer ${layer + 1} could not be computed: ${outcome.message}`));
  }
}

function renderStepView() {
  const result = state.data?.results?.[0];
  if (!result) return;
  const container = $("steps");
  const head = Number($("step-head").value || 0);
  const note = $("steps-layer");
  if (!isPretrained(result)) {
    note.hidden = true;
    delete container.dataset.layer;
    container.dataset.state = "ready";
    renderSteps(container, { result, config: state.data.config ?? {}, head });
    return;
  }
  const position = state.layer;
  const layer = result.layers[position];
  note.hidden = false;
  note.textContent = `Layer ${layer + 1} of ${state.data.config?.num_layers ?? result.layers.length}: its attention block, from the layer’s input to the output projection. Always in WordPieces. Pick another layer above.`;
  const steps = state.steps.cache.get(position);
  if (!steps) {
    if ($("panel-steps").hidden) {
      container.dataset.state = "idle"; // fetched when the panel is shown
      container.dataset.layer = String(layer);
      return;
    }
    fetchSteps(position);
    return;
  }
  container.dataset.state = "ready";
  container.dataset.layer = String(layer);
  const layerResult = { tokens: result.tokens, key_tokens: result.key_tokens, steps };
  renderSteps(container, { result: layerResult, config: state.data.config ?? {}, head, layer });
}

// -- the model view --------------------------------------------------------------------------

function renderModelView() {
  const result = state.data.results[0];
  const views = result.layers.map((_, k) => viewOf(result, k));
  const all = views.map((v) => v.attention);
  const scale = layerScale(all);
  $("model-legend").replaceChildren(
    renderLegend(scale, "Attention weight (one scale for every thumbnail)"),
  );
  const unit = views[0]?.words ? "words" : "WordPieces";
  const n = views[0]?.tokens.length ?? 0;
  $("model-grid-sub").textContent = `${views.length} layers × ${all[0]?.length ?? 0} heads, each ${n} × ${n} ${unit}. The ringed one is open below.`;
  const table = $("model-grid");
  const fresh = table.cloneNode(false); // drops the old listeners with the old cells
  table.replaceWith(fresh);
  renderModelGrid(fresh, {
    layers: views.map((v) => ({ layer: v.layer, attention: v.attention, metrics: v.metrics, shares: v.shares })),
    scale,
    onOpen: openHead,
    readout: $("model-grid-readout"),
  });
  renderRollout(result);
  renderShares(result);
  renderModelSelection();
}

/** The parts of the model view that follow the chosen layer and head. */
function renderModelSelection() {
  const result = state.data.results[0];
  const view = viewOf(result);
  const heads = view.attention.length;
  state.head = Math.min(state.head, heads - 1);
  const h = state.head;
  markSelection($("model-grid"), state.layer, h);
  const [, hiAll] = extent(view.attention);
  const scale = makeScale("sequential", 0, Math.max(hiAll, 1e-9));
  $("model-detail").replaceChildren(
    headCard({
      kind: "head",
      head: h,
      title: `Layer ${view.layer + 1}, head ${h + 1}`,
      matrix: view.attention[h],
      view,
      scale,
      entropy: view.metrics.entropy?.[h] ?? null,
      distance: view.metrics.mean_distance?.[h] ?? null,
      topKeys: view.metrics.top_key?.[h] ?? null,
      cls: view.shares.cls?.[h],
      sep: view.shares.sep?.[h],
      idPrefix: "detail-",
      note: `scale of layer ${view.layer + 1}`,
    }),
  );
  $("layer-metrics-title").textContent = `Layer ${view.layer + 1}: per-head metrics`;
  const maxEntropy = Math.log(Math.max(2, view.keyTokens.length));
  renderLayerMetrics($("layer-metrics"), {
    layer: view.layer,
    metrics: view.metrics,
    shares: view.shares,
    head: h,
    maxEntropy,
    maxDistance: Math.max(1, view.tokens.length - 1),
    unit: view.words ? "words" : "tokens",
  });
}

function renderRollout(result) {
  const rollout = result.analysis?.rollout;
  const slot = $("rollout-slot");
  if (!Array.isArray(rollout) || !rollout.length) {
    slot.replaceChildren(message("The response holds no attention rollout."));
    return;
  }
  const tokens = result.tokens;
  const [, hi] = extent(rollout);
  const scale = makeScale("sequential", 0, Math.max(hi, 1e-9));
  const figure = matrixFigure({
    id: "rollout",
    title: `Attention rollout through all ${state.data.config?.num_layers ?? result.layers.length} layers`,
    explain:
      "How much each token’s final vector (row) draws on each input token (column): every layer’s heads averaged, the residual connection added as ½(A + I), the layers multiplied (Abnar &amp; Zuidema, 2020). Always in WordPieces.",
    values: rollout,
    rowLabels: tokens,
    colLabels: tokens,
    scale,
    label: "Attention rollout: output tokens in rows, input tokens in columns",
    rowAxis: "token",
    colAxis: "input",
    cellSize: tokens.length <= 16 ? 28 : tokens.length <= 32 ? 20 : 14,
    describe: (i, j, value) =>
      `Rollout: token “${tokens[i]}” (${i + 1}) ← input “${tokens[j]}” (${j + 1}): ${value === null ? "null" : String(value)}`,
  });
  figure.append(renderLegend(scale, "rollout weight"));
  slot.replaceChildren(figure);
}

function renderShares(result) {
  const shares = result.analysis?.special_share ?? {};
  const container = $("shares");
  const figures = Object.entries(shares).map(([token, values]) => {
    const layers = result.layers.map((l) => `Layer ${l + 1}`);
    const heads = (values[0] ?? []).map((_, h) => `H${h + 1}`);
    const scale = makeScale("sequential", 0, 1);
    const id = `share-${token.replace(/[^A-Za-z]/g, "").toLowerCase()}`;
    const figure = matrixFigure({
      id,
      title: `On ${token}`,
      explain: `Per layer (rows) and head (columns): the mean share of the weight on ${token}, from 0 to 1.`,
      values,
      rowLabels: layers,
      colLabels: heads,
      scale,
      label: `Share of attention on ${token}: layers in rows, heads in columns`,
      rowAxis: "layer",
      colAxis: "head",
      cellSize: 26,
      describe: (i, j, value) =>
        `${layers[i]}, head ${j + 1}: ${value === null ? "null" : `${String(value)} (${formatNumber(value * 100, 1)}%)`} of the weight on ${token}`,
    });
    figure.dataset.token = token;
    return figure;
  });
  container.replaceChildren(...(figures.length ? figures : [message("The response holds no special-token shares.")]));
}

/** A thumbnail was chosen: show that layer everywhere and that head in the large view. */
function openHead(position, head) {
  const changed = position !== state.layer;
  state.layer = position;
  state.head = head;
  $("layer").value = String(position);
  if (changed) renderLayerViews();
  renderModelSelection();
  const layer = state.data.results[0].layers[position];
  $("model-grid-readout").textContent = `Layer ${layer + 1}, head ${head + 1} is open in the large view below.`;
  const detail = $("model-detail");
  const box = detail.getBoundingClientRect();
  if (box.top > window.innerHeight || box.bottom < 0) detail.scrollIntoView({ block: "nearest" });
}

// -- summary and the whole render -----------------------------------------------------------

function renderSummary(data) {
  const result = data.results[0];
  const c = data.config ?? {};
  const pretrained = isPretrained(result);
  let parts;
  if (pretrained) {
    const words = result.analysis?.words;
    parts = [
      `${result.tokens.length} WordPiece tokens${Array.isArray(words) ? ` (${Math.max(0, words.length - 2)} words)` : ""}`,
      `${c.model ?? "pretrained"}: ${result.layers.length} layers × ${c.num_heads ?? "?"} heads of ${c.head_dim ?? "?"} dims`,
      `d_model ${c.d_model ?? "?"}`,
      `scale ${c.scale !== undefined ? formatNumber(c.scale, 4) : "?"}`,
    ];
  } else {
    const heads = result.attention?.length ?? c.num_heads;
    const kv = c.num_kv_heads && c.num_kv_heads !== heads ? `, ${c.num_kv_heads} K/V heads` : "";
    parts = [
      `${result.tokens.length} tokens`,
      `${heads} heads of ${c.head_dim ?? "?"} dims${kv}`,
      `scale ${c.scale !== undefined ? formatNumber(c.scale, 4) : "?"}`,
      `${c.positional_encoding ?? "?"} positions`,
    ];
    if (c.causal) parts.push("causal");
    if (c.window) parts.push(`window ${c.window}`);
  }
  const summary = $("summary");
  summary.replaceChildren();
  const tokens = document.createElement("ul");
  tokens.className = "token-list";
  tokens.setAttribute("aria-label", pretrained ? "WordPiece tokens" : "Tokens");
  for (const t of result.tokens) {
    const chip = document.createElement("li");
    chip.className = "chip";
    if (pretrained && /^\[[A-Z]+\]$/.test(t)) chip.classList.add("special");
    if (pretrained && String(t).startsWith("##")) chip.classList.add("piece");
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

function fillLayerSelect(result) {
  const select = $("layer");
  const total = state.data.config?.num_layers ?? result.layers.length;
  const options = result.layers.map((layer, k) => new Option(`Layer ${layer + 1} of ${total}`, String(k)));
  select.replaceChildren(...options);
  state.layer = Math.min(state.layer, options.length - 1);
  select.value = String(state.layer);
}

/** Heads, Connections and Steps: what follows the layer selector and the word toggle. */
function renderLayerViews() {
  const result = state.data.results[0];
  const view = viewOf(result);
  renderHeads(view);
  const heads = view.attention?.length ?? 0;
  fillHeadSelect($("conn-head"), heads, { average: true });
  const stepHeads = view.pretrained ? heads : shapeOf(result.steps?.q ?? [])[0] ?? heads;
  fillHeadSelect($("step-head"), stepHeads, { average: false });
  renderConnectionView();
  renderStepView();
}

function render() {
  const data = state.data;
  const result = data.results[0];
  const pretrained = isPretrained(result);
  $("layer-bar").hidden = !pretrained;
  $("tab-model").hidden = !pretrained;
  if (pretrained) {
    fillLayerSelect(result);
    const hasWords = Array.isArray(result.analysis?.words);
    $("word-level").disabled = !hasWords;
    if (!hasWords) $("word-level").checked = false;
    state.words = $("word-level").checked;
  }
  renderSummary(data);
  renderLayerViews();
  if (pretrained) renderModelView();
  if (pretrained && !state.shownPretrained) selectTab($("tab-model"));
  if (!pretrained && $("tab-model").getAttribute("aria-selected") === "true") selectTab($("tab-heads"));
  state.shownPretrained = pretrained;
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
  if (tab.id === "tab-steps" && ["idle", "error"].includes($("steps").dataset.state)) renderStepView();
}

function wireTabs() {
  const all = [...document.querySelectorAll("[role=tab]")];
  for (const tab of all) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const tabs = all.filter((t) => !t.hidden);
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
    // Enter on a checkbox or a select submits too (text and number fields do so natively)
    if (event.key === "Enter" && (event.target.type === "checkbox" || event.target.tagName === "SELECT")) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  $("model").addEventListener("change", applyModelChoice);
  $("download-json").addEventListener("click", () => {
    if (state.raw) saveBlob(new Blob([state.raw], { type: "application/json" }), "attention-response.json");
  });
  $("show-values").addEventListener("change", (event) => {
    $("results").classList.toggle("show-values", event.target.checked);
  });
  $("layer").addEventListener("change", (event) => {
    state.layer = Number(event.target.value);
    if (!showingPretrained()) return;
    renderLayerViews();
    renderModelSelection();
  });
  $("word-level").addEventListener("change", (event) => {
    state.words = event.target.checked;
    if (!showingPretrained()) return;
    renderLayerViews();
    renderModelView();
  });
  $("conn-head").addEventListener("change", renderConnectionView);
  $("step-head").addEventListener("change", renderStepView);
  wireTabs();
  loadModels();
  compute({ userInitiated: false });
}

start();

export { averageOf, shapeLabel };
