// Where the Compare panel's B side comes from: the result on the page (two heads of it), the same
// model on another sentence, or another model (the random model with another seed, or any model
// of GET /models) on the same sentence, each of the latter two one POST /attention of its own.

import { postAttention } from "./api.js";
import { isDecoder, maskDecoderAnswer } from "./decoder-view.js";
import { requestBody } from "./form.js";
import { isPretrained, viewOf } from "./view-model.js";

export const MODES = { heads: "heads", sentence: "sentence", model: "model" };

/** Every layer of `result` as the panels view it, with its position and layer number. */
export function layerViews(result) {
  const positions = isPretrained(result) ? result.layers.map((_, k) => k) : [0];
  return positions.map((k) => {
    const view = viewOf(result, { position: k });
    return { ...view, position: k, layer: view.pretrained ? view.layer : null };
  });
}

/**
 * The body of B's request. base: the page's request; form: the ConfigForm (models, the random
 * model's configuration); choice: {mode, text, model, seed}. Returns {body, error}.
 */
export function bodyOfB(base, form, { mode, text, model, seed }) {
  if (mode === MODES.sentence) {
    if (!text) return { error: "Type sentence B first." };
    return { body: { ...base, text } };
  }
  const entry = form.modelEntry(model);
  if (!entry) return { error: "Choose model B." };
  if (entry.kind !== "seeded") return { body: requestBody(entry, base.text, null) };
  if (!Number.isInteger(seed) || seed < 0) return { error: "Seed B: enter a whole number from 0." };
  const { config, errors } = base.config ? { config: base.config, errors: [] } : form.readConfig();
  if (errors.length) return { error: `The head configuration: ${errors[0].field}: ${errors[0].message}` };
  return { body: requestBody(entry, base.text, { ...config, seed }) };
}

/** POST B's body: {ok: true, views, label} or a failure {ok: false, message}; rejects when aborted. */
export async function computeB(body, form, signal) {
  const outcome = await postAttention(body, form.apiKey(), signal);
  if (!outcome.ok) return outcome;
  const entry = form.modelEntry(body.model);
  if (isDecoder(entry)) maskDecoderAnswer(outcome.data, entry);
  const model = body.model ?? "random";
  const label = body.config ? `${model}, seed ${body.config.seed}` : model;
  return { ok: true, views: layerViews(outcome.data.results[0]), label, text: body.text };
}
