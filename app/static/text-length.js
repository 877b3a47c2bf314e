// A text longer than the chosen encoder reads (its `max_tokens` in GET /models), said before it is
// sent: a note under the sentence with a "cut to N tokens" box that asks for `truncate`. The page
// counts words and punctuation, a lower bound of the WordPieces: a text the note does not catch may
// still be refused, and the refusal is then offered as a choice (truncation.js).

import { countTokens } from "./long-inputs.js";

const SPECIALS = 2; // [CLS] and [SEP] count in the model's length

export class TextLength {
  /** `form`: the form element holding #text, #text-length, #text-length-note and #truncate-text. */
  constructor(form, chosenModel) {
    this.text = form.querySelector("#text");
    this.box = form.querySelector("#text-length");
    this.note = form.querySelector("#text-length-note");
    this.cut = form.querySelector("#truncate-text");
    this.cutLabel = form.querySelector("#truncate-label");
    this.chosenModel = chosenModel;
    this.text.addEventListener("input", () => this.update());
  }

  /** The chosen model's length, when it is an encoder that takes `truncate`. */
  limit() {
    const model = this.chosenModel();
    return model.kind === "pretrained" && Number.isInteger(model.max_tokens) ? model.max_tokens : null;
  }

  /** Show or hide the note for the text and model now in the form. */
  update() {
    const limit = this.limit();
    const tokens = countTokens(this.text.value.trim()) + SPECIALS;
    const over = limit !== null && tokens > limit;
    this.box.hidden = !over;
    if (!over) return;
    this.note.textContent = `This text has at least ${tokens} tokens (its words and punctuation, with [CLS] and [SEP]): more than the ${limit} the model reads.`;
    this.cutLabel.textContent = `Cut it to the first ${limit} tokens`;
  }

  /** Whether the request asks for the cut: the note is shown and its box checked. */
  wantsCut() {
    return !this.box.hidden && this.cut.checked;
  }
}
