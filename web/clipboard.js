// Copy, paste and clone: the copied nodes are a UI-format fragment in localStorage, as in ComfyUI,
// so they can be pasted into another tab. Ctrl+V pastes the nodes and the links among them;
// Ctrl+Shift+V also keeps the links that came into them from nodes outside the copy.

const KEY = "sigmagraph.clipboard";
const CLONE_OFFSET = 30;

export class Clipboard {
  constructor(graph, canvas) {
    this.graph = graph;
    this.canvas = canvas;
  }

  /** Copies nodes; false when there is nothing to copy. */
  copy(ids) {
    if (!ids.size) return false;
    localStorage.setItem(KEY, JSON.stringify(this.graph.toUi(ids)));
    return true;
  }

  /** Pastes the copied nodes with their top-left corner at a graph point and selects them. */
  paste(at, keepInputs = false) {
    const text = localStorage.getItem(KEY);
    if (!text) return [];
    const ids = this.graph.paste(JSON.parse(text), at, keepInputs);
    this.canvas.select(ids);
    return ids;
  }

  /** Copies of nodes, with their input links, at the same place shifted by `offset`; returns their ids. */
  clone(ids, offset = 0) {
    const nodes = [...ids].map((id) => this.graph.nodes.get(id)).filter(Boolean);
    if (!nodes.length) return [];
    const at = [Math.min(...nodes.map((n) => n.pos[0])) + offset, Math.min(...nodes.map((n) => n.pos[1])) + offset];
    return this.graph.paste(this.graph.toUi(ids), at, true);
  }

  /** Clones the selection beside itself (the context menu's "Clone"). */
  cloneSelection() {
    this.canvas.select(this.clone(this.canvas.selection, CLONE_OFFSET));
  }
}
