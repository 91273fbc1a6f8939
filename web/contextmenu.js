// Right-click menus: on the canvas (add node, note, group, paste, fit), on nodes (bypass, mute,
// collapse, clone, title, colour, remove) and on groups (title, colour, select, remove).
//
// ContextMenu is a plain list of items {label, action, hint}; CanvasMenus fills it for what was
// clicked. Colours are litegraph's palette, so a file coloured in ComfyUI looks the same here.

import { h } from "./dom.js";
import { MODES } from "./ui_format.js";

export const COLOURS = {
  red: { color: "#322", bgcolor: "#533", groupcolor: "#A88" },
  brown: { color: "#332922", bgcolor: "#593930", groupcolor: "#b06634" },
  green: { color: "#232", bgcolor: "#353", groupcolor: "#8A8" },
  blue: { color: "#223", bgcolor: "#335", groupcolor: "#88A" },
  pale_blue: { color: "#2a363b", bgcolor: "#3f5159", groupcolor: "#3f789e" },
  cyan: { color: "#233", bgcolor: "#355", groupcolor: "#8AA" },
  purple: { color: "#323", bgcolor: "#535", groupcolor: "#a1309b" },
  yellow: { color: "#432", bgcolor: "#653", groupcolor: "#b58b2a" },
  black: { color: "#222", bgcolor: "#000", groupcolor: "#444" },
};

export class ContextMenu {
  constructor(root) {
    this.root = root;
    root.addEventListener("pointerdown", (e) => e.preventDefault()); // keeps focus (and the selection) where it was
    root.addEventListener("click", (e) => {
      const item = e.target.closest("li[data-index]");
      if (!item) return;
      const { action } = this.items[Number(item.dataset.index)];
      this.close();
      action();
    });
    document.addEventListener("pointerdown", (e) => {
      if (!root.hidden && !root.contains(e.target)) this.close();
    }, true);
    document.addEventListener("keydown", (e) => { if (e.key === "Escape") this.close(); });
  }

  /** Shows items [{label, action, hint?, swatch?}] (or "-" for a rule) at a page position. */
  open(clientX, clientY, items) {
    this.items = items;
    this.root.replaceChildren(...items.map((item, i) => {
      if (item === "-") return h("li", "rule");
      const li = h("li", "", "", { "data-index": String(i), "data-testid": "context-item", role: "menuitem" });
      if (item.swatch) li.append(h("span", "swatch", "", { style: `background: ${item.swatch}` }));
      li.append(h("span", "label", item.label), h("span", "hint", item.hint ?? ""));
      return li;
    }));
    this.root.hidden = false;
    this.root.style.left = `${Math.max(0, Math.min(clientX, innerWidth - this.root.offsetWidth - 8))}px`;
    this.root.style.top = `${Math.max(0, Math.min(clientY, innerHeight - this.root.offsetHeight - 8))}px`;
  }

  close() {
    this.root.hidden = true;
  }
}

export class CanvasMenus {
  constructor({ canvas, graph, clipboard, nodeSearch, contextMenu }) {
    Object.assign(this, { canvas, graph, clipboard, nodeSearch, contextMenu });
  }

  openCanvasMenu(event, at) {
    const { graph, canvas, clipboard } = this;
    this.contextMenu.open(event.clientX, event.clientY, [
      { label: "Add node…", hint: "double-click", action: () => this.nodeSearch.open(event.clientX, event.clientY,
        { onPick: (type) => canvas.select([graph.addNode(type, at).id]) }) },
      { label: "Add note", action: () => canvas.select([graph.addNode("Note", at).id]) },
      { label: "Add group", hint: "Ctrl+G", action: () => canvas.groupSelection(at) },
      "-",
      { label: "Paste", hint: "Ctrl+V", action: () => clipboard.paste(at) },
      { label: "Paste with input links", hint: "Ctrl+Shift+V", action: () => clipboard.paste(at, true) },
      "-",
      { label: "Fit view", hint: ".", action: () => canvas.fitView() },
      { label: "Select all", hint: "Ctrl+A", action: () => canvas.selectAll() },
    ]);
  }

  openNodeMenu(event, ids) {
    const { graph, canvas, clipboard } = this;
    const nodes = ids.map((id) => graph.nodes.get(id));
    const all = (test) => nodes.every(test);
    this.contextMenu.open(event.clientX, event.clientY, [
      { label: all((n) => n.mode === MODES.bypassed) ? "Remove bypass" : "Bypass", hint: "Ctrl+B",
        action: () => graph.toggleMode(ids, MODES.bypassed) },
      { label: all((n) => n.mode === MODES.muted) ? "Unmute" : "Mute", hint: "Ctrl+M",
        action: () => graph.toggleMode(ids, MODES.muted) },
      { label: all((n) => n.collapsed) ? "Expand" : "Collapse",
        action: () => graph.setLayout(ids, "collapsed", !all((n) => n.collapsed)) },
      "-",
      { label: "Title…", action: () => canvas.views.get(ids[0]).editTitle() },
      { label: "Colour…", action: () => this.openColours(event, (colour) => graph.setLayout(ids, "colour",
        colour && { color: colour.color, bgcolor: colour.bgcolor })) },
      "-",
      { label: "Copy", hint: "Ctrl+C", action: () => clipboard.copy(new Set(ids)) },
      { label: "Clone", hint: "Alt+drag", action: () => clipboard.cloneSelection() },
      { label: "Group selected", hint: "Ctrl+G", action: () => canvas.groupSelection() },
      { label: "Remove", hint: "Delete", action: () => graph.removeNodes(ids) },
    ]);
  }

  openGroupMenu(event, view) {
    const { graph, canvas } = this;
    this.contextMenu.open(event.clientX, event.clientY, [
      { label: "Title…", action: () => view.editTitle() },
      { label: "Colour…", action: () => this.openColours(event,
        (colour) => graph.updateGroup(view.group, { color: colour?.groupcolor ?? COLOURS.pale_blue.groupcolor })) },
      { label: "Select its nodes", action: () => canvas.select(graph.nodesInGroup(view.group).map((n) => n.id)) },
      { label: "Remove group", action: () => graph.removeGroup(view.group) },
    ]);
  }

  openColours(event, apply) {
    this.contextMenu.open(event.clientX, event.clientY, [
      { label: "No colour", action: () => apply(null) },
      ...Object.entries(COLOURS).map(([name, colour]) => ({
        label: name.replace("_", " "), swatch: colour.groupcolor, action: () => apply(colour),
      })),
    ]);
  }
}
