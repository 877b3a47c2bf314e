// The steps of a long input on the random model. Past OVERVIEW_FROM tokens the first answer
// carries no steps (each is L × d_model or H × L × L: megabytes), and the API's `output.queries`
// shapes the attention weights only, not the steps. So the Steps tab says so and offers the steps
// of the input cut to its first STEPS_TOKENS tokens, computed as an input of their own.

import { postAttention } from "./api.js";
import { el } from "./dom.js";
import { OVERVIEW_FROM, STEPS_TOKENS } from "./long-inputs.js";

/** Whether `result` (the random model's) came without its steps: a long input's overview. */
export const lacksSteps = (result) => !result.steps?.q;

export class CutSteps {
  constructor(apiKey) {
    this.apiKey = apiKey;
    this.request = undefined;
    this.steps = null; // {tokens, steps, total} once computed
    this.controller = null;
  }

  /** A new result (the page's `request`) forgets the old one's cut steps. */
  follow(request) {
    if (request === this.request) return;
    this.controller?.abort();
    this.controller = null;
    this.request = request;
    this.steps = null;
  }

  get loading() {
    return this.controller !== null;
  }

  /** The request for the steps of `tokens` cut to their first STEPS_TOKENS, on the page's config. */
  body(tokens) {
    const { config, output } = this.request;
    const sequence = tokens.slice(0, STEPS_TOKENS);
    return { sequences: [sequence], config, output: { attention: "none", steps: "all", precision: output?.precision ?? 4 } };
  }

  /** Fetch the cut steps of `tokens`: {ok: true}, a failure {ok: false, message}, or null if superseded. */
  async load(tokens) {
    const controller = new AbortController();
    this.controller = controller;
    const request = this.request;
    const body = this.body(tokens);
    let outcome;
    try {
      outcome = await postAttention(body, this.apiKey(), controller.signal);
    } catch {
      return null;
    }
    if (this.controller !== controller || this.request !== request) return null;
    this.controller = null;
    if (!outcome.ok) return outcome;
    const result = outcome.data.results[0];
    this.steps = { tokens: result.tokens ?? body.sequences[0], steps: result.steps, total: tokens.length };
    return { ok: true };
  }
}

/** Why a long input has no steps, and the button that computes the cut ones. */
export function offer(total, compute) {
  return el(
    "div",
    { class: "steps-offer", id: "steps-offer" },
    el("p", {
      class: "note",
      text: `This input has ${total} tokens. Past ${OVERVIEW_FROM} tokens the page asks for the attention without its steps, to keep the answer small: every step of every token would weigh megabytes, and the API returns the steps of all queries or none.`,
    }),
    el("button", {
      type: "button",
      class: "secondary",
      id: "compute-cut-steps",
      text: `Compute the steps of the first ${Math.min(total, STEPS_TOKENS)} tokens`,
      on: { click: compute },
    }),
  );
}

/** What the cut steps are: the first tokens as an input of their own. */
export function cutNote({ tokens, total }) {
  return `The steps of the first ${tokens.length} of the ${total} tokens, computed as an input of their own: these tokens attend to each other only, so without a causal mask their weights differ from the full input’s.`;
}
