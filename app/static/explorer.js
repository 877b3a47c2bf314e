// The attention explorer's entry: finds the page's parts and wires the modules together. The form
// (form.js) builds the request, requests.js sends it, view-model.js turns the answer into views,
// and each panel (panel-*.js) draws the view it is given into its own container.

import { exportName, saveBlob, setExportContext } from "./download.js";
import { ConfigForm } from "./form.js";
import { ConnectionsPanel } from "./panel-connections.js";
import { renderHeadsPanel } from "./panel-heads.js";
import { ModelPanel } from "./panel-model.js";
import { StepsPanel } from "./panel-steps.js";
import { Computation, LayerSteps } from "./requests.js";
import { useStatusLine } from "./status.js";
import { renderSummary } from "./summary.js";
import { Tabs } from "./tabs.js";
import {
  createState,
  currentResult,
  currentView,
  isPretrained,
  layerCount,
  showingPretrained,
  stepHeadCount,
} from "./view-model.js";

const $ = (id) => document.getElementById(id);

const state = createState();
const form = new ConfigForm($("config-form"));
const layerSteps = new LayerSteps(() => form.apiKey());
const headsPanel = $("panel-heads");
const connections = new ConnectionsPanel($("panel-connections"), { onHead: chooseHead });
const steps = new StepsPanel($("panel-steps"), layerSteps, { onHead: chooseHead });
const model = new ModelPanel($("panel-model"), { onOpen: openHead });
const tabs = new Tabs(document.querySelector("[role=tablist]"), {
  onSelect: (tab) => {
    if (tab.id === "tab-steps") steps.revealed();
  },
});
const computation = new Computation({
  form,
  state,
  parts: { main: $("main"), results: $("results"), staleNote: $("stale-note"), summary: $("summary") },
  onResult: () => {
    layerSteps.reset(state.body);
    render();
  },
});

/** Heads, Connections and Steps: what follows the layer selector and the word toggle. */
function renderLayerViews() {
  const result = currentResult(state);
  const view = currentView(state);
  renderHeadsPanel(headsPanel, view);
  connections.show(view, state.head);
  const config = state.data.config ?? {};
  const layered = view.pretrained ? { position: view.position, layer: view.layer, total: layerCount(state) } : {};
  steps.show({ pretrained: view.pretrained, result, config, heads: stepHeadCount(result, view), ...layered }, state.head);
}

/** A head was chosen in one view (Connections, Steps, the model grid): every view follows. */
function chooseHead(head) {
  state.head = head;
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
  // a pretrained result opens on its model view; the random model has none
  if (pretrained && !state.shownPretrained) tabs.select(tabs.byId("tab-model"));
  if (!pretrained && tabs.isSelected(tabs.byId("tab-model"))) tabs.select(tabs.byId("tab-heads"));
  state.shownPretrained = pretrained;
  $("download-json").disabled = false;
}

function wireResultControls() {
  $("download-json").addEventListener("click", () => {
    if (state.raw) saveBlob(new Blob([state.raw], { type: "application/json" }), exportName("response", "json"));
  });
  $("show-values").addEventListener("change", (event) => {
    $("results").classList.toggle("show-values", event.target.checked);
  });
  $("layer").addEventListener("change", (event) => {
    state.layer = Number(event.target.value);
    if (!showingPretrained(state)) return;
    renderLayerViews();
    renderModelSelection();
  });
  $("word-level").addEventListener("change", (event) => {
    state.words = event.target.checked;
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
computation.loadModels();
computation.compute({ userInitiated: false });
