// A streamed answer (Accept: application/x-ndjson): one JSON frame a line, read as the body
// arrives and put back together into the answer POST /attention gives whole, so that every view
// draws it as it draws a whole answer (docs/architecture.md, streaming; the Python client's
// attention_client/frames.py assembles the same way).

export const NDJSON = "application/x-ndjson";

/**
 * Fields a layer frame carries that are not per layer: the same list in every frame, kept once
 * instead of stacked (app/pipelines/shaping.py writes them so: `queries`, the pool's bounds).
 */
const SAME_IN_EVERY_LAYER = new Set(["queries", "query_bounds", "key_bounds"]);

/** An error frame: the status and detail the whole answer would have had. */
export class StreamError extends Error {
  constructor(status, detail) {
    super(`the stream ended with ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

/**
 * The lines of a fetch body as they arrive. The pieces of a line are joined once it is whole:
 * a frame can weigh megabytes, and joining on every chunk would copy it again and again.
 */
async function* lines(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pieces = [];
  for (;;) {
    const { value, done } = await reader.read();
    const text = done ? decoder.decode() : decoder.decode(value, { stream: true });
    let start = 0;
    for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", start)) {
      pieces.push(text.slice(start, at));
      yield pieces.join("");
      pieces = [];
      start = at + 1;
    }
    if (start < text.length) pieces.push(text.slice(start));
    if (done) break;
  }
  const last = pieces.join("");
  if (last.trim()) yield last;
}

/** Arrays stacked on a new leading (layer) axis; objects field by field; nulls stay null. */
function stack(parts, name = "") {
  const first = parts[0];
  if (SAME_IN_EVERY_LAYER.has(name) || first === null || typeof first !== "object") return first;
  if (Array.isArray(first)) return parts;
  return Object.fromEntries(Object.keys(first).map((key) => [key, stack(parts.map((part) => part[key]), key)]));
}

/** The frames of one stream, collected: a head, its layers as they come, an end. */
export class StreamedAnswer {
  constructor() {
    this.head = null;
    this.layers = new Map(); // model layer -> each sequence's fields of that layer
    this.end = null;
  }

  /** How many of the head's layers have come. */
  get arrived() {
    return this.layers.size;
  }

  /** Take one frame; an error frame is thrown as a StreamError. Returns the frame's kind. */
  add(frame) {
    if (frame.frame === "head") this.head = frame;
    else if (frame.frame === "layer" && this.head) this.layers.set(frame.layer, frame.results);
    else if (frame.frame === "end" && this.head) this.end = frame;
    else if (frame.frame === "error") throw new StreamError(frame.error?.status ?? 500, frame.error?.detail);
    else throw new Error(`not a frame of this stream: ${String(frame.frame)}`);
    return frame.frame;
  }

  /**
   * Sequence `row` of the layers in `order` (model layers, each come already), as the whole
   * answer holds them: the layer fields stacked on the layer axis (when the head says there is
   * one), beside the head's fields.
   */
  result(row, order) {
    const perLayer = order.map((layer) => this.layers.get(layer)[row]);
    const fields = this.head.layer_axis ? stack(perLayer) : perLayer[0];
    return { ...this.head.results[row], ...fields };
  }

  /** One layer that has come, as a whole answer of that layer alone: what the page draws of it. */
  layerAnswer(layer) {
    const layers = this.head.layer_axis ? { layers: [layer] } : {};
    return { results: this.head.results.map((_, row) => ({ ...this.result(row, [layer]), ...layers })), config: this.head.config };
  }

  /** The whole answer, once the end has come: the one POST /attention gives without a stream. */
  answer() {
    const whole = this.head.layers.every((layer) => this.layers.has(layer));
    if (!this.end || !whole) throw new Error("the stream ended before its last frame");
    const results = this.end.results.map((ended, row) => ({ ...this.result(row, this.head.layers), ...ended }));
    const answer = { results, config: this.head.config, meta: this.end.meta };
    return this.end.parameters === undefined ? answer : { ...answer, parameters: this.end.parameters };
  }
}

/**
 * Read an NDJSON response to its end. hooks.onHead(answer) when the head has come,
 * hooks.onLayer(answer, layer) as each layer comes. Resolves to the whole answer; rejects with
 * a StreamError for an error frame, with an AbortError when aborted, and with any other error
 * when the stream breaks off or is not the service's.
 */
export async function readStream(response, hooks) {
  const answer = new StreamedAnswer();
  for await (const line of lines(response.body)) {
    if (!line.trim()) continue;
    const frame = JSON.parse(line);
    const kind = answer.add(frame);
    if (kind === "head") hooks.onHead?.(answer);
    if (kind === "layer") hooks.onLayer?.(answer, frame.layer);
  }
  return answer.answer();
}
