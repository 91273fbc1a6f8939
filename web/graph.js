// The graph model: nodes with widget values and incoming links, and its API-format form.
//
// The API format is the file format, so layout lives in `_meta` (title, pos) and so does the seed
// "control after queue" mode (`_meta.control_after_generate`, only where it is not "fixed").
// Each node also carries the state of the latest run (`node.run`), which is never serialized.
// Views listen for events: "node-added", "node-removed", "node-changed" {node, what},
// "links-changed" and "loaded".

import { defaultValue, isLink, missingDefinition, typesCompatible } from "./catalogue.js";

function freshRunState() {
  return { running: false, progress: null, cached: false, elapsedMs: null, error: null, outputs: null, preview: null };
}

export class GraphNode {
  constructor(id, type, def, title, pos) {
    this.id = id;
    this.type = type;
    this.def = def;
    this.title = title;
    this.pos = pos;
    this.values = {}; // widget name → value
    this.links = {}; // input name → {from: node id, slot}
    this.controls = {}; // seed widget name → control mode
    this.extra = {}; // literal inputs the catalogue does not declare, kept so saving loses nothing
    this.run = freshRunState();
  }

  input(name) {
    return this.def.inputs.find((i) => i.name === name);
  }
}

export class Graph extends EventTarget {
  constructor(catalogue) {
    super();
    this.catalogue = catalogue;
    this.nodes = new Map();
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  nextId() {
    const ids = [...this.nodes.keys()].map(Number).filter(Number.isInteger);
    return String(Math.max(0, ...ids) + 1);
  }

  /** Adds a node of a catalogue type with default widget values. */
  addNode(type, pos) {
    const def = this.catalogue.get(type);
    const node = new GraphNode(this.nextId(), type, def, def.displayName, pos);
    for (const input of def.inputs) {
      if (input.kind !== "socket") node.values[input.name] = defaultValue(input);
      if (input.seed) node.controls[input.name] = "randomize";
    }
    this.nodes.set(node.id, node);
    this.emit("node-added", { node });
    return node;
  }

  removeNode(id) {
    if (!this.nodes.delete(id)) return;
    for (const node of this.nodes.values()) {
      for (const [name, link] of Object.entries(node.links)) if (link.from === id) delete node.links[name];
    }
    this.emit("node-removed", { id });
    this.emit("links-changed");
  }

  /** Links an output to an input; returns null, or why the link is refused (naming both types). */
  connect(fromId, slot, toId, inputName) {
    const from = this.nodes.get(fromId);
    const to = this.nodes.get(toId);
    const output = from?.def.outputs[slot];
    const input = to?.input(inputName);
    if (!output || !input) return "that socket no longer exists";
    if (input.kind === "literal") return `input '${inputName}' of ${to.title} cannot take a link`;
    if (!typesCompatible(output.type, input.type)) {
      return `Cannot connect ${from.title}'s ${output.type} output to input '${inputName}' of ${to.title}, `
        + `which takes ${input.type}`;
    }
    if (fromId === toId || this.dependsOn(fromId, toId)) return "that link would make a cycle";
    to.links[inputName] = { from: fromId, slot };
    this.emit("links-changed");
    return null;
  }

  disconnect(toId, inputName) {
    const node = this.nodes.get(toId);
    if (node && node.links[inputName]) {
      delete node.links[inputName];
      this.emit("links-changed");
    }
  }

  /** Whether `id` reads, directly or through other nodes, the outputs of `ancestorId`. */
  dependsOn(id, ancestorId) {
    return this.upstream([id]).has(ancestorId);
  }

  /** The given nodes and every node they read from, directly or not. */
  upstream(ids) {
    const seen = new Set();
    const stack = ids.map(String);
    while (stack.length) {
      const id = stack.pop();
      if (seen.has(id)) continue;
      seen.add(id);
      for (const link of Object.values(this.nodes.get(id)?.links ?? {})) stack.push(link.from);
    }
    return seen;
  }

  /** Every link as {from, slot, to, input}. */
  *links() {
    for (const node of this.nodes.values()) {
      for (const [input, { from, slot }] of Object.entries(node.links)) yield { from, slot, to: node.id, input };
    }
  }

  setValue(node, name, value) {
    node.values[name] = value;
    this.emit("node-changed", { node, what: "values" });
  }

  setControl(node, name, mode) {
    node.controls[name] = mode;
    this.emit("node-changed", { node, what: "values" });
  }

  setTitle(node, title) {
    node.title = title;
    this.emit("node-changed", { node, what: "title" });
  }

  /** Records a change of run state (progress, outputs, errors) on a node. */
  updateRun(id, patch) {
    const node = this.nodes.get(String(id));
    if (!node) return;
    Object.assign(node.run, patch);
    this.emit("node-changed", { node, what: "run" });
  }

  /** Forgets the previous run's states and errors; its outputs stay shown until new ones arrive. */
  resetRun() {
    for (const node of this.nodes.values()) this.updateRun(node.id, { ...freshRunState(), outputs: node.run.outputs });
  }

  /** Seed widgets move on after a prompt is queued, as their control mode says. */
  applyControls() {
    for (const node of this.nodes.values()) {
      for (const [name, mode] of Object.entries(node.controls)) {
        if (mode === "fixed" || node.links[name]) continue;
        const options = node.input(name).options;
        const min = Math.max(options.min ?? 0, Number.MIN_SAFE_INTEGER);
        const max = Math.min(options.max ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
        const value = node.values[name];
        const next = mode === "randomize" ? min + Math.floor(Math.random() * (max - min + 1))
          : mode === "increment" ? Math.min(max, value + (options.step ?? 1))
            : Math.max(min, value - (options.step ?? 1));
        this.setValue(node, name, next);
      }
    }
  }

  clear() {
    for (const id of [...this.nodes.keys()]) this.removeNode(id);
  }

  /** The workflow in ComfyUI's API format, with layout in `_meta`. */
  toApi() {
    const doc = {};
    for (const node of this.nodes.values()) {
      const inputs = {};
      for (const input of node.def.inputs) {
        const link = node.links[input.name];
        if (link) inputs[input.name] = [link.from, link.slot];
        else if (input.name in node.values) inputs[input.name] = node.values[input.name];
      }
      Object.assign(inputs, node.extra);
      const meta = { title: node.title, pos: node.pos.map(Math.round) };
      const controls = Object.fromEntries(Object.entries(node.controls).filter(([, mode]) => mode !== "fixed"));
      if (Object.keys(controls).length) meta.control_after_generate = controls;
      doc[node.id] = { class_type: node.type, inputs, _meta: meta };
    }
    return doc;
  }

  /** Replaces the graph with an API-format document; returns the node types the catalogue lacks. */
  loadApi(doc) {
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) {
      throw new Error("a workflow is a JSON object keyed by node id");
    }
    for (const [id, entry] of Object.entries(doc)) {
      if (!entry || typeof entry.class_type !== "string") throw new Error(`node ${id} has no class_type`);
    }
    this.clear();
    const missing = new Set();
    for (const [id, entry] of Object.entries(doc)) {
      let def = this.catalogue.get(entry.class_type);
      if (!def) {
        missing.add(entry.class_type);
        def = missingDefinition(entry.class_type, entry, outputCount(doc, id));
      }
      const meta = entry._meta ?? {};
      const pos = Array.isArray(meta.pos) ? meta.pos.slice(0, 2).map(Number) : [];
      const node = new GraphNode(String(id), entry.class_type, def, meta.title || def.displayName,
        pos.length === 2 && pos.every(Number.isFinite) ? pos : null);
      const given = entry.inputs ?? {};
      for (const input of def.inputs) {
        const value = given[input.name];
        if (isLink(value)) node.links[input.name] = { from: String(value[0]), slot: value[1] };
        else if (value !== undefined) node.values[input.name] = value;
        // A linked widget keeps a value too, for when its link is removed.
        if (input.kind !== "socket" && !(input.name in node.values)) node.values[input.name] = defaultValue(input);
        // A workflow file's seed is what its author chose: it stays fixed unless the file says otherwise.
        if (input.seed) node.controls[input.name] = meta.control_after_generate?.[input.name] ?? "fixed";
      }
      for (const [name, value] of Object.entries(given)) {
        if (!node.input(name) && !isLink(value)) node.extra[name] = value;
      }
      this.nodes.set(node.id, node);
    }
    for (const node of this.nodes.values()) {
      for (const [name, link] of Object.entries(node.links)) if (!this.nodes.has(link.from)) delete node.links[name];
    }
    placeUnpositioned(this);
    for (const node of this.nodes.values()) this.emit("node-added", { node });
    this.emit("links-changed");
    this.emit("loaded");
    return [...missing];
  }
}

function outputCount(doc, id) {
  let count = 0;
  for (const entry of Object.values(doc)) {
    for (const value of Object.values(entry.inputs ?? {})) {
      if (isLink(value) && String(value[0]) === String(id)) count = Math.max(count, value[1] + 1);
    }
  }
  return count;
}

// Workflows without `_meta.pos` (e.g. exported from ComfyUI's API) are laid out in columns by depth.
function placeUnpositioned(graph) {
  const depth = new Map();
  const depthOf = (node, seen = new Set()) => {
    if (depth.has(node.id)) return depth.get(node.id);
    if (seen.has(node.id)) return 0;
    seen.add(node.id);
    const d = Math.max(-1, ...Object.values(node.links).map((l) => depthOf(graph.nodes.get(l.from), seen))) + 1;
    depth.set(node.id, d);
    return d;
  };
  const rows = new Map();
  for (const node of graph.nodes.values()) {
    if (node.pos) continue;
    const column = depthOf(node);
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    node.pos = [40 + column * 340, 40 + row * 260];
  }
}
