// The drawings of the Generate tab: the prompt and the generated tokens in a row (each generated
// token a button), and the attention of the query that chose one token over the whole context
// before it, one row per layer and head, with its log-probability.

import { formatNumber, renderLegend } from "./colors.js";
import { el } from "./dom.js";
import { weightScale } from "./view-model.js";

/** A token as the page writes it: an empty one (an id the tokenizer has no text for) by its id. */
export const tokenText = (token, id) => (token === "" || token === null || token === undefined ? `⟨id ${id}⟩` : token);

/** The keys generated token t attended over: the prompt, then the tokens generated before it. */
export function contextOf(promptTokens, generation, t) {
  const earlier = generation.tokens.slice(0, t).map((token, k) => tokenText(token, generation.token_ids[k]));
  return [...promptTokens, ...earlier];
}

/** The rows of token t's attention: one per (layer, head) of the layers asked for. */
export function attentionRows(generation, t, layers) {
  const perLayer = generation.attention?.[t] ?? [];
  return perLayer.flatMap((heads, k) => heads.map((weights, head) => ({ layer: layers[k] ?? k, head, weights })));
}

/** The row of chips: the prompt's tokens (text), then each generated token as a button. */
export function renderTokenRow(container, { promptTokens, generation, chosen, onChoose }) {
  const prompt = promptTokens.map((token, i) => el("span", { class: "gen-chip prompt", data: { position: i }, text: token }));
  const buttons = generation.tokens.map((token, t) => {
    const text = tokenText(token, generation.token_ids[t]);
    const logprob = generation.logprobs?.[t];
    return el("button", {
      type: "button",
      class: "gen-chip gen-token",
      data: { index: t, logprob: logprob ?? null },
      "aria-pressed": String(t === chosen),
      "aria-label": `Generated token ${t}: “${text}”, log-probability ${formatNumber(logprob, 3)}`,
      text,
      on: { click: () => onChoose(t) },
    });
  });
  container.replaceChildren(
    el("span", { class: "gen-label", text: "Prompt" }),
    ...prompt,
    el("span", { class: "gen-label", text: "Generated" }),
    ...buttons,
  );
}

/** The header of the chosen token: its text, id, log-probability and probability. */
function tokenSummary(generation, t, text) {
  const logprob = generation.logprobs?.[t];
  const p = logprob === null || logprob === undefined ? null : Math.exp(logprob);
  return el(
    "p",
    { class: "gen-summary", data: { logprob: logprob ?? null } },
    `Token ${t}: “${text}” (id ${generation.token_ids[t]}), log-probability `,
    el("strong", { text: formatNumber(logprob, 4) }),
    p === null ? "" : ` (p = ${formatNumber(p * 100, 2)}% at temperature 1). `,
    "Each row is the weights of the query that chose it, over every token before it.",
  );
}

function weightCell(layer, head, j, weight, key, scale) {
  const shown = weight === null ? "null" : String(weight);
  return el("td", {
    class: weight !== null && scale.dark(weight) ? "on-dark" : null,
    data: { layer, head, key: j, value: shown },
    title: `Layer ${layer}, head ${head} → “${key}” (${j}): ${shown}`,
    style: weight === null ? {} : { "background-color": scale.colour(weight) },
    text: weight === null ? "—" : formatNumber(weight, 2),
  });
}

/** Token t's attention over its context as a table: layers × heads in rows, keys in columns. */
export function renderTokenAttention(container, { promptTokens, generation, t, layers, shownLayer }) {
  const text = tokenText(generation.tokens[t], generation.token_ids[t]);
  const keys = contextOf(promptTokens, generation, t);
  const rows = attentionRows(generation, t, layers).filter((r) => shownLayer === null || r.layer === shownLayer);
  if (!rows.length) {
    container.replaceChildren(tokenSummary(generation, t, text), el("p", { class: "note", text: "The answer holds no attention for this token." }));
    return;
  }
  const scale = weightScale(rows.map((r) => r.weights));
  const head = el(
    "tr",
    {},
    el("th", { scope: "col", text: "Layer, head" }),
    keys.map((key, j) => el("th", { scope: "col", class: j >= promptTokens.length ? "generated" : null, text: key })),
  );
  const body = rows.map(({ layer, head: h, weights }) =>
    el(
      "tr",
      { data: { layer, head: h }, class: h === 0 ? "layer-start" : null },
      el("th", { scope: "row", text: `L${layer} H${h}`, "aria-label": `Layer ${layer}, head ${h}` }),
      weights.map((w, j) => weightCell(layer, h, j, w, keys[j], scale)),
    ),
  );
  const caption = `Attention of generated token ${t} “${text}” over its ${keys.length} context tokens`;
  container.replaceChildren(
    tokenSummary(generation, t, text),
    renderLegend(scale, "attention weight"),
    el(
      "div",
      { class: "gen-scroll", tabindex: "0", role: "region", "aria-label": `${caption} (scrolls)` },
      el("table", { class: "gen-attention", data: { token: t } }, el("caption", { text: caption }), el("thead", {}, head), el("tbody", {}, body)),
    ),
  );
}
