// A text too long for a pretrained model: the API refuses it (422) unless the request asks for
// `truncate`. The page offers the cut before sending (text-length.js) and after a refusal, and says
// what was cut after the answer.

import { el } from "./dom.js";

const TOO_LONG = /takes at most (\d+):.*ask for truncation/u; // the 422 of attention/bert/tokenizer.py

export class TruncationOffer {
  /** `element`: where the offer and the note go; `cut()`: sends the text again with truncate. */
  constructor(element, cut) {
    this.element = element;
    this.cut = cut;
  }

  show(...children) {
    this.element.replaceChildren(...children);
    this.element.hidden = children.length === 0;
  }

  /**
   * A failed request: offer the cut, as a choice, when the text was refused for its length alone
   * (its WordPieces outnumber its words: the note under the text could not tell). Returns whether
   * it offered.
   */
  offerAfter(outcome) {
    const refusal = outcome.fieldErrors?.find((error) => error.field === "text" && TOO_LONG.test(error.message));
    if (!refusal || outcome.fieldErrors.length > 1) {
      this.show();
      return false;
    }
    const limit = Number(TOO_LONG.exec(refusal.message)[1]);
    const button = el("button", {
      type: "button",
      class: "secondary",
      id: "truncate-submit",
      text: `Cut to ${limit} tokens and compute`,
    });
    button.addEventListener("click", () => this.cut());
    const why = `Split into WordPieces, this text is longer than the ${limit} tokens the model reads. Compute its first ${limit} tokens, or shorten the text.`;
    this.show(el("span", { class: "truncation-offer", text: why }), button);
    return true;
  }

  /** An answer: say what was cut from its first sequence, if anything. */
  showCut(result) {
    const cut = result?.truncated;
    if (!cut) return this.show();
    const last = result.tokens[cut.kept - 2]; // the last word piece kept, before [SEP]
    this.show(
      el("span", {
        class: "truncated-note",
        text: `The text was cut to ${cut.kept} of its ${cut.tokens} tokens: everything after “${last}” was left out.`,
      }),
    );
  }
}
