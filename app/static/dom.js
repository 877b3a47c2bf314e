// A tiny element builder, so that a node, its attributes, listeners and children read as one
// expression instead of a run of createElement / setAttribute / append calls.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Apply `props` to `node`. Keys: class, text (textContent), html (innerHTML: trusted markup from
 * this code only), data (dataset entries), style (CSS properties through the CSSOM, never a style
 * attribute, which a strict Content-Security-Policy would refuse), on (event listeners); any other
 * key is an attribute. A value of null, undefined or false leaves its key out; true sets "".
 */
function apply(node, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = String(value);
    else if (key === "html") node.innerHTML = value;
    else if (key === "data") {
      for (const [name, v] of Object.entries(value)) if (v !== null && v !== undefined) node.dataset[name] = String(v);
    } else if (key === "style") {
      for (const [name, v] of Object.entries(value)) node.style.setProperty(name, String(v));
    } else if (key === "on") {
      for (const [type, listener] of Object.entries(value)) node.addEventListener(type, listener);
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
  return node;
}

/** Children may be nodes, strings, nested arrays, or null/undefined/false (left out). */
function appendAll(node, children) {
  node.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** An HTML element: el("p", {class: "note", text: "…"}), el("ul", {}, ...items). */
export function el(tag, props = {}, ...children) {
  return appendAll(apply(document.createElement(tag), props), children);
}

/** The same for an SVG element. */
export function svgEl(tag, props = {}, ...children) {
  return appendAll(apply(document.createElementNS(SVG_NS, tag), props), children);
}

/** A short note in place of something that cannot be drawn. */
export function note(text) {
  return el("p", { class: "note", text });
}

/** The element of `container` marked data-part="name": how a panel finds its own pieces. */
export function part(container, name) {
  return container.querySelector(`[data-part="${name}"]`);
}

/** Offer heads 1…`heads` (and their average) in `select`, keeping the choice when it remains. */
export function fillHeadSelect(select, heads, { average }) {
  const previous = select.value;
  const options = Array.from({ length: heads }, (_, h) => new Option(`Head ${h}`, String(h)));
  if (average) options.push(new Option("Average of heads", "average"));
  select.replaceChildren(...options);
  select.value = options.some((o) => o.value === previous) ? previous : "0";
}
