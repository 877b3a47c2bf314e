// The form's bounds from GET /info's `limits`: the working limits of this instance (its settings),
// not the schema's absolute caps (MAX_HEADS 4,096, MAX_NEW_TOKENS 65,536 in app/http/schemas.py),
// which the settings refuse long before. Each bounded field gets `max` and its hint says it; the
// form refuses a larger number before sending (form.js). Limits the answer lacks are left alone.

/** field id -> the /info limit that bounds it, and how its hint names it. */
const BOUNDS = [
  { id: "d_model", limit: "max_d_model" },
  { id: "num_heads", limit: "max_heads" },
  { id: "num_kv_heads", limit: "max_heads" },
  { id: "gen-max_new_tokens", limit: "max_new_tokens" },
];

const number = (n) => Number(n).toLocaleString("en-US");

/** The limits of GET /info, or null when it cannot be had. */
async function fetchLimits(apiKey) {
  const headers = { Accept: "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  try {
    const response = await fetch("/info", { headers });
    return response.ok ? ((await response.json()).limits ?? null) : null;
  } catch {
    return null;
  }
}

/** Set each bounded field's `max` and its "at most" line from `limits`. */
export function applyLimits(limits) {
  for (const { id, limit } of BOUNDS) {
    const value = limits?.[limit];
    const input = document.getElementById(id);
    if (!input || !Number.isInteger(value)) continue;
    input.max = String(value);
    const hint = document.getElementById(`${id}-limit`);
    if (!hint) continue;
    const context = id === "gen-max_new_tokens" && Number.isInteger(limits.max_context_tokens)
      ? `; with the prompt, at most ${number(limits.max_context_tokens)} tokens` : "";
    hint.textContent = `At most ${number(value)} on this service${context}.`;
    hint.hidden = false;
  }
}

/** GET /info, then its limits into the form. */
export async function loadLimits(apiKey) {
  applyLimits(await fetchLimits(apiKey));
}
