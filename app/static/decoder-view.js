// A decoder's answer as the page draws it. The service sends a masked cell's weight as 0 (it is
// exactly 0 after the softmax); the page turns every cell the mask hides — a key after its query,
// or one before a sliding window — into null, so that every heatmap draws it masked (hatched),
// not as a weight of zero that the model could have given.

/** Whether `model` (an entry of GET /models) is a decoder. */
export const isDecoder = (model) => model?.kind === "decoder";

/** Whether query i may see key j: causal, and within `window` positions when the layer has one. */
export function visible(i, j, window) {
  if (j > i) return false;
  return !window || i - j < window;
}

/** One layer's H × n × n weights with the hidden cells null. */
export function maskLayer(heads, window) {
  return heads.map((matrix) => matrix.map((row, i) => row.map((w, j) => (visible(i, j, window) ? w : null))));
}

/** The answer `data` of the model `model` (its GET /models entry), masked when it is a decoder's. */
export const maskIfDecoder = (data, model) => (isDecoder(model) ? maskDecoderAnswer(data, model) : data);

/**
 * Null the masked cells of every layer of every result of `data` (a decoder's answer), in place.
 * `model`: its GET /models entry, whose sliding_windows are per model layer.
 */
export function maskDecoderAnswer(data, model) {
  const windows = model?.sliding_windows ?? [];
  for (const result of data?.results ?? []) {
    if (!Array.isArray(result.attention) || !Array.isArray(result.layers)) continue;
    result.attention = result.attention.map((heads, k) => maskLayer(heads, windows[result.layers[k]] ?? null));
  }
  return data;
}
