// The calls the page makes, POST /attention and GET /models, and the translation of errors into
// messages that name a form field.

import { NDJSON, readStream, StreamError } from "./stream.js";

/** Request fields that have a control on the page (the last element of a 422's loc). */
export const FORM_FIELDS = [
  "text",
  "d_model",
  "num_heads",
  "num_kv_heads",
  "positional_encoding",
  "causal",
  "window",
  "seed",
  "model",
];

const STATUS_TEXT = {
  401: "The service needs an API key",
  403: "The API key was refused",
  413: "The request is too large for this service",
  429: "The service is busy (too many requests); wait a moment and try again",
  503: "The service is overloaded or not ready; try again shortly",
  504: "The computation took too long and was stopped",
};

function cleanMessage(msg) {
  return String(msg ?? "").replace(/^(Value|Assertion) error, /, "");
}

/** The form field a FastAPI error location points at: its last element that names a field. */
export function fieldOf(loc) {
  if (!Array.isArray(loc)) return null;
  for (let k = loc.length - 1; k >= 0; k -= 1) {
    if (typeof loc[k] !== "string") continue;
    const name = loc[k].replace(/\[\d+\]$/, ""); // "text[0]": the first text of a list
    return FORM_FIELDS.includes(name) ? name : null;
  }
  return null;
}

function describeFailure(status, detail, statusText, keySent) {
  const failure = { ok: false, status, fieldErrors: [], message: "" };
  if (Array.isArray(detail)) {
    const general = [];
    for (const item of detail) {
      const field = fieldOf(item?.loc);
      const msg = cleanMessage(item?.msg ?? JSON.stringify(item));
      if (field) failure.fieldErrors.push({ field, message: msg });
      else general.push(Array.isArray(item?.loc) ? `${item.loc.join(".")}: ${msg}` : msg);
    }
    failure.message = general.length
      ? general.join(" · ")
      : "The service could not use this input: see the highlighted field.";
    return failure;
  }
  const text = typeof detail === "string" ? detail : detail ? JSON.stringify(detail) : "";
  const lead = STATUS_TEXT[status] ?? `The service answered ${status} ${statusText}`.trim();
  failure.message = text ? `${lead} (${status}): ${text}` : `${lead} (${status}).`;
  if (status === 401 || status === 403) {
    failure.fieldErrors.push({
      field: "api_key",
      message: keySent
        ? `This key was refused (${status}). Check it and press Enter to try again.`
        : `This service needs an API key (${status}). Type it here and press Enter.`,
    });
  }
  return failure;
}

const NETWORK_FAILURE = (error) => ({
  ok: false,
  status: 0,
  fieldErrors: [],
  message: `Could not reach the service (${error.message}). Check that it is running and try again.`,
});

const NOT_UNDERSTOOD = (status) => ({
  ok: false,
  status,
  fieldErrors: [],
  message: "The service sent an answer this page does not understand.",
});

/**
 * POST /attention. Resolves to {ok: true, data, raw} or {ok: false, status, fieldErrors,
 * message}; status 0 is a network failure. Rejects only when aborted.
 * `stream` ({onHead, onLayer}, stream.js): ask for the answer layer by layer and call them as
 * it comes; a model that does not stream (406) is asked again for the whole answer.
 */
export async function postAttention(body, apiKey, signal, stream = null) {
  const headers = { "Content-Type": "application/json", Accept: stream ? NDJSON : "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  let response;
  try {
    response = await fetch("/attention", {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return NETWORK_FAILURE(error);
  }
  if (stream && response.status === 406) return postAttention(body, apiKey, signal);
  const streamed = response.headers.get("Content-Type")?.startsWith(NDJSON);
  if (response.ok && streamed) return readStreamed(response, stream ?? {}, Boolean(apiKey));
  const raw = await response.text();
  let data = null;
  try {
    data = raw ? JSON.parse(raw) : null;
  } catch {
    data = null;
  }
  if (response.ok && data && Array.isArray(data.results)) return { ok: true, data, raw };
  if (response.ok) return NOT_UNDERSTOOD(response.status);
  return describeFailure(response.status, data?.detail, response.statusText, Boolean(apiKey));
}

/**
 * The frames of a streamed answer, assembled. `raw` (Download JSON) is the assembled answer
 * written by JSON.stringify: the same fields and numbers as the whole answer's bytes.
 */
async function readStreamed(response, hooks, keySent) {
  try {
    const data = await readStream(response, hooks);
    return { ok: true, data, raw: JSON.stringify(data) };
  } catch (error) {
    if (error.name === "AbortError") throw error;
    if (error instanceof StreamError) return describeFailure(error.status, error.detail, "", keySent);
    if (error instanceof SyntaxError) return NOT_UNDERSTOOD(response.status);
    return NETWORK_FAILURE(error);
  }
}

/**
 * GET /models. Resolves to {ok: true, data: {models, unavailable}} or {ok: false, status};
 * status 0 is a network failure. Never rejects.
 */
export async function getModels(apiKey) {
  const headers = { Accept: "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  try {
    const response = await fetch("/models", { headers });
    const data = response.ok ? await response.json() : null;
    if (data && Array.isArray(data.models)) return { ok: true, data };
    return { ok: false, status: response.status };
  } catch {
    return { ok: false, status: 0 };
  }
}

/** GET /steps: the step registry (name, layout, shape, meaning), or null when it fails. */
export async function getSteps(apiKey) {
  const headers = { Accept: "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  try {
    const response = await fetch("/steps", { headers });
    const data = response.ok ? await response.json() : null;
    return Array.isArray(data) ? data : null;
  } catch {
    return null;
  }
}
