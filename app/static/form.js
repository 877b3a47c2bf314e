// The form: reads the controls into a POST /attention body, shows errors beside their fields,
// fills the model selector from GET /models and keeps the API key for the tab.

import { FORM_FIELDS } from "./api.js";
import { TextLength } from "./text-length.js";

const KEY_STORAGE = "attention-explorer.api-key";
const RANDOM = "random";
/** The number fields of the random model's configuration: name -> required. */
const INTEGER_FIELDS = { d_model: true, num_heads: true, seed: true, num_kv_heads: false, window: false };
const RANDOM_HINT = "Weights drawn from the seed, shaped by the head configuration above.";
const PRETRAINED_HINT =
  "A trained BERT sentence encoder running on this service’s own attention module: real attention, layer by layer.";

const DECODER_HINT =
  "A decoder language model from a folder of the service: causal attention, layer by layer, and text generated token by token (the Generate tab).";

/** "1 layer", "2 layers". */
export const counted = (n, noun) => `${n ?? "?"} ${noun}${n === 1 ? "" : "s"}`;

/** What the selector says of a model of GET /models: its family, or why it cannot be used. */
export function modelLabel(model) {
  if (model.status === "unavailable") return `${model.name} (unavailable: ${model.reason ?? "no reason given"})`;
  if (model.kind === "decoder") return `${model.name} (${model.architecture ?? "decoder"} decoder, ${counted(model.layers, "layer")})`;
  return `${model.name} (${model.kind === "pretrained" ? "pretrained" : "seeded, one layer"})`;
}

/** Every model but the seeded one (the encoder, decoders, any later kind) runs its own folder
 * and takes the pretrained request: `model`, `text`, every layer. */
const runsAFolder = (model) => model.kind !== "seeded";

/** The note on a pretrained model's or a decoder's fixed configuration. */
function fixedConfiguration(model) {
  const known = (value) => value ?? "?";
  const kv = model.kv_heads && model.kv_heads !== model.heads ? ` on ${model.kv_heads} K/V heads` : "";
  const sizes = `${counted(model.layers, "layer")} × ${counted(model.heads, "head")}${kv}, d_model ${known(model.d_model)} (${known(model.head_dim)} per head)`;
  const rest =
    model.kind === "decoder"
      ? `${known(model.architecture)}, causal, at most ${known(model.max_positions)} positions`
      : `learned positions, at most ${known(model.max_tokens)} tokens`;
  return `${model.name} has a fixed configuration: ${sizes}, ${rest}. The head configuration fields apply to the random model only, so they are hidden.`;
}

/** The sentence field's hint for a model with its own tokenizer (null: the random model's). */
function textHint(model) {
  if (model.kind === "decoder") return "Split into tokens by the model’s own tokenizer. Press Enter to compute; the Generate tab continues the text.";
  if (!runsAFolder(model)) return null;
  return `Split into WordPieces by the model’s tokenizer, with [CLS] first and [SEP] last (at most ${model.max_tokens ?? "?"}). Press Enter to compute.`;
}

/**
 * The POST /attention body the page sends for `model` (an entry of GET /models) on `text`;
 * `config`: the random model's head configuration (unused for the others).
 */
export function requestBody(model, text, config) {
  if (runsAFolder(model)) {
    // the encoder's analysis (words, rollout, [CLS]/[SEP] shares) is refused for decoders
    const output = { attention: "per_head", precision: 4, metrics: true };
    if (model.kind !== "decoder") output.analysis = true;
    return { model: model.name, text, layers: "all", output };
  }
  const output = { attention: "per_head", steps: "all", precision: 4, metrics: true };
  return { text, config, output };
}

export class ConfigForm {
  /** `form`: the form element; every control is looked up inside it. */
  constructor(form) {
    this.form = form;
    this.models = null; // name -> entry of GET /models, once it answered
    this.unavailable = null; // why GET /models has no pretrained model
    this.textHint = this.part("text-hint").textContent;
    this.length = new TextLength(form, () => this.chosenModel());
  }

  part(id) {
    return this.form.querySelector(`#${id}`);
  }

  apiKey() {
    return this.part("api_key").value.trim();
  }

  chosenModel() {
    const name = this.part("model").value || RANDOM;
    return this.models?.get(name) ?? { name, kind: name === RANDOM ? "seeded" : "pretrained" };
  }

  /** The GET /models entry of the model named `name`, or undefined. */
  modelEntry(name) {
    return this.models?.get(name ?? RANDOM);
  }

  /** The request body and the errors the page can tell without asking the service. */
  read() {
    const errors = [];
    const text = this.part("text").value.trim();
    if (!text) errors.push({ field: "text", message: "Type a sentence first." });
    const model = this.chosenModel();
    if (runsAFolder(model)) {
      const body = requestBody(model, text, null);
      return { body: this.length.wantsCut() ? { ...body, truncate: true } : body, errors };
    }
    const { config, errors: configErrors } = this.readConfig();
    return { body: requestBody(model, text, config), errors: [...errors, ...configErrors] };
  }

  /** The random model's head configuration from the form, and what is wrong with it. */
  readConfig() {
    const errors = [];
    const config = {};
    for (const [field, required] of Object.entries(INTEGER_FIELDS)) {
      const input = this.part(field);
      const raw = input.value.trim();
      if (raw === "") {
        if (input.validity.badInput) errors.push({ field, message: "Enter a whole number." });
        else if (required) errors.push({ field, message: "Required: enter a whole number." });
        config[field] = null;
      } else {
        config[field] = Number(raw);
        // the service's working limit, from GET /info (limits.js)
        if (input.max && config[field] > Number(input.max)) errors.push({ field, message: `At most ${Number(input.max).toLocaleString("en-US")} on this service.` });
      }
    }
    config.positional_encoding = this.part("positional_encoding").value;
    config.causal = this.part("causal").checked;
    return { config, errors };
  }

  clearErrors() {
    for (const field of [...FORM_FIELDS, "api_key"]) {
      const slot = this.part(`${field}-error`);
      if (slot) {
        slot.hidden = true;
        slot.textContent = "";
      }
      this.part(field)?.removeAttribute("aria-invalid");
    }
    const banner = this.part("form-error");
    banner.hidden = true;
    banner.textContent = "";
  }

  /** Each message under its field (marked invalid), `message` in the summary under the form. */
  showErrors(fieldErrors, message, { focus }) {
    let first = null;
    for (const { field, message: text } of fieldErrors) {
      const slot = this.part(`${field}-error`);
      const input = this.part(field);
      if (!slot || !input) continue;
      slot.textContent = slot.hidden ? text : `${slot.textContent} ${text}`;
      slot.hidden = false;
      input.setAttribute("aria-invalid", "true");
      const collapsed = input.closest("details:not([open])");
      if (collapsed) collapsed.open = true; // a field with an error is never out of sight
      first ??= input;
    }
    if (message) {
      const banner = this.part("form-error");
      banner.textContent = message;
      banner.hidden = false;
    }
    if (focus && first) first.focus();
  }

  /** One line on the chosen model and configuration, for the collapsed form's summary. */
  describe() {
    const model = this.chosenModel();
    if (runsAFolder(model)) return `· ${model.name}`;
    const value = (id) => this.part(id).value.trim();
    const parts = [model.name, `d_model ${value("d_model")}`, `${value("num_heads")} heads`, value("positional_encoding"), `seed ${value("seed")}`];
    if (this.part("causal").checked) parts.push("causal");
    return `· ${parts.join(" · ")}`;
  }

  get hasModels() {
    return this.models !== null;
  }

  /** Fill the model selector from GET /models' answer, keeping the choice when it still exists. */
  showModels({ models, unavailable }) {
    this.models = new Map(models.map((m) => [m.name, m]));
    this.unavailable = unavailable ?? null;
    const select = this.part("model");
    const previous = select.value;
    const options = models.map((m) => {
      const option = new Option(modelLabel(m), m.name);
      option.dataset.kind = m.kind;
      if (m.architecture) option.dataset.architecture = m.architecture;
      if (m.status === "unavailable") {
        option.disabled = true;
        option.dataset.unavailable = "true";
        option.title = m.reason ?? "";
      }
      return option;
    });
    if (this.unavailable && !models.some((m) => m.kind === "pretrained")) {
      const option = new Option("pretrained model — unavailable", "");
      option.disabled = true;
      option.dataset.kind = "pretrained";
      option.dataset.unavailable = "true";
      options.push(option);
    }
    select.replaceChildren(...options);
    select.value = options.some((o) => o.value === previous && !o.disabled) ? previous : RANDOM;
    select.dataset.loaded = "true";
    this.applyModelChoice();
  }

  /** Show the head configuration for the random model, a note on the fixed one otherwise. */
  applyModelChoice() {
    const model = this.chosenModel();
    const pretrained = runsAFolder(model);
    const fieldset = this.part("heads-config");
    fieldset.hidden = pretrained;
    fieldset.disabled = pretrained;
    const note = this.part("model-note");
    note.hidden = !pretrained;
    note.textContent = pretrained ? fixedConfiguration(model) : "";
    let hint = model.kind === "decoder" ? DECODER_HINT : pretrained ? PRETRAINED_HINT : RANDOM_HINT;
    if (model.status === "unavailable") hint = `${model.name} is unavailable: ${model.reason ?? "no reason given"}`;
    this.part("model-hint").textContent = hint;
    this.showUnavailable();
    this.part("text-hint").textContent = textHint(model) ?? this.textHint;
    this.length.update();
  }

  /** The models that cannot be served and why, folded under "N models unavailable". */
  showUnavailable() {
    const broken = [...(this.models?.values() ?? [])].filter((m) => m.status === "unavailable");
    const reasons = broken.map((m) => [m.name, m.reason ?? "no reason given"]);
    if (this.unavailable) reasons.unshift(["the pretrained model", this.unavailable]);
    const fold = this.part("models-unavailable");
    fold.hidden = reasons.length === 0;
    fold.querySelector("summary").textContent = `${counted(reasons.length, "model")} unavailable`;
    const items = reasons.map(([name, reason]) => {
      const item = document.createElement("li");
      item.append(Object.assign(document.createElement("strong"), { textContent: name }), `: ${reason}`);
      return item;
    });
    fold.querySelector("ul").replaceChildren(...items);
  }

  /** Call `compute` on submit and on Enter in any field; keep the API key for this tab. */
  wire(compute) {
    const key = this.part("api_key");
    key.value = sessionStorage.getItem(KEY_STORAGE) ?? "";
    key.addEventListener("input", () => {
      const value = key.value.trim();
      if (value) sessionStorage.setItem(KEY_STORAGE, value);
      else sessionStorage.removeItem(KEY_STORAGE);
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      compute();
    });
    this.form.addEventListener("keydown", (event) => {
      // Enter on a checkbox or a select submits too (text and number fields do so natively)
      const { type, tagName } = event.target;
      if (event.key === "Enter" && (type === "checkbox" || tagName === "SELECT")) {
        event.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.part("model").addEventListener("change", () => this.applyModelChoice());
  }
}
