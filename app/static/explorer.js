// The attention explorer's entry: finds the page's parts and wires the modules together. The form
// (form.js) builds the request, requests.js sends it, view-model.js turns the answer into views,
// and each panel (panel-*.js) draws the view it is given into its own container.

import { getSteps } from "./api.js";
import { ArrivingGrid } from "./arriving.js";
import { exportName, saveBlob, setExportContext } from "./download.js";
import { ExactWindow } from "./exact-window.js";
import { ConfigForm } from "./form.js";
import { ComparePanel } from "./panel-compare.js";
import { maskIfDecoder } from "./decoder-view.js";
import { GeneratePanel } from "./panel-generate.js";
import { ConnectionsPanel } from "./panel-connections.js";
import { renderHeadsPanel } from "./panel-heads.js";
import { ModelPanel } from "./panel-model.js";
import { SearchPanel } from "./panel-search.js";
import { StepsPanel } from "./panel-steps.js";
import { Computation, LayerSteps } from "./requests.js";
import { useStatusLine } from "./status.js";
import { renderSummary } from "./summary.js";
import { Tabs } from "./tabs.js";
import { SEED_SENTENCE, Tour } from "./tour.js";
import { modelInUrl, restoreForm, saveUrl, viewInUrl } from "./url-state.js";
import { headType } from "./head-types.js";
import { loadLimits } from "./limits.js";
import { createState, currentResult, currentView, isPretrained, layerCount, showingPretrained, stepHeadCount } from "./view-model.js";

const $ = (id) => document.getElementById(id);

const state = createState();
const form = new ConfigForm($("config-form"));
const layerSteps = new LayerSteps(() => form.apiKey());
const exactWindow = new ExactWindow(() => form.apiKey());
const headsPanel = $("panel-heads");
const connections = new ConnectionsPanel($("panel-connections"), { onHead: chooseHead });
const steps = new StepsPanel($("panel-steps"), layerSteps, { onHead: chooseHead, strip: $("pipeline"), onStep: () => tabs.select(tabs.byId("tab-steps")) });
const compare = new ComparePanel($("panel-compare"), { form, body: () => state.body });
const generate = new GeneratePanel($("panel-generate"), { apiKey: () => form.apiKey(), onHidden: (tab) => tabs.isSelected(tab) && tabs.select(tabs.byId("tab-heads")) });
const model = new ModelPanel($("panel-model"), { onOpen: openHead });
const tabs = new Tabs(document.querySelector("[role=tablist]"), {
  onSelect: (tab) => {
    if (tab.id === "tab-steps") steps.revealed();
    if (tab.id === "tab-connections") connections.revealed();
    saveView();
  },
});
const search = new SearchPanel($("head-search"), {
  onOpen: openFound,
  onRank: (ranked) => {
    model.markSearch(ranked);
    saveView();
  },
});
// a streamed answer's layers, drawn as they come; a stream that breaks off redraws what was there
const arriving = new ArrivingGrid($("panel-model"), { tabs, state, restore: () => state.data && render() });
const computation = new Computation({
  form,
  state,
  arriving,
  parts: { main: $("main"), results: $("results"), staleNote: $("stale-note"), summary: $("summary"), truncation: $("truncation") },
  onResult: () => {
    layerSteps.reset(state.body);
    maskIfDecoder(state.data, form.modelEntry(state.body.model));
    if (pendingView) restoreView(pendingView);
    render();
    if (pendingView) restoreViewAfter(pendingView);
    pendingView = null;
  },
});

/** Heads, Connections and Steps: what follows the layer selector and the word toggle. */
function renderLayerViews() {
  const result = currentResult(state);
  const view = currentView(state);
  exactWindow.reset(); // the cards are drawn anew: an open window goes with them
  renderHeadsPanel(headsPanel, view, { onStatistic: chooseStatistic, exact: exactWindow, body: state.body });
  connections.show(view, state.head, { body: state.body, apiKey: () => form.apiKey() });
  const config = state.data.config ?? {};
  const layered = view.pretrained ? { position: view.position, layer: view.layer, total: layerCount(state) } : {};
  steps.show({ pretrained: view.pretrained, result, config, request: state.body, heads: stepHeadCount(result, view), ...layered }, state.head);
}

/** Max or mean: the block statistic an overview draws (a long input: long-inputs.js). */
function chooseStatistic(statistic) {
  state.statistic = statistic;
  renderLayerViews();
  if (showingPretrained(state)) renderModelView();
}

/** A head was chosen in one view (Connections, Steps, the model grid): every view follows. */
function chooseHead(head) {
  state.head = head;
  saveView();
  connections.followHead(head);
  steps.followHead(head);
  if (showingPretrained(state)) renderModelSelection();
}

/** The model view's parts that follow the chosen layer and head. */
function renderModelSelection() {
  const view = currentView(state);
  state.head = Math.min(state.head, view.attention.length - 1);
  model.showSelection(view, state.head);
}

/** Every layer's view, for the head search. */
function allLayerViews() {
  const result = currentResult(state);
  const positions = isPretrained(result) ? result.layers.map((_, k) => k) : [0];
  return positions.map((k) => {
    const view = currentView(state, k);
    return { ...view, position: k, layer: view.pretrained ? view.layer : null };
  });
}

/** A head found by the search: open it and focus the cell of the query and key searched for. */
function openFound({ position, head, query, key }) {
  const row = query ?? 0;
  if (showingPretrained(state)) {
    tabs.select(tabs.byId("tab-model"));
    openHead(position, head);
    $("model-detail").querySelector(`td[data-row="${row}"][data-col="${key}"]`)?.focus();
    return;
  }
  tabs.select(tabs.byId("tab-heads"));
  chooseHead(head);
  headsPanel.querySelector(`figure[data-head="${head}"] td[data-row="${row}"][data-col="${key}"]`)?.focus();
}

function renderModelView() {
  const result = currentResult(state);
  const layers = result.layers.map((_, k) => currentView(state, k));
  model.show(result, layers, layerCount(state));
  renderModelSelection();
}

/** A thumbnail was chosen: show that layer everywhere and that head in the large view. */
function openHead(position, head) {
  const changed = position !== state.layer;
  state.layer = position;
  $("layer").value = String(position);
  if (changed) renderLayerViews();
  chooseHead(head);
  model.announceOpened(currentView(state), head);
}

/** The layer selector and the word toggle, shown for a pretrained result only. */
function prepareLayerBar(result) {
  const select = $("layer");
  const total = layerCount(state);
  const options = result.layers.map((layer, k) => new Option(`Layer ${layer} (of 0–${total - 1})`, String(k)));
  select.replaceChildren(...options);
  state.layer = Math.min(state.layer, options.length - 1);
  select.value = String(state.layer);
  const toggle = $("word-level");
  const hasWords = Array.isArray(result.analysis?.words);
  toggle.disabled = !hasWords;
  // a decoder has no words (the encoder's analysis): the box is not offered at all
  toggle.closest("label").hidden = form.modelEntry(state.body.model)?.kind === "decoder";
  if (!hasWords) toggle.checked = false;
  state.words = toggle.checked;
}

function render() {
  const result = currentResult(state);
  const pretrained = isPretrained(result);
  $("layer-bar").hidden = !pretrained;
  tabs.byId("tab-model").hidden = !pretrained;
  if (pretrained) prepareLayerBar(result);
  renderSummary($("summary"), $("meta"), state.data);
  setExportContext(state.data);
  renderLayerViews();
  if (pretrained) renderModelView();
  const everyLayer = allLayerViews();
  search.show(everyLayer);
  compare.show(everyLayer);
  collapseFormOnce();
  // a pretrained result opens on its model view; the random model has none
  if (pretrained && !state.shownPretrained) tabs.select(tabs.byId("tab-model"));
  if (!pretrained && tabs.isSelected(tabs.byId("tab-model"))) tabs.select(tabs.byId("tab-heads"));
  generate.show(state.body, form.modelEntry(state.body.model));
  state.shownPretrained = pretrained;
  $("download-json").disabled = false;
}

/** The view on the page, as the URL keeps it. */
function saveView() {
  if (!state.data) return;
  const tab = tabs.tabs.find((t) => tabs.isSelected(t))?.id.replace("tab-", "");
  const chosen = search.chosen();
  const pretrained = showingPretrained(state);
  saveUrl($("config-form"), {
    tab,
    layer: pretrained ? state.layer : null,
    head: state.head,
    words: pretrained && state.words,
    q: chosen ? (chosen.query ?? "any") : null,
    k: chosen?.key,
  });
}

/** The view of a link or a reload, before its first result is drawn: layer, head, words. */
function restoreView(view) {
  if (view.layer !== null) state.layer = view.layer;
  if (view.head !== null) state.head = view.head;
  $("word-level").checked = view.words;
}

/** ...and after: the tab and the head search. */
function restoreViewAfter(view) {
  const tab = view.tab && tabs.byId(`tab-${view.tab}`);
  if (tab && !tab.hidden) tabs.select(tab);
  if (view.k !== null) search.search(view.q === "any" || view.q === null ? null : Number(view.q), view.k);
  if (view.k !== null) $("head-search").open = true;
}

/** The first result collapses the head configuration, so that the result is on the first screen. */
function collapseFormOnce() {
  $("form-more-facts").textContent = form.describe();
  if (state.collapsedForm) return;
  state.collapsedForm = true;
  $("form-more").open = false;
}

/** What the tour does on the page. */
const tourPage = {
  async ensureSeed() {
    const onSeed = $("text").value.trim() === SEED_SENTENCE && form.chosenModel().kind === "seeded";
    if (onSeed && state.data) return;
    $("text").value = SEED_SENTENCE;
    $("model").value = "random";
    form.applyModelChoice();
    await computation.compute({ userInitiated: false });
  },
  tokens: () => currentResult(state)?.tokens ?? [],
  selectTab(id, step) {
    tabs.select(tabs.byId(id));
    const target = step ? $("steps").querySelector(`[data-step="${step}"]`) : $(id);
    target?.scrollIntoView({ block: "start" });
  },
  search(query, key) {
    const ranked = search.search(query, key);
    $("head-search").scrollIntoView({ block: "start" });
    return ranked;
  },
  openFound,
  describeHead({ position, head, layer }) {
    const view = currentView(state, position);
    const name = layer === null ? `Head ${head}` : `Layer ${layer}, head ${head}`;
    return { name, type: headType(view.attention[head], { pretrained: view.pretrained }).type };
  },
};
const tour = new Tour($("tour"), tourPage);

function wireResultControls() {
  $("tour-start").addEventListener("click", () => tour.start());
  $("download-json").addEventListener("click", () => {
    if (state.raw) saveBlob(new Blob([state.raw], { type: "application/json" }), exportName("response", "json"));
  });
  $("show-values").addEventListener("change", (event) => {
    $("results").classList.toggle("show-values", event.target.checked);
  });
  $("layer").addEventListener("change", (event) => {
    state.layer = Number(event.target.value);
    saveView();
    if (!showingPretrained(state)) return;
    renderLayerViews();
    renderModelSelection();
  });
  $("word-level").addEventListener("change", (event) => {
    state.words = event.target.checked;
    saveView();
    if (!showingPretrained(state)) return;
    renderLayerViews();
    renderModelView();
  });
}

useStatusLine($("status"));
form.wire(() => computation.compute({ userInitiated: true }));
// the results on the page belong to the model that computed them: a new model computes anew
$("model").addEventListener("change", () => computation.compute({ userInitiated: false }));
wireResultControls();

/** Start: the form and the view from the URL (a pretrained model waits for GET /models). */
let pendingView = restoreForm($("config-form")) || window.location.search ? viewInUrl() : null;
async function start() {
  getSteps(form.apiKey()).then((registry) => steps.strip.setRegistry(registry));
  loadLimits(form.apiKey());
  const named = modelInUrl();
  const models = computation.loadModels();
  if (named && named !== "random") {
    await models;
    $("model").value = named;
    form.applyModelChoice();
  }
  computation.compute({ userInitiated: false });
}
start();
