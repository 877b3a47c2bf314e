// The page's state in its URL, so that a link or a reload shows the same thing: the sentence, the
// model and its configuration (the form's controls), and the view (tab, layer, head, whole words,
// the head search). The URL follows each change through history.replaceState (no new entries).

/** The form controls kept in the URL: query parameter -> control id. */
const FORM_PARAMS = {
  text: "text",
  model: "model",
  d_model: "d_model",
  heads: "num_heads",
  kv_heads: "num_kv_heads",
  positions: "positional_encoding",
  window: "window",
  seed: "seed",
  causal: "causal",
};
/** The view kept in the URL. */
const VIEW_PARAMS = ["tab", "layer", "head", "words", "q", "k"];

const params = () => new URLSearchParams(window.location.search);

/** The model named in the URL (it may need GET /models before it can be chosen), or null. */
export function modelInUrl() {
  return params().get("model");
}

/** Fill the form's controls from the URL; true when the URL held any. */
export function restoreForm(form) {
  const query = params();
  let any = false;
  for (const [name, id] of Object.entries(FORM_PARAMS)) {
    if (!query.has(name)) continue;
    const control = form.querySelector(`#${id}`);
    const value = query.get(name);
    if (control.type === "checkbox") control.checked = value === "1";
    else if (control.tagName !== "SELECT" || [...control.options].some((o) => o.value === value)) control.value = value;
    any = true;
  }
  return any;
}

/** The view in the URL: {tab, layer, head, words, q, k}, numbers where they are numbers. */
export function viewInUrl() {
  const query = params();
  const number = (name) => (query.has(name) && query.get(name) !== "" ? Number(query.get(name)) : null);
  return {
    tab: query.get("tab"),
    layer: number("layer"),
    head: number("head"),
    words: query.get("words") === "1",
    q: query.get("q"),
    k: number("k"),
  };
}

/** Write the form and `view` ({tab, layer, head, words, q, k}) into the URL. */
export function saveUrl(form, view) {
  const query = new URLSearchParams();
  for (const [name, id] of Object.entries(FORM_PARAMS)) {
    const control = form.querySelector(`#${id}`);
    if (control.closest("fieldset:disabled")) continue; // a pretrained model has no configuration
    const value = control.type === "checkbox" ? (control.checked ? "1" : "") : control.value.trim();
    if (value !== "") query.set(name, value);
  }
  for (const name of VIEW_PARAMS) {
    const value = view[name];
    if (value !== null && value !== undefined && value !== false && value !== "") query.set(name, value === true ? "1" : String(value));
  }
  const url = `${window.location.pathname}?${query}`;
  if (url !== `${window.location.pathname}${window.location.search}`) history.replaceState(null, "", url);
}
