// The Steps panel: the pipeline of the random model's response, or the attention block of the
// chosen layer of a pretrained model, whose steps are asked for when the panel is shown.
// `#steps`' data-state says where it stands: idle (waits to be shown), offered (a long input on the
// random model: its steps wait for a click, cut-steps.js), loading, ready, error.

import { CutSteps, cutNote, lacksSteps, offer } from "./cut-steps.js";
import { fillHeadSelect, note, part } from "./dom.js";
import { STEPS_TOKENS } from "./long-inputs.js";
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
    this.cut = new CutSteps(() => loader.apiKey());
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
    if (!view.pretrained) this.cut.follow(view.request);
    // an overview carries no per-head weights to count: the configuration says how many heads
    fillHeadSelect(this.select, view.heads || view.config.num_heads || 0, { average: false });
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
    if (!view.pretrained && lacksSteps(view.result)) return this.drawCut(head);
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

  /** A long input on the random model: the offer of its cut steps, or the cut steps. */
  drawCut(head) {
    const { result, config } = this.view;
    const cut = this.cut.steps;
    if (!cut) {
      this.layerNote.hidden = true;
      this.drawStrip(null, head, `A long input is computed without its steps: the Steps tab offers to compute them for its first ${Math.min(result.tokens.length, STEPS_TOKENS)} tokens.`);
      if (this.cut.loading) return;
      this.setState("offered");
      this.steps.replaceChildren(offer(result.tokens.length, () => this.fetchCut()));
      return;
    }
    this.layerNote.hidden = false;
    this.layerNote.textContent = cutNote(cut);
    this.setState("ready");
    renderSteps(this.steps, { result: { tokens: cut.tokens, steps: cut.steps }, config, head, shareScores: this.shareScores.checked });
    this.drawStrip(cut.steps, head, undefined, cut.tokens);
  }

  async fetchCut() {
    this.setState("loading");
    this.steps.replaceChildren(note("Computing the steps of the first tokens…"));
    const outcome = await this.cut.load(this.view.result.tokens);
    if (!outcome) return; // superseded by a newer result
    if (outcome.ok) return this.draw();
    this.setState("error");
    this.steps.replaceChildren(note(`The steps could not be computed: ${outcome.message}`), offer(this.view.result.tokens.length, () => this.fetchCut()));
  }

  /**
   * The strip and the followed query of `steps` (null until a pretrained layer's arrive, or a
   * long input's cut steps); `missing`: what the strip says while there are none; `tokens`: the
   * cut steps' tokens.
   */
  drawStrip(steps, head, missing, tokens) {
    const { result, config } = this.view;
    const heads = config.num_heads ?? this.view.heads;
    const kvCount = steps?.k?.length ?? config.num_kv_heads ?? heads;
    const kvHead = Math.floor((head * kvCount) / heads);
    const { request, layer } = this.view;
    const keyTokens = tokens ? undefined : result.key_tokens;
    this.strip.draw({ tokens: tokens ?? result.tokens, keyTokens, steps, head, kvHead, config, request, layer, missing });
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
