// The graph model: nodes with widget values, incoming links, layout and mode, groups, and its two
// file forms: ComfyUI's UI format (everything the canvas shows) and the API format (what runs).
//
// The API form is the UI form converted by ui_format.js, the rules the engine follows too, so a
// bypassed or muted node runs here as it would in ComfyUI. Layout lives in the API format's `_meta`
// (title, pos, size) and so does the seed "control after generate" mode. Each node also carries the
// state of the latest run (`node.run`), which is never serialized.
// Views listen for "node-added", "node-removed", "node-changed" {node, what}, "links-changed",
// "groups-changed" and "loaded" {view}; every edit a user makes also emits "edited" {kind, key, undoable}.

import { defaultValue, isLink, missingDefinition, typesCompatible } from "./catalogue.js";
import { MODES, namedWidgetValues, positionalWidgetValues, readLinks, uiToApi } from "./ui_format.js";

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
    this.size = null; // [width, min height] once resized or read from a UI file
    this.mode = MODES.always;
    this.colour = null; // {color, bgcolor} in litegraph's sense: title bar and body
    this.collapsed = false;
    this.values = {}; // widget name → value
    this.links = {}; // input name → {from: node id, slot}
    this.controls = {}; // seed widget name → control mode
    this.extra = {}; // literal inputs the catalogue does not declare, kept so saving loses nothing
    this.rawWidgets = null; // the widgets_values of a node type the catalogue lacks, kept as read
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
    this.groups = []; // {title, bounding: [x, y, w, h], color}
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Announces a user's edit; edits with the same `key` in a row (typing, dragging a value) merge. */
  edited(kind, key = null, undoable = true) {
    this.emit("edited", { kind, key, undoable });
  }

  nextId() {
    const ids = [...this.nodes.keys()].map(Number).filter(Number.isInteger);
    return String(Math.max(0, ...ids) + 1);
  }

  /** Adds a node of a catalogue type with default widget values (seeds randomize, as in ComfyUI). */
  addNode(type, pos) {
    const def = this.catalogue.get(type);
    const node = new GraphNode(this.nextId(), type, def, def.displayName, pos);
    for (const input of def.inputs) {
      if (input.kind !== "socket") node.values[input.name] = defaultValue(input);
      if (input.seed) node.controls[input.name] = "randomize";
    }
    this.nodes.set(node.id, node);
    this.emit("node-added", { node });
    this.edited("add");
    return node;
  }

  removeNodes(ids) {
    const removed = [...ids].map(String).filter((id) => this.nodes.delete(id));
    if (!removed.length) return;
    const gone = new Set(removed);
    for (const node of this.nodes.values()) {
      for (const [name, link] of Object.entries(node.links)) if (gone.has(link.from)) delete node.links[name];
    }
    for (const id of removed) this.emit("node-removed", { id });
    this.emit("links-changed");
    this.edited("remove");
  }

  /** Links an output to an input; returns null, or why the link is refused (naming both types).
   * `record` false: a step of a gesture that records its own edit. */
  connect(fromId, slot, toId, inputName, record = true) {
    const from = this.nodes.get(fromId);
    const to = this.nodes.get(toId);
    const input = to?.input(inputName);
    if (!from?.def.outputs[slot] || !input) return "that socket no longer exists";
    if (input.kind === "literal") return `input '${inputName}' of ${to.title} cannot take a link`;
    const type = this.outputType(fromId, slot);
    if (!typesCompatible(type, input.type)) {
      return `Cannot connect ${from.title}'s ${type} output to input '${inputName}' of ${to.title}, `
        + `which takes ${input.type}`;
    }
    if (fromId === toId || this.dependsOn(fromId, toId)) return "that link would make a cycle";
    to.links[inputName] = { from: fromId, slot };
    this.emit("links-changed");
    if (record) this.edited("connect");
    return null;
  }

  disconnect(toId, inputName, record = true) {
    const node = this.nodes.get(toId);
    if (node && node.links[inputName]) {
      delete node.links[inputName];
      this.emit("links-changed");
      if (record) this.edited("disconnect");
    }
  }

  /** The type an output gives: a Reroute gives what comes into it, as in ComfyUI. */
  outputType(id, slot, seen = new Set()) {
    const node = this.nodes.get(String(id));
    const link = node?.type === "Reroute" && !seen.has(node.id) ? node.links.value : null;
    if (link) return this.outputType(link.from, link.slot, seen.add(node.id));
    return node?.def.outputs[slot]?.type ?? "*";
  }

  /** Whether `id` reads, directly or through other nodes, the outputs of `ancestorId`. */
  dependsOn(id, ancestorId) {
    return this.upstream([id]).has(ancestorId);
  }

  /** The given nodes and every node they read from, directly or not. */
  upstream(ids) {
    const seen = new Set();
    const stack = [...ids].map(String);
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
    this.edited("value", `${node.id}.${name}`);
  }

  setControl(node, name, mode) {
    node.controls[name] = mode;
    this.emit("node-changed", { node, what: "values" });
    this.edited("control");
  }

  setTitle(node, title) {
    node.title = title;
    this.emit("node-changed", { node, what: "title" });
    this.edited("title");
  }

  /** Sets a layout property of nodes (mode, colour, collapsed, size) as one edit. */
  setLayout(ids, property, value) {
    for (const id of ids) {
      const node = this.nodes.get(String(id));
      if (!node) continue;
      node[property] = value;
      this.emit("node-changed", { node, what: "layout" });
    }
    this.edited(property);
  }

  /** Bypass (Ctrl+B) and mute (Ctrl+M) toggle: on for all of `ids` unless all already have it. */
  toggleMode(ids, mode) {
    const nodes = [...ids].map((id) => this.nodes.get(String(id))).filter(Boolean);
    if (!nodes.length) return;
    this.setLayout(nodes.map((n) => n.id), "mode", nodes.every((n) => n.mode === mode) ? MODES.always : mode);
  }

  /** Records that nodes (and groups) were moved or resized by a gesture that has ended. */
  moved() {
    this.edited("move");
  }

  addGroup(bounding, title = "Group") {
    const group = { title, bounding: bounding.map(Math.round), color: "#3f789e" };
    this.groups.push(group);
    this.emit("groups-changed");
    this.edited("group");
    return group;
  }

  updateGroup(group, patch) {
    Object.assign(group, patch);
    this.emit("groups-changed");
    this.edited("group");
  }

  removeGroup(group) {
    this.groups = this.groups.filter((g) => g !== group);
    this.emit("groups-changed");
    this.edited("group");
  }

  /** The nodes whose top-left corner lies inside a group, which move with it. */
  nodesInGroup(group) {
    const [x, y, w, h] = group.bounding;
    return [...this.nodes.values()].filter((n) => n.pos[0] >= x && n.pos[1] >= y && n.pos[0] < x + w
      && n.pos[1] < y + h);
  }

  /** Records a change of run state (progress, outputs, errors) on a node. */
  updateRun(id, patch) {
    const node = this.nodes.get(String(id));
    if (!node) return;
    Object.assign(node.run, patch);
    this.emit("node-changed", { node, what: "run" });
  }

  /** Forgets the previous run's states; its outputs stay shown until new ones arrive, and errors until the
   * next queue (a prompt's validation errors may arrive before the run starts). */
  resetRun() {
    for (const node of this.nodes.values()) {
      this.updateRun(node.id, { ...freshRunState(), outputs: node.run.outputs, error: node.run.error });
    }
  }

  /** Seed widgets move on after a prompt is queued, as their control mode says (not an undoable edit). */
  applyControls() {
    let changed = false;
    for (const node of this.nodes.values()) {
      if (node.mode !== MODES.always) continue;
      for (const [name, mode] of Object.entries(node.controls)) {
        if (mode === "fixed" || node.links[name]) continue;
        const options = node.input(name).options;
        const min = Math.max(options.min ?? 0, Number.MIN_SAFE_INTEGER);
        const max = Math.min(options.max ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
        const value = node.values[name];
        node.values[name] = mode === "randomize" ? min + Math.floor(Math.random() * (max - min + 1))
          : mode === "increment" ? Math.min(max, value + (options.step ?? 1))
            : Math.max(min, value - (options.step ?? 1));
        this.emit("node-changed", { node, what: "values" });
        changed = true;
      }
    }
    if (changed) this.edited("seed", null, false);
  }

  // ---- the UI format ----

  /** The graph (or the nodes `ids` and the links among them) in ComfyUI's UI format. */
  toUi(ids = null, view = null) {
    const chosen = ids ? [...ids].map((id) => this.nodes.get(String(id))).filter(Boolean) : [...this.nodes.values()];
    const links = []; // a part of the graph keeps the links coming into it from outside, for Ctrl+Shift+V
    const outputLinks = new Map(); // "node:slot" → link ids
    const inputSlots = (node) => node.def.inputs.filter((i) => i.kind !== "literal");
    for (const node of chosen) {
      inputSlots(node).forEach((input, targetSlot) => {
        const link = node.links[input.name];
        if (!link) return;
        const id = links.length + 1;
        const type = this.outputType(link.from, link.slot);
        links.push([id, uiId(link.from), link.slot, uiId(node.id), targetSlot, type]);
        const key = `${link.from}:${link.slot}`;
        outputLinks.set(key, [...(outputLinks.get(key) ?? []), id]);
      });
    }
    const linkId = new Map(links.map(([id, , , target, slot]) => [`${target}:${slot}`, id]));
    const nodes = chosen.map((node, order) => {
      const entry = {
        id: uiId(node.id), type: node.type, pos: node.pos.map(Math.round), order, mode: node.mode,
        inputs: inputSlots(node).map((input, slot) => ({
          name: node.type === "Reroute" ? "" : input.name, type: input.type,
          ...(input.kind === "socket" ? {} : { widget: { name: input.name } }),
          link: linkId.get(`${uiId(node.id)}:${slot}`) ?? null,
        })),
        outputs: node.def.outputs.map((output, slot) => ({
          name: node.type === "Reroute" ? "" : output.name, type: this.outputType(node.id, slot),
          links: outputLinks.get(`${node.id}:${slot}`) ?? [], slot_index: slot,
        })),
        properties: { "Node name for S&R": node.type },
        // Values the catalogue cannot place in a positional list are written keyed by name.
        widgets_values: node.rawWidgets ?? (node.def.missing || Object.keys(node.extra).length
          ? { ...node.values, ...node.extra } : positionalWidgetValues(node.values, node.controls, node.def)),
      };
      if (node.title !== node.def.displayName) entry.title = node.title;
      if (node.size) entry.size = node.size.map(Math.round);
      if (node.collapsed) entry.flags = { collapsed: true };
      if (node.colour) Object.assign(entry, node.colour);
      return entry;
    });
    const groups = ids ? [] : this.groups.map((g) => ({ ...g, bounding: [...g.bounding] }));
    const doc = { last_node_id: Math.max(0, ...nodes.map((n) => Number(n.id)).filter(Number.isFinite)),
      last_link_id: links.length, nodes, links, groups, config: {}, extra: {}, version: 0.4 };
    if (view) doc.extra.ds = { scale: view.scale, offset: [view.x / view.scale, view.y / view.scale] };
    return doc;
  }

  /** Replaces the graph with a UI-format document; returns the node types the catalogue lacks. */
  loadUi(doc, { fit = true } = {}) {
    const { nodes, missing } = this.nodesFromUi(doc);
    const ds = doc.extra?.ds;
    const view = !fit && ds?.offset && Number.isFinite(ds.scale)
      ? { scale: ds.scale, x: ds.offset[0] * ds.scale, y: ds.offset[1] * ds.scale } : null;
    this.replace(nodes, (doc.groups ?? []).map(readGroup).filter(Boolean), { fit, view });
    return missing;
  }

  /** GraphNodes (ids as in the document) of a UI-format document, PrimitiveNodes folded into the values they feed. */
  nodesFromUi(doc) {
    const links = readLinks(doc);
    const byId = new Map(doc.nodes.map((n) => [String(n.id), n]));
    const missing = new Set();
    const nodes = [];
    for (const entry of doc.nodes) {
      if (entry.type === "PrimitiveNode") continue;
      let def = this.catalogue.get(entry.type);
      if (!def) {
        missing.add(entry.type);
        def = uiMissingDefinition(entry);
      }
      const pos = Array.isArray(entry.pos) ? entry.pos : Object.values(entry.pos ?? {});
      const node = new GraphNode(String(entry.id), entry.type, def, entry.title || def.displayName,
        pos.length >= 2 ? pos.slice(0, 2).map(Number) : null);
      const { values, controls } = namedWidgetValues(entry.widgets_values, def.missing ? null : def);
      node.mode = [MODES.muted, MODES.bypassed].includes(entry.mode) ? entry.mode : MODES.always;
      node.size = Array.isArray(entry.size) ? entry.size.slice(0, 2).map(Number) : null;
      node.collapsed = Boolean(entry.flags?.collapsed);
      if (entry.color || entry.bgcolor) node.colour = { color: entry.color, bgcolor: entry.bgcolor };
      if (def.missing) node.rawWidgets = entry.widgets_values ?? [];
      const inputs = def.inputs.filter((i) => i.kind !== "literal");
      for (const [index, slot] of (entry.inputs ?? []).entries()) {
        const link = slot.link == null ? null : links.get(slot.link);
        if (!link) continue;
        const origin = byId.get(String(link.origin_id)); // absent for a copied part's links from outside it
        const name = entry.type === "Reroute" ? inputs[0]?.name : slot.widget?.name ?? slot.name ?? inputs[index]?.name;
        if (origin?.type === "PrimitiveNode") values[name] = (origin.widgets_values ?? [null])[0];
        else node.links[name] = { from: String(link.origin_id), slot: link.origin_slot };
      }
      for (const [name, value] of Object.entries(values)) {
        if (!def.missing && !node.input(name)) node.extra[name] = value;
      }
      this.fillDefaults(node, values, controls, "fixed");
      nodes.push(node);
    }
    return { nodes, missing: [...missing] };
  }

  /** Nodes of a UI-format fragment (the clipboard) added with new ids near `at`; returns their ids. */
  paste(fragment, at, keepInputs) {
    const { nodes } = this.nodesFromUi(fragment);
    if (!nodes.length) return [];
    const x0 = Math.min(...nodes.map((n) => n.pos[0]));
    const y0 = Math.min(...nodes.map((n) => n.pos[1]));
    const renamed = new Map();
    let next = Number(this.nextId());
    for (const node of nodes) renamed.set(node.id, String(next++));
    for (const node of nodes) {
      node.id = renamed.get(node.id);
      node.pos = [at[0] + node.pos[0] - x0, at[1] + node.pos[1] - y0];
      for (const [name, link] of Object.entries(node.links)) {
        if (renamed.has(link.from)) link.from = renamed.get(link.from);
        else if (!(keepInputs && this.nodes.has(link.from))) delete node.links[name];
      }
      this.nodes.set(node.id, node);
      this.emit("node-added", { node });
    }
    // Links to nodes outside the fragment were kept only if they still type-check (Ctrl+Shift+V).
    const added = new Set(renamed.values());
    for (const { from, slot, to, input } of [...this.links()].filter((l) => added.has(l.to))) {
      const node = this.nodes.get(to);
      const output = this.nodes.get(from)?.def.outputs[slot];
      if (!output || !typesCompatible(output.type, node.input(input).type)) delete node.links[input];
    }
    this.emit("links-changed");
    this.edited("paste");
    return [...added];
  }

  // ---- the API format ----

  /** The workflow in ComfyUI's API format, with layout in `_meta`: what is queued and what Save writes. */
  toApi() {
    const doc = uiToApi(this.toUi(), this.catalogue);
    for (const [id, entry] of Object.entries(doc)) {
      const node = this.nodes.get(id);
      entry._meta.pos = entry._meta.pos.map(Math.round);
      if (node.size) entry._meta.size = node.size.map(Math.round);
    }
    return doc;
  }

  /** Replaces the graph with an API-format document; returns the node types the catalogue lacks. */
  loadApi(doc, { fit = true } = {}) {
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) {
      throw new Error("a workflow is a JSON object keyed by node id");
    }
    for (const [id, entry] of Object.entries(doc)) {
      if (!entry || typeof entry.class_type !== "string") throw new Error(`node ${id} has no class_type`);
    }
    const missing = new Set();
    const nodes = [];
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
      if (Array.isArray(meta.size)) node.size = meta.size.slice(0, 2).map(Number);
      const given = entry.inputs ?? {};
      const values = {};
      for (const input of def.inputs) {
        const value = given[input.name];
        if (isLink(value)) node.links[input.name] = { from: String(value[0]), slot: value[1] };
        else if (value !== undefined) values[input.name] = value;
      }
      for (const [name, value] of Object.entries(given)) {
        if (!node.input(name) && !isLink(value)) node.extra[name] = value;
      }
      // A workflow file's seed is what its author chose: it stays fixed unless the file says otherwise.
      this.fillDefaults(node, values, meta.control_after_generate ?? {}, "fixed");
      nodes.push(node);
    }
    this.replace(nodes, [], { fit });
    return [...missing];
  }

  /** Gives a node its values, a default for each widget without one (a linked widget keeps a value
   * too, for when its link is removed), and a control mode for each seed. */
  fillDefaults(node, values, controls, defaultControl) {
    for (const input of node.def.inputs) {
      if (input.kind === "socket") continue;
      node.values[input.name] = input.name in values ? values[input.name] : defaultValue(input);
      if (input.seed) node.controls[input.name] = controls[input.name] ?? defaultControl;
    }
  }

  replace(nodes, groups, { fit, view = null }) {
    for (const id of [...this.nodes.keys()]) {
      this.nodes.delete(id);
      this.emit("node-removed", { id });
    }
    for (const node of nodes) this.nodes.set(node.id, node);
    for (const node of nodes) {
      for (const [name, link] of Object.entries(node.links)) if (!this.nodes.has(link.from)) delete node.links[name];
    }
    this.groups = groups;
    placeUnpositioned(this);
    for (const node of nodes) this.emit("node-added", { node });
    this.emit("links-changed");
    this.emit("groups-changed");
    this.emit("loaded", { fit, view });
  }

  clear() {
    this.replace([], [], { fit: true });
    this.edited("clear");
  }
}

// UI-format node ids are numbers where they can be.
function uiId(id) {
  return /^\d+$/.test(id) ? Number(id) : id;
}

function readGroup(group) {
  const b = group?.bounding;
  if (!Array.isArray(b) || b.length < 4 || !b.every(Number.isFinite)) return null;
  return { ...group, title: group.title ?? "Group", bounding: b.slice(0, 4) };
}

// A node type the catalogue lacks, read from a UI file: its slots as sockets, its widget values kept as read.
function uiMissingDefinition(entry) {
  const def = missingDefinition(entry.type, { inputs: {} }, 0);
  def.inputs = (entry.inputs ?? []).map((slot) => ({ name: slot.widget?.name ?? slot.name, optional: false,
    kind: "socket", type: String(slot.type ?? "*"), options: {} }));
  def.outputs = (entry.outputs ?? []).map((slot) => ({ type: String(slot.type ?? "*"), name: slot.name ?? "*",
    isList: false }));
  return def;
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
