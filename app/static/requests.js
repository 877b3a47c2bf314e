// Request orchestration: one computation at a time (a newer one aborts the older; an encoder's
// answer streamed layer by layer), the page's data-state / data-generation that tests and
// assistive technology follow, the status line, errors handed to the form, the models list, and
// the steps of a pretrained model's layers.

import { getModels, postAttention } from "./api.js";
import { overviewBody, wantsOverview } from "./long-inputs.js";
import { setStatus } from "./status.js";
import { TruncationOffer } from "./truncation.js";
import { doneMessage } from "./view-model.js";

export class Computation {
  /**
   * form: the ConfigForm; state: the page state (data, raw, body are set on success);
   * parts: {main, results, staleNote, summary, truncation} elements; onResult(): draws state.data.
   * arriving: {start(answer), layer(answer, layer), finish(), abandon()}, the drawing of a
   * streamed answer before it is whole (arriving.js), or null: nothing is streamed.
   */
  constructor({ form, state, parts, onResult, arriving = null }) {
    this.form = form;
    this.state = state;
    this.parts = parts;
    this.onResult = onResult;
    this.arriving = arriving;
    this.controller = null;
    this.drawing = false; // whether layers of a stream are on the page
    this.generation = 0;
    this.truncation = parts.truncation
      ? new TruncationOffer(parts.truncation, () => this.compute({ userInitiated: true, truncate: true }))
      : null;
  }

  setPageState(name) {
    this.parts.main.dataset.state = name;
    this.parts.results.setAttribute("aria-busy", String(name === "loading"));
  }

  /** A request settled (or never left): count it, so that waiters see the new state. */
  finish(name) {
    this.setPageState(name);
    this.generation += 1;
    this.parts.main.dataset.generation = String(this.generation);
  }

  /**
   * Read the form, POST /attention, draw the answer or show why there is none. A long input is
   * asked for as an overview (long-inputs.js); `truncate`: cut a text the model cannot take.
   */
  async compute({ userInitiated, truncate = false }) {
    const read = this.form.read();
    const errors = read.errors;
    const shaped = wantsOverview(read.body) ? overviewBody(read.body, this.attentionMaps(read.body)) : read.body;
    const body = truncate ? { ...shaped, truncate: true } : shaped;
    this.form.clearErrors();
    if (errors.length) {
      this.form.showErrors(errors, "Fix the highlighted field and submit again.", { focus: userInitiated });
      setStatus("Not sent: the form has an error.");
      this.finish("error");
      return;
    }
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.setPageState("loading");
    setStatus("Computing…");
    const stream = this.streams() ? this.streamHooks(controller) : null;
    let outcome;
    try {
      outcome = await postAttention(body, this.form.apiKey(), controller.signal, stream);
    } catch {
      return; // aborted by a newer request
    }
    if (this.controller !== controller) return;
    this.controller = null;
    if (outcome.ok) this.succeeded(outcome, body);
    else this.failed(outcome, userInitiated);
  }

  /**
   * Whether the answer is asked for layer by layer: an encoder's (several layers, and it
   * streams). The random model has one layer to wait for; a decoder does not stream (406).
   */
  /** The attention maps of the answer to `body`: the chosen model's layers × heads (GET /models), or the random model's heads. */
  attentionMaps(body) {
    const model = this.form.chosenModel();
    if (body.config) return body.config.num_heads ?? 4;
    return (model?.layers ?? 1) * (model?.heads ?? 1);
  }

  streams() {
    return this.arriving !== null && this.form.chosenModel().kind === "pretrained";
  }

  /** What happens as a stream comes, while `controller`'s request is the current one. */
  streamHooks(controller) {
    const current = () => this.controller === controller;
    return {
      onHead: (answer) => {
        if (!current()) return;
        this.drawing = true;
        this.arriving.start(answer);
      },
      onLayer: (answer, layer) => {
        if (!current()) return;
        this.arriving.layer(answer, layer);
        setStatus(`Computing… ${answer.arrived} of ${answer.head.layers.length} layers drawn`);
      },
    };
  }

  succeeded(outcome, body) {
    if (this.drawing) this.arriving.finish();
    this.drawing = false;
    Object.assign(this.state, { data: outcome.data, raw: outcome.raw, body });
    this.truncation?.showCut(outcome.data.results[0]);
    this.onResult();
    setStatus(doneMessage(outcome.data));
    this.parts.staleNote.hidden = true;
    this.finish("ready");
    if (!this.form.hasModels) this.loadModels();
  }

  failed(outcome, userInitiated) {
    if (this.drawing) this.arriving.abandon(); // a stream broke off: its layers are not a result
    this.drawing = false;
    const offered = this.truncation?.offerAfter(outcome); // a text too long: a choice, not an error
    if (!offered) this.form.showErrors(outcome.fieldErrors, outcome.message, { focus: userInitiated });
    setStatus(offered ? "Not computed: the text is longer than the model reads." : outcome.status ? `Error ${outcome.status}.` : "Network error.");
    this.parts.staleNote.hidden = !this.state.data;
    if (!this.state.data) this.parts.summary.textContent = "No result yet: see the message above.";
    this.finish("error");
  }

  /** GET /models into the model selector. */
  async loadModels() {
    const outcome = await getModels(this.form.apiKey());
    if (!outcome.ok) return; // the random model works without it; retried after the next success
    this.form.showModels(outcome.data);
  }
}

/**
 * The steps of a pretrained model's layers, asked for one layer at a time (the whole model's
 * would weigh megabytes) and kept for as long as the result they belong to is on the page.
 */
export class LayerSteps {
  constructor(apiKey) {
    this.apiKey = apiKey;
    this.reset(null);
  }

  /** A new result: forget the old one's steps. `body`: the request that produced it. */
  reset(body) {
    this.controller?.abort();
    this.body = body;
    this.cache = new Map();
    this.controller = null;
    this.position = null;
  }

  cached(position) {
    return this.cache.get(position);
  }

  isLoading(position) {
    return this.position === position && this.controller !== null;
  }

  /**
   * Fetch the steps of result.layers[position] (model layer `layer`) into the cache. Resolves to
   * {ok: true}, a failure {ok: false, message, …}, or null when a newer load superseded it.
   */
  async load(position, layer) {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.position = position;
    const { model, text, truncate } = this.body; // a text cut to the model's length is cut again
    const body = { model, text, truncate, layers: [layer], output: { attention: "none", steps: "all", precision: 4 } };
    let outcome;
    try {
      outcome = await postAttention(body, this.apiKey(), controller.signal);
    } catch {
      return null; // aborted: a newer layer or a newer result
    }
    if (this.controller !== controller) return null;
    this.controller = null;
    this.position = null;
    if (!outcome.ok) return outcome;
    const steps = outcome.data.results[0].steps ?? {};
    // one sequence was sent: drop the batch axis of each step
    this.cache.set(position, Object.fromEntries(Object.entries(steps).map(([name, value]) => [name, value[0]])));
    return { ok: true };
  }
}
