// The guided tour on the seed sentence: five steps from the tokens to a head where "who" attends
// to "man". Each step acts on the page (a tab, a search, a cell) through the `page` it is given.

import { formatNumber } from "./colors.js";
import { part } from "./dom.js";

export const SEED_SENTENCE = "The man who passes the sentence should swing the sword";
const WHO = 2; // "who" and "man" in the seed sentence, counted from 0
const MAN = 1;

/**
 * page: {ensureSeed(), tokens(), selectTab(id), reveal(element), search(query, key) -> ranking,
 * openFound(found), describeHead(found) -> {name, type}}.
 */
function tourSteps(page) {
  return [
    {
      title: "The sentence becomes tokens",
      run: () => page.ensureSeed(),
      text: () => `The service splits the sentence into ${page.tokens().length} tokens, numbered from 0 (“The” is 0, “man” 1, “who” 2). Each becomes a vector, its embedding plus its position, and attention works on those vectors.`,
    },
    {
      title: "One head, as a heatmap",
      run: () => page.selectTab("tab-heads"),
      text: () => "Each head gives every query (a row: the token that looks) a weight for every key (a column: the token looked at). Each row sums to 1; darker means more. Hover or focus a cell for its exact value.",
    },
    {
      title: "The pipeline behind the weights",
      run: () => page.selectTab("tab-steps", "scores"),
      text: () => "Q×Kᵀ gives the scores; they are scaled by 1/√d_k, masked, then turned into weights by a softmax. The three score steps share one colour scale, so the scaling shows as paler colours.",
    },
    {
      title: "Find a head",
      run: () => page.search(WHO, MAN),
      text: () => "Every head is ranked by the weight “who” (2) gives “man” (1): the top heads are listed under “Find heads”, each with its type.",
    },
    {
      title: "Where “who” looks at “man”",
      run: () => page.openFound(page.search(WHO, MAN)[0]),
      text: () => {
        const found = page.search(WHO, MAN)[0];
        const { name, type } = page.describeHead(found);
        return `${name} (${type}) gives “man” ${formatNumber(found.score * 100, 1)}% of the attention of “who”, more than any other head; its cell is focused. In a random model that is chance: choose a pretrained model and search again to see a trained head do it.`;
      },
    },
  ];
}

export class Tour {
  /** `container`: the tour box (number, count, title, text, back, next and close parts). */
  constructor(container, page) {
    this.container = container;
    this.steps = tourSteps(page);
    this.index = 0;
    this.parts = Object.fromEntries(
      ["number", "count", "title", "text", "back", "next", "close"].map((name) => [name, part(container, name)]),
    );
    this.parts.count.textContent = String(this.steps.length);
    this.parts.back.addEventListener("click", () => this.go(this.index - 1));
    this.parts.next.addEventListener("click", () => this.go(this.index + 1));
    this.parts.close.addEventListener("click", () => this.close());
  }

  start() {
    this.container.hidden = false;
    document.body.classList.add("touring");
    return this.go(0);
  }

  close() {
    this.container.hidden = true;
    document.body.classList.remove("touring");
  }

  async go(index) {
    if (index < 0 || index >= this.steps.length) return;
    this.index = index;
    const step = this.steps[index];
    this.container.dataset.step = String(index);
    this.parts.number.textContent = String(index + 1);
    this.parts.title.textContent = step.title;
    await step.run();
    this.parts.text.textContent = step.text();
    this.parts.back.disabled = index === 0;
    this.parts.next.disabled = index === this.steps.length - 1;
    this.container.dataset.ready = String(index);
    // the last step leaves the focus on the cell it found; the others on Next (Enter goes on),
    // while the text, a live region, is read out
    if (index < this.steps.length - 1) this.parts.next.focus({ preventScroll: true });
  }
}
