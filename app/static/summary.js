// The summary above the tabs (the tokens as chips and the facts of the configuration) and the
// footer's line on where and how fast the response was computed.

import { el } from "./dom.js";
import { isPretrained, metaLine, summaryFacts } from "./view-model.js";

const SPECIAL_TOKEN = /^\[[A-Z]+\]$/;

function tokenChip(token, pretrained) {
  const classes = ["chip"];
  if (pretrained && SPECIAL_TOKEN.test(token)) classes.push("special");
  if (pretrained && String(token).startsWith("##")) classes.push("piece");
  return el("li", { class: classes.join(" "), text: token });
}

/** Draw the summary of `data` into `container` and its meta line into `metaElement`. */
export function renderSummary(container, metaElement, data) {
  const result = data.results[0];
  const pretrained = isPretrained(result);
  container.replaceChildren(
    el(
      "ul",
      { class: "token-list", "aria-label": pretrained ? "WordPiece tokens" : "Tokens" },
      result.tokens.map((token) => tokenChip(token, pretrained)),
    ),
    el("span", { class: "facts", text: summaryFacts(data).join(" · ") }),
  );
  metaElement.textContent = metaLine(data.meta ?? {});
}
