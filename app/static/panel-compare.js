// The Compare panel: A (a head of the result on the page) beside B — another head of it, the same
// head on another sentence, or on another model — on one colour scale, and their difference
// A − B on a diverging scale (red: B attends more, blue: A does). When A's and B's tokens differ
// the difference is taken position by position over the cells both have, and a note says so.

import { makeScale, renderLegend } from "./colors.js";
import { MODES, bodyOfB, computeB } from "./compare-source.js";
import { el, part } from "./dom.js";
import { downloadButtons, heatmapSvg } from "./download.js";
import { headCard } from "./head-card.js";
import { createHeatmap } from "./heatmap.js";
import { weightScale } from "./view-model.js";

const nameOf = (view, head) => (view.pretrained ? `Layer ${view.layer}, head ${head}` : `Head ${head}`);
const sameTokens = (a, b) => a.length === b.length && a.every((t, i) => t === b[i]);

/** A's and B's matrices cut to the cells both have, and how to label and explain them. */
export function aligned(a, b) {
  const rows = Math.min(a.matrix.length, b.matrix.length);
  const cols = Math.min(a.matrix[0]?.length ?? 0, b.matrix[0]?.length ?? 0);
  const diff = a.matrix.slice(0, rows).map((row, i) =>
    row.slice(0, cols).map((w, j) => (w === null || b.matrix[i][j] === null ? null : w - b.matrix[i][j])),
  );
  const pair = (x, y) => (x === y ? x : `${x} | ${y}`);
  const same = sameTokens(a.view.tokens, b.view.tokens) && sameTokens(a.view.keyTokens, b.view.keyTokens);
  return {
    diff,
    same,
    rowLabels: a.view.tokens.slice(0, rows).map((t, i) => pair(t, b.view.tokens[i])),
    colLabels: a.view.keyTokens.slice(0, cols).map((t, j) => pair(t, b.view.keyTokens[j])),
  };
}

/** What the difference of A and B means when their tokens are not the same. */
function alignmentNote(lengthA, lengthB, { rowLabels, colLabels }) {
  const labels = "labels read “A token | B token” where they differ";
  if (lengthA === lengthB) {
    return `A and B have the same number of tokens (${lengthA}) but not the same tokens: the difference is cell by cell, by position; ${labels}.`;
  }
  return `A and B have different lengths (A: ${lengthA}, B: ${lengthB} tokens): the difference is taken position by position over the first ${rowLabels.length} × ${colLabels.length} cells only; ${labels}.`;
}

export class ComparePanel {
  /**
   * `container`: the panel, holding the mode, source, text, model, seed, error, note, head-a,
   * head-b and maps parts. form: the ConfigForm; body(): the request of the result on the page.
   */
  constructor(container, { form, body }) {
    this.container = container;
    this.form = form;
    this.body = body;
    const find = (name) => part(container, name);
    Object.assign(this, { a: find("head-a"), b: find("head-b"), maps: find("maps"), source: find("source") });
    Object.assign(this, { error: find("error"), note: find("note"), modelSelect: find("model") });
    this.views = [];
    this.other = null; // B's side when it comes from its own request: {views, label, base}
    this.controller = null;
    for (const select of [this.a, this.b]) select.addEventListener("change", () => this.draw());
    find("mode").addEventListener("change", () => this.modeChanged());
    this.source.addEventListener("submit", (event) => {
      event.preventDefault();
      this.computeOther();
    });
    this.setState("ready");
  }

  mode() {
    return this.container.querySelector("[data-part=mode] input:checked")?.value ?? MODES.heads;
  }

  setState(name) {
    this.container.dataset.state = name;
  }

  /** `views`: every layer's view of the result on the page (position, layer, attention, tokens…). */
  show(views) {
    this.views = views;
    // a B computed against another result on the page no longer matches it
    if (this.other && this.other.base !== JSON.stringify(this.body())) this.other = null;
    this.fillSelect(this.a, views, 0);
    this.modeChanged();
  }

  /** The mode's controls, B's heads, and the drawing. */
  modeChanged() {
    const mode = this.mode();
    this.source.hidden = mode === MODES.heads;
    part(this.source, "sentence-field").hidden = mode !== MODES.sentence;
    for (const name of ["model-field", "seed-field"]) part(this.source, name).hidden = mode !== MODES.model;
    if (mode === MODES.model) this.fillModels();
    if (this.other && this.other.mode !== mode) this.other = null;
    this.fillSelect(this.b, this.viewsOfB(), mode === MODES.heads ? 1 : Number(this.a.selectedIndex));
    this.draw();
  }

  viewsOfB() {
    return this.mode() === MODES.heads ? this.views : (this.other?.views ?? []);
  }

  fillSelect(select, views, fallback) {
    const previous = select.value;
    const all = views.flatMap((view) => view.attention.map((_, h) => new Option(nameOf(view, h), `${view.position}:${h}`)));
    select.replaceChildren(...all);
    select.disabled = !all.length;
    if (!all.length) return;
    select.value = all.some((o) => o.value === previous) ? previous : all[Math.max(0, Math.min(fallback, all.length - 1))].value;
  }

  /** Model B's choices: every available model of GET /models. */
  fillModels() {
    const previous = this.modelSelect.value;
    const models = [...(this.form.models?.values() ?? [])].filter((m) => m.status !== "unavailable");
    this.modelSelect.replaceChildren(...models.map((m) => new Option(m.name, m.name)));
    if (models.some((m) => m.name === previous)) this.modelSelect.value = previous;
  }

  async computeOther() {
    const base = this.body();
    if (!base) return;
    const mode = this.mode();
    const choice = {
      mode,
      text: part(this.source, "text").value.trim(),
      model: this.modelSelect.value,
      seed: Number(part(this.source, "seed").value === "" ? Number.NaN : part(this.source, "seed").value),
    };
    const { body, error } = bodyOfB(base, this.form, choice);
    this.showError(error ?? "");
    if (error) return this.setState("error");
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.setState("loading");
    let outcome;
    try {
      outcome = await computeB(body, this.form, controller.signal);
    } catch {
      return; // aborted by a newer B
    }
    if (this.controller !== controller) return;
    this.controller = null;
    if (!outcome.ok) {
      this.showError(outcome.message);
      return this.setState("error");
    }
    this.other = { ...outcome, mode, base: JSON.stringify(base) };
    this.modeChanged();
    this.setState("ready");
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = !message;
  }

  chosen(select, views, side) {
    const [position, head] = select.value.split(":").map(Number);
    const view = views.find((v) => v.position === position);
    const where = side === "B" && this.other ? ` (${this.mode() === MODES.sentence ? `“${this.other.text}”` : this.other.label})` : "";
    return { view, head, matrix: view.attention[head], name: `${nameOf(view, head)}${where}` };
  }

  draw() {
    if (!this.views.length) return;
    const a = this.chosen(this.a, this.views, "A");
    const viewsB = this.viewsOfB();
    if (!viewsB.length) {
      this.note.hidden = false;
      this.note.textContent = `Compute B first: ${this.mode() === MODES.sentence ? "type sentence B" : "choose model B"} and press Compute B.`;
      this.maps.replaceChildren(this.card("A", a, weightScale([a.matrix])));
      return;
    }
    const b = this.chosen(this.b, viewsB, "B");
    const scale = weightScale([a.matrix, b.matrix]);
    const match = aligned(a, b);
    this.note.hidden = match.same;
    this.note.textContent = match.same ? "" : alignmentNote(a.view.tokens.length, b.view.tokens.length, match);
    this.maps.replaceChildren(this.card("A", a, scale), this.card("B", b, scale), this.difference(a, b, match));
  }

  card(side, { view, head, matrix, name }, scale) {
    return headCard({ kind: "head", head, title: `${side}: ${name}`, matrix, view, scale, idPrefix: `compare-${side}-`, note: "one scale for A and B" });
  }

  difference(a, b, { diff, rowLabels, colLabels }) {
    const bound = Math.max(1e-9, ...diff.flat().filter((v) => v !== null).map(Math.abs));
    const scale = makeScale("diverging", -bound, bound);
    const title = `A − B: ${a.name} minus ${b.name}`;
    const readout = el("p", { class: "readout", "aria-live": "polite", text: "Hover or focus a cell for the difference." });
    const map = createHeatmap({
      values: diff,
      rowLabels,
      colLabels,
      scale,
      label: `${title}: queries in rows, keys in columns`,
      head: "difference",
      readout,
      showValues: true,
    });
    return el(
      "figure",
      { class: "heatmap-card difference", data: { kind: "difference" } },
      el(
        "figcaption",
        {},
        el("h3", { text: title }),
        el("p", { class: "card-sub", text: "Blue: A attends more; red: B does." }),
        downloadButtons(title, () => heatmapSvg({ values: diff, rowLabels, colLabels, scale, title, subtitle: "A − B, queries in rows, keys in columns" })),
      ),
      map,
      renderLegend(scale, "A − B"),
      readout,
    );
  }
}
