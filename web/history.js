// Undo and redo: a snapshot of the graph in the UI format after each edit the graph announces.
//
// Edits with the same key in a row within a second (typing in a field, dragging a number) are one
// step; an edit that is not undoable (seeds moving on after a queue) updates the present snapshot.
// Restoring a snapshot keeps the view and the nodes' run states (outputs, timings).

const MERGE_MS = 1000;
const MAX_STEPS = 200;

export class History extends EventTarget {
  constructor(graph) {
    super();
    this.graph = graph;
    this.reset();
    graph.addEventListener("edited", ({ detail }) => { if (!this.restoring) this.record(detail); });
  }

  snapshot() {
    return JSON.stringify(this.graph.toUi());
  }

  /** Forgets every step: the graph as it is now is where undo stops. */
  reset() {
    this.undoStack = [];
    this.redoStack = [];
    this.present = this.snapshot();
    this.last = { key: null, time: 0 };
  }

  record({ key, undoable }) {
    const next = this.snapshot();
    if (next === this.present) return;
    const now = performance.now();
    const merge = !undoable || (key !== null && key === this.last.key && now - this.last.time < MERGE_MS);
    if (!merge) {
      this.undoStack.push(this.present);
      if (this.undoStack.length > MAX_STEPS) this.undoStack.shift();
      this.redoStack = [];
    }
    this.present = next;
    this.last = { key, time: now };
  }

  undo() {
    return this.step(this.undoStack, this.redoStack);
  }

  redo() {
    return this.step(this.redoStack, this.undoStack);
  }

  step(from, to) {
    if (!from.length) return false;
    to.push(this.present);
    this.present = from.pop();
    this.last = { key: null, time: 0 };
    const previous = new Map(this.graph.nodes);
    this.restoring = true;
    try {
      this.graph.loadUi(JSON.parse(this.present), { fit: false });
    } finally {
      this.restoring = false;
    }
    for (const node of this.graph.nodes.values()) {
      const before = previous.get(node.id);
      if (before?.type === node.type) this.graph.updateRun(node.id, before.run);
    }
    this.dispatchEvent(new CustomEvent("restored"));
    return true;
  }
}
