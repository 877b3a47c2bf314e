// The Generate tab of a decoder's result: its controls (max new tokens, temperature, top-k, top-p,
// seed), POST /attention with `generate` for the prompt on the page, the generated text token by
// token, and the chosen token's attention over its context.

import { postAttention } from "./api.js";
import { isDecoder } from "./decoder-view.js";
import { el, part } from "./dom.js";
import { renderTokenAttention, renderTokenRow } from "./generation.js";
import { setStatus } from "./status.js";

/** The controls: request field -> {required, parse}. Bounds are the service's (its 422 says). */
const CONTROLS = {
  max_new_tokens: { required: true, parse: Number },
  temperature: { required: true, parse: Number },
  seed: { required: true, parse: Number },
  top_k: { required: false, parse: Number },
  top_p: { required: false, parse: Number },
};
/** Past this many layer × head rows, or cells in all (rows × the last token's context), one layer
 * at a time is shown (the choice stays open): every cell is a table cell of the page. */
const ALL_LAYERS_MAX_ROWS = 64;
const ALL_LAYERS_MAX_CELLS = 12_000;

export class GeneratePanel {
  /**
   * `container`: the panel with the form, error, tokens, layer, detail parts; apiKey(): the key;
   * onHidden(tab): its tab was hidden (a result that is not a decoder's), to leave it if selected.
   */
  constructor(container, { apiKey, onHidden }) {
    this.container = container;
    this.tab = document.getElementById(container.getAttribute("aria-labelledby"));
    this.apiKey = apiKey;
    this.onHidden = onHidden;
    this.prompt = null; // {model, text} of the result on the page
    this.answer = null; // {promptTokens, generation, layers} of the last generation
    this.chosen = null;
    this.controller = null;
    this.part("form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    this.part("layer").addEventListener("change", () => this.drawChosen());
    this.setState("idle");
  }

  part(name) {
    return part(this.container, name);
  }

  setState(name) {
    this.container.dataset.state = name;
  }

  /** The result on the page: `body`, its request, of `model` (its GET /models entry). */
  show(requestBody, model) {
    const body = isDecoder(model) ? requestBody : null; // a decoder's only
    this.tab.hidden = !body;
    if (!body) this.onHidden(this.tab);
    const prompt = body ? { model: body.model, text: body.text } : null;
    const same = prompt && this.prompt && prompt.model === this.prompt.model && prompt.text === this.prompt.text;
    this.prompt = prompt;
    if (same) return;
    this.controller?.abort();
    this.answer = null;
    this.chosen = null;
    this.part("tokens").replaceChildren(el("p", { class: "note", text: "Press Generate to continue the sentence." }));
    this.part("detail").replaceChildren();
    this.part("layer-field").hidden = true;
    this.setState("idle");
  }

  /** The `generate` object of the controls, or the errors that keep it from being sent. */
  read() {
    const generate = {};
    const errors = [];
    for (const [field, { required, parse }] of Object.entries(CONTROLS)) {
      const input = this.part(field);
      const raw = input.value.trim();
      input.removeAttribute("aria-invalid");
      if (raw === "") {
        if (required) errors.push([input, `${input.labels[0].textContent}: required.`]);
        generate[field] = null;
      } else generate[field] = parse(raw);
      // a bound of GET /info's limits (limits.js): said before sending
      if (input.max && generate[field] > Number(input.max)) errors.push([input, `${input.labels[0].textContent}: at most ${input.max} on this service.`]);
    }
    return { generate, errors };
  }

  showError(message, inputs = []) {
    const slot = this.part("error");
    slot.textContent = message;
    slot.hidden = !message;
    for (const input of inputs) input.setAttribute("aria-invalid", "true");
  }

  async run() {
    if (!this.prompt) return;
    const { generate, errors } = this.read();
    if (errors.length) {
      this.showError(errors.map(([, message]) => message).join(" "), errors.map(([input]) => input));
      this.setState("error");
      return;
    }
    this.showError("");
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.setState("loading");
    setStatus("Generating…");
    const body = { ...this.prompt, layers: "all", output: { attention: "per_head", precision: 4 }, generate };
    let outcome;
    try {
      outcome = await postAttention(body, this.apiKey(), controller.signal);
    } catch {
      return; // aborted: a newer generation or a new result
    }
    if (this.controller !== controller) return;
    this.controller = null;
    if (outcome.ok) this.succeeded(outcome.data);
    else this.failed(outcome);
  }

  failed(outcome) {
    const fields = Object.keys(CONTROLS).filter((field) => outcome.message.includes(`generate.${field}`));
    this.showError(outcome.message, fields.map((field) => this.part(field)));
    setStatus(outcome.status ? `Error ${outcome.status}.` : "Network error.");
    this.setState("error");
  }

  succeeded(data) {
    const result = data.results[0];
    const generation = result.generation;
    const layers = data.config?.layers ?? result.layers ?? [];
    this.answer = { promptTokens: result.tokens, generation, layers };
    const longest = result.tokens.length + Math.max(0, generation.tokens.length - 1);
    this.fillLayers(layers, result.attention?.[0]?.length ?? 0, longest);
    this.choose(generation.tokens.length ? 0 : null);
    setStatus(`Generated ${generation.tokens.length} tokens (stopped: ${generation.stop_reason}).`);
    this.setState("ready");
  }

  /** The layer choice: every layer when the cells are few, the last layer otherwise. */
  fillLayers(layers, heads, context) {
    const select = this.part("layer");
    select.replaceChildren(new Option("All layers", "all"), ...layers.map((layer) => new Option(`Layer ${layer}`, String(layer))));
    const rows = layers.length * heads;
    const few = rows <= ALL_LAYERS_MAX_ROWS && rows * context <= ALL_LAYERS_MAX_CELLS;
    select.value = few ? "all" : String(layers[layers.length - 1]);
    this.part("layer-field").hidden = false;
  }

  /** Generated token t (null: none) becomes the chosen one. */
  choose(t) {
    this.chosen = t;
    this.drawTokens();
    this.drawChosen();
  }

  drawTokens() {
    const { promptTokens, generation } = this.answer;
    const text = generation.text ? el("p", { class: "gen-text" }, "Generated text: ", el("q", { text: generation.text })) : null;
    const row = el("div", { class: "gen-row", role: "group", "aria-label": "The prompt and the generated tokens" });
    renderTokenRow(row, { promptTokens, generation, chosen: this.chosen, onChoose: (t) => this.choose(t) });
    const stop = el("p", { class: "hint", text: `${generation.tokens.length} tokens; stopped: ${generation.stop_reason}.` });
    this.part("tokens").replaceChildren(...[text, row, stop].filter(Boolean));
  }

  drawChosen() {
    if (!this.answer || this.chosen === null) {
      this.part("detail").replaceChildren();
      return;
    }
    const value = this.part("layer").value;
    renderTokenAttention(this.part("detail"), {
      ...this.answer,
      t: this.chosen,
      shownLayer: value === "all" ? null : Number(value),
    });
  }
}
