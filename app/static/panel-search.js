// The head search: choose a query token and a key token (or any query) and every head of every
// layer is ranked by that weight; the top heads are one click away, each labelled with its type.
// The rules behind the types are listed under the search.

import { formatNumber } from "./colors.js";
import { el, part } from "./dom.js";
import { rankHeads } from "./head-search.js";
import { headType, headTypeRules } from "./head-types.js";

const TOP = 5;
const ANY = "any";

export class SearchPanel {
  /**
   * `container`: holds the query, key, results, readout and rules parts. onOpen({position, head,
   * query, key}): a found head was chosen. onRank(ranked): a new ranking (for the model grid).
   */
  constructor(container, { onOpen, onRank = () => {} }) {
    this.query = part(container, "query");
    this.key = part(container, "key");
    this.results = part(container, "results");
    this.readout = part(container, "readout");
    this.rules = part(container, "rules");
    this.onOpen = onOpen;
    this.onRank = onRank;
    this.layers = [];
    for (const select of [this.query, this.key]) select.addEventListener("change", () => this.rank());
  }

  /** New views: `layers` [{position, layer, attention, tokens, pretrained}], one per layer. */
  show(layers) {
    this.layers = layers;
    const tokens = layers[0]?.tokens ?? [];
    const keyTokens = layers[0]?.keyTokens ?? tokens;
    fillTokens(this.query, tokens, { any: true });
    fillTokens(this.key, keyTokens, { any: false });
    const pretrained = Boolean(layers[0]?.pretrained);
    this.rules.replaceChildren(
      ...headTypeRules({ pretrained }).map((r) => el("li", {}, el("strong", { text: r.type }), `: ${r.rule}`)),
    );
    this.rank();
  }

  /** Choose query and key (indices; query null for any query) and rank. */
  search(query, key) {
    this.query.value = query === null ? ANY : String(query);
    this.key.value = String(key);
    return this.rank();
  }

  chosen() {
    if (this.key.value === "") return null;
    const query = this.query.value === ANY || this.query.value === "" ? null : Number(this.query.value);
    return { query, key: Number(this.key.value) };
  }

  rank() {
    const choice = this.chosen();
    if (!choice || !this.layers.length) {
      this.results.replaceChildren();
      this.readout.textContent = "Choose a key token (and a query token) to rank every head.";
      this.onRank(null);
      return [];
    }
    const ranked = rankHeads(this.layers, choice);
    const top = ranked.slice(0, TOP);
    this.results.replaceChildren(...top.map((found, k) => this.resultItem(found, k)));
    const what = this.describe(choice);
    this.readout.textContent = `${ranked.length} heads ranked by ${what}; the top ${top.length} are listed.`;
    this.onRank(ranked);
    return ranked;
  }

  describe({ query, key }) {
    const tokens = this.layers[0].tokens;
    const keys = this.layers[0].keyTokens ?? tokens;
    const to = `“${keys[key]}” (${key})`;
    return query === null ? `the mean weight every query gives ${to}` : `the weight “${tokens[query]}” (${query}) gives ${to}`;
  }

  resultItem(found, rank) {
    const view = this.layers.find((l) => l.position === found.position);
    const { type } = headType(view.attention[found.head], { pretrained: view.pretrained });
    const name = found.layer === null ? `Head ${found.head}` : `Layer ${found.layer}, head ${found.head}`;
    return el(
      "li",
      {},
      el("button", {
        type: "button",
        class: "found",
        data: { position: found.position, head: found.head, rank },
        text: `${name} · ${type} · ${formatNumber(found.score, 3)}`,
        on: { click: () => this.onOpen(found) },
      }),
    );
  }
}

function fillTokens(select, tokens, { any }) {
  const previous = select.value;
  const options = tokens.map((t, i) => new Option(`${i} ${t}`, String(i)));
  if (any) options.unshift(new Option("any query (mean)", ANY));
  else options.unshift(new Option("choose a key…", ""));
  select.replaceChildren(...options);
  select.value = options.some((o) => o.value === previous) ? previous : options[0].value;
}
