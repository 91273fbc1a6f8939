// A search field over a list, floating above the page: the add-node menu and the combo drop-down.
//
// Typing narrows the list (the subclass's `entries()` gives [{value, label, hint, title}] for the
// current query), arrow keys move, Enter or a click picks, Escape or a click outside closes.

import { h } from "./dom.js";

export class SearchList {
  constructor(root, { placeholder, label, fieldTestId, itemTestId, empty }) {
    this.root = root;
    this.itemTestId = itemTestId;
    this.emptyText = empty;
    this.title = h("div", "menu-title");
    this.title.hidden = true;
    this.field = h("input", "", "", { type: "text", placeholder, "aria-label": label, spellcheck: "false",
      ...(fieldTestId ? { "data-testid": fieldTestId } : {}) });
    this.list = h("ul", "", "", { role: "listbox" });
    root.append(this.title, this.field, this.list);
    root.hidden = true;
    this.request = null;
    this.field.addEventListener("input", () => { if (this.request) this.render(); });
    this.field.addEventListener("keydown", (e) => this.key(e));
    this.list.addEventListener("pointerdown", (e) => e.preventDefault()); // keep focus in the field
    this.list.addEventListener("click", (e) => {
      const item = e.target.closest("li[data-value]");
      if (item) this.pick(item.dataset.value);
    });
    document.addEventListener("pointerdown", (e) => {
      if (!root.hidden && !root.contains(e.target)) this.close();
    }, true);
  }

  /** Shows the list for `request` ({onPick(value), ...what entries() reads}) at a page position. */
  show(clientX, clientY, request) {
    this.request = request;
    this.field.value = "";
    this.root.hidden = false;
    this.render();
    this.root.style.left = `${Math.max(0, Math.min(clientX, innerWidth - this.root.offsetWidth - 8))}px`;
    this.root.style.top = `${Math.max(0, Math.min(clientY, innerHeight - this.root.offsetHeight - 8))}px`;
    this.field.focus();
    this.list.querySelector(".active")?.scrollIntoView({ block: "nearest" });
  }

  close() {
    this.field.blur(); // now, not at the next layout: the keys that follow are the canvas's
    this.root.hidden = true;
    this.request = null;
  }

  pick(value) {
    const { onPick } = this.request;
    this.close();
    onPick(value);
  }

  render() {
    const entries = this.entries(this.field.value.toLowerCase().split(/\s+/).filter(Boolean));
    const active = Math.max(0, entries.findIndex((e) => e.active));
    this.list.replaceChildren(...entries.map((entry, i) => {
      const item = h("li", i === active ? "active" : "", "", { "data-value": entry.value, role: "option",
        "data-testid": this.itemTestId, "aria-selected": String(Boolean(entry.active)), title: entry.title ?? "" });
      item.append(h("span", "name", entry.label));
      if (entry.hint) item.append(h("span", "category", entry.hint));
      return item;
    }));
    if (!entries.length) this.list.append(h("li", "empty", this.emptyText));
  }

  key(event) {
    const items = [...this.list.querySelectorAll("li[data-value]")];
    const index = items.findIndex((li) => li.classList.contains("active"));
    if (event.key === "Escape") {
      event.preventDefault(); // a search field would clear itself first
      this.close();
    } else if (event.key === "Enter" && items[index]) {
      this.pick(items[index].dataset.value);
    } else if ((event.key === "ArrowDown" || event.key === "ArrowUp") && items.length) {
      event.preventDefault();
      items[index]?.classList.remove("active");
      const next = items[(index + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length];
      next.classList.add("active");
      next.scrollIntoView({ block: "nearest" });
    }
  }
}
