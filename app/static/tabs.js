// The tabs of the results: one tab selected, its panel shown; Left / Right / Home / End move
// between the visible tabs (WAI-ARIA tabs pattern, automatic activation).

const KEY_MOVES = {
  ArrowRight: (k, n) => (k + 1) % n,
  ArrowLeft: (k, n) => (k - 1 + n) % n,
  Home: () => 0,
  End: (_, n) => n - 1,
};

export class Tabs {
  /**
   * `tablist`: the element holding the [role=tab] buttons; each names its panel in aria-controls.
   * `onSelect(tab)` is called after a tab has been selected.
   */
  constructor(tablist, { onSelect = () => {} } = {}) {
    this.tabs = [...tablist.querySelectorAll("[role=tab]")];
    this.onSelect = onSelect;
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.select(tab));
      tab.addEventListener("keydown", (event) => this.move(tab, event));
    }
  }

  /** The tab whose id is `id`. */
  byId(id) {
    return this.tabs.find((tab) => tab.id === id);
  }

  isSelected(tab) {
    return tab.getAttribute("aria-selected") === "true";
  }

  select(tab, { focus = false } = {}) {
    for (const other of this.tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    this.onSelect(tab);
  }

  move(tab, event) {
    const visible = this.tabs.filter((t) => !t.hidden);
    const next = KEY_MOVES[event.key]?.(visible.indexOf(tab), visible.length);
    if (next === undefined) return;
    event.preventDefault();
    this.select(visible[next], { focus: true });
  }
}
