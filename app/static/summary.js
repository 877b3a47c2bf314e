// The summary above the tabs (the tokens as chips and the facts of the configuration) and the
// footer's line on where and how fast the response was computed.

import { el } from "./dom.js";
import { TOKENS_SHOWN } from "./long-inputs.js";
import { isPretrained, metaLine, summaryFacts } from "./view-model.js";

const SPECIAL_TOKEN = /^\[[A-Z]+\]$/;

function tokenChip(token, pretrained) {
  const classes = ["chip"];
  if (pretrained && SPECIAL_TOKEN.test(token)) classes.push("special");
  if (pretrained && String(token).startsWith("##")) classes.push("piece");
  return el("li", { class: classes.join(" "), text: token });
}

/** The token chips: the first TOKENS_SHOWN of a long input, and a button for the rest. */
function tokenList(tokens, pretrained) {
  const list = el(
    "ul",
    { class: "token-list", "aria-label": pretrained ? "WordPiece tokens" : "Tokens" },
    tokens.slice(0, TOKENS_SHOWN).map((token) => tokenChip(token, pretrained)),
  );
  if (tokens.length <= TOKENS_SHOWN) return list;
  const more = el("button", {
    type: "button",
    class: "secondary show-all",
    text: `Show all ${tokens.length.toLocaleString("en")} tokens`,
  });
  more.addEventListener("click", () => {
    list.append(...tokens.slice(TOKENS_SHOWN).map((token) => tokenChip(token, pretrained)));
    more.remove();
  });
  return [list, more];
}

/** Draw the summary of `data` into `container` and its meta line into `metaElement`. */
export function renderSummary(container, metaElement, data) {
  const result = data.results[0];
  const pretrained = isPretrained(result);
  container.replaceChildren(
    ...[tokenList(result.tokens, pretrained)].flat(),
    el("span", { class: "facts", text: summaryFacts(data).join(" · ") }),
  );
  metaElement.textContent = metaLine(data.meta ?? {});
}
