// The Steps panel: the pipeline of the random model's response, or the attention block of the
// chosen layer of a pretrained model, whose steps are asked for when the panel is shown.
// `#steps`' data-state says where it stands: idle (waits to be shown), loading, ready, error.

import { fillHeadSelect, note, part } from "./dom.js";
import { PipelineStrip } from "./pipeline-strip.js";
import { renderSteps } from "./steps.js";

export class StepsPanel {
  /**
   * `container`: the panel, holding the head, layer-note and steps parts. `loader`: the steps of a
   * pretrained model's layers (cached(position), isLoading(position), load(position, layer)).
   * `strip`: the pipeline strip's element (at the top of the results); onStep(): one of its boxes
   * was chosen, before the panel scrolls to that step (the caller shows the panel).
   */
  constructor(container, loader, { onHead = () => {}, strip, onStep = () => {} } = {}) {
    this.container = container;
    this.select = part(container, "head");
    this.shareScores = part(container, "share-scores");
    this.strip = new PipelineStrip(strip ?? part(container, "pipeline"), {
      apiKey: () => loader.apiKey(),
      onOpen: (name) => {
        onStep();
        this.steps.querySelector(`[data-step="${name}"]`)?.scrollIntoView({ block: "start" });
      },
    });
    this.layerNote = part(container, "layer-note");
    this.steps = part(container, "steps");
    this.loader = loader;
    this.view = null;
    this.select.addEventListener("change", () => {
      this.draw();
      onHead(Number(this.select.value));
    });
    this.shareScores.addEventListener("change", () => this.draw());
  }

  /** Another view chose `head`: follow it. */
  followHead(head) {
    if (this.select.value === String(head) || !this.select.querySelector(`option[value="${head}"]`)) return;
    this.select.value = String(head);
    this.draw();
  }

  /**
   * view: {pretrained, result, config, request (the page's), heads (query heads to offer), and for a pretrained model
   * position (in result.layers), layer (0-based in the model), total (the model's layers)}.
   */
  show(view, head = 0) {
    this.view = view;
    fillHeadSelect(this.select, view.heads, { average: false });
    if (this.select.querySelector(`option[value="${head}"]`)) this.select.value = String(head);
    this.draw();
  }

  /** The panel came into view: fetch the steps that waited for it, or failed. */
  revealed() {
    this.strip.unfold();
    if (["idle", "error"].includes(this.steps.dataset.state)) this.draw();
  }

  setState(name, layer) {
    this.steps.dataset.state = name;
    if (layer === undefined) delete this.steps.dataset.layer;
    else this.steps.dataset.layer = String(layer);
  }

  draw() {
    const view = this.view;
    if (!view) return;
    const head = Number(this.select.value || 0);
    if (!view.pretrained) {
      this.layerNote.hidden = true;
      this.setState("ready");
      renderSteps(this.steps, { result: view.result, config: view.config, head, shareScores: this.shareScores.checked });
      this.drawStrip(view.result.steps, head);
      return;
    }
    const { position, layer } = view;
    this.layerNote.hidden = false;
    this.layerNote.textContent = `Layer ${layer} (of 0–${view.total - 1}): its attention block, from the layer’s input to the output projection. Always in ${view.result.analysis ? "WordPieces" : "the model’s tokens"}. Pick another layer above.`;
    const steps = this.loader.cached(position);
    this.drawStrip(steps, head);
    if (!steps) {
      if (this.container.hidden) this.setState("idle", layer); // fetched when the panel is shown
      else this.fetch(view);
      return;
    }
    this.setState("ready", layer);
    const { tokens, key_tokens } = view.result;
    renderSteps(this.steps, {
      result: { tokens, key_tokens, steps },
      config: view.config,
      head,
      layer,
      shareScores: this.shareScores.checked,
    });
  }

  /** The strip and the followed query of `steps` (null until a pretrained layer's arrive). */
  drawStrip(steps, head) {
    const { result, config } = this.view;
    const heads = config.num_heads ?? this.view.heads;
    const kvCount = steps?.k?.length ?? config.num_kv_heads ?? heads;
    const kvHead = Math.floor((head * kvCount) / heads);
    const { request, layer } = this.view;
    this.strip.draw({ tokens: result.tokens, keyTokens: result.key_tokens, steps, head, kvHead, config, request, layer });
  }

  async fetch({ position, layer }) {
    if (this.loader.isLoading(position)) return;
    this.setState("loading", layer);
    this.steps.replaceChildren(note(`Computing the steps of layer ${layer}…`));
    const outcome = await this.loader.load(position, layer);
    if (!outcome) return; // superseded: a newer layer or a newer result
    if (outcome.ok) {
      if (this.view?.position === position) this.draw();
      return;
    }
    this.setState("error", layer);
    this.steps.replaceChildren(note(`The steps of layer ${layer} could not be computed: ${outcome.message}`));
  }
}
