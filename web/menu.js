// The add-node menu: a search box over the catalogue, opened where the user asked for a node.
//
// Every word typed must appear in the node's display name, type name or category; names that
// start with the query come first. Arrow keys move, Enter picks, Escape or a click outside closes.

import { h } from "./dom.js";

const MAX_ITEMS = 60;

export class NodeMenu {
  constructor(root, catalogue) {
    this.root = root;
    this.catalogue = catalogue;
    this.title = h("div", "menu-title");
    this.search = h("input", "", "", {
      type: "search", placeholder: "Search nodes…", "data-testid": "node-search", "aria-label": "search nodes",
    });
    this.list = h("ul", "", "", { role: "listbox" });
    root.append(this.title, this.search, this.list);
    this.request = null;
    this.active = 0;

    this.search.addEventListener("input", () => this.render());
    this.search.addEventListener("keydown", (e) => this.key(e));
    this.list.addEventListener("pointerdown", (e) => e.preventDefault()); // keep focus in the search box
    this.list.addEventListener("click", (e) => {
      const item = e.target.closest("li[data-node-type]");
      if (item) this.pick(item.dataset.nodeType);
    });
    document.addEventListener("pointerdown", (e) => {
      if (!root.hidden && !root.contains(e.target)) this.close();
    }, true);
  }

  /** Opens at a page position; `filter(def)` narrows the list, `onPick(type)` receives the choice. */
  open(clientX, clientY, { filter = () => true, label = "", onPick }) {
    this.request = { filter, onPick };
    this.title.textContent = label;
    this.title.hidden = !label;
    this.search.value = "";
    this.root.hidden = false;
    this.render();
    const { innerWidth, innerHeight } = window;
    this.root.style.left = `${Math.max(0, Math.min(clientX, innerWidth - this.root.offsetWidth - 8))}px`;
    this.root.style.top = `${Math.max(0, Math.min(clientY, innerHeight - this.root.offsetHeight - 8))}px`;
    this.search.focus();
  }

  close() {
    this.root.hidden = true;
    this.request = null;
  }

  pick(type) {
    const { onPick } = this.request;
    this.close();
    onPick(type);
  }

  matches() {
    const words = this.search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const query = words.join(" ");
    const ranked = [];
    for (const def of this.catalogue.values()) {
      if (!this.request.filter(def) || def.deprecated) continue;
      const text = `${def.displayName} ${def.name} ${def.category}`.toLowerCase();
      if (!words.every((w) => text.includes(w))) continue;
      const starts = def.displayName.toLowerCase().startsWith(query) || def.name.toLowerCase().startsWith(query);
      ranked.push({ def, rank: starts ? 0 : 1 });
    }
    ranked.sort((a, b) => a.rank - b.rank || a.def.displayName.localeCompare(b.def.displayName));
    return ranked.slice(0, MAX_ITEMS).map((r) => r.def);
  }

  render() {
    const defs = this.matches();
    this.active = 0;
    this.list.replaceChildren(...defs.map((def, i) => {
      const item = h("li", i === 0 ? "active" : "", "", {
        "data-node-type": def.name, "data-testid": "node-menu-item", role: "option", title: def.description,
      });
      item.append(h("span", "name", def.displayName), h("span", "category", def.category));
      return item;
    }));
    if (!defs.length) this.list.append(h("li", "empty", "no matching node"));
  }

  key(event) {
    const items = [...this.list.querySelectorAll("li[data-node-type]")];
    if (event.key === "Escape") {
      this.close();
    } else if (event.key === "Enter" && items[this.active]) {
      this.pick(items[this.active].dataset.nodeType);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!items.length) return;
      items[this.active].classList.remove("active");
      this.active = (this.active + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items[this.active].classList.add("active");
      items[this.active].scrollIntoView({ block: "nearest" });
    }
  }
}
