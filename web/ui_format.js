// ComfyUI's UI (litegraph) format: its rules, shared with engine/litegraph.py and engine/ui_format.py.
//
// The same cases (tests/web/ui_format_cases.json) run through this module and through the engine's
// converter in tests/web/test_ui_format_spec.py, so the two cannot drift apart. The rules: UI node
// ids stay the node ids; `widgets_values` are positional over the widget inputs (required, then
// optional), with an extra value after a seed's "control after generate" widget (kept here as
// `_meta.control_after_generate`) and after an image-upload button ("image"); widget inputs turned
// into sockets take their link; Reroutes are followed; PrimitiveNode values become literals; muted
// nodes (mode 2) are dropped with what they feed; a bypassed node (mode 4) passes one of its inputs
// through: the same slot if its type fits, else the first input of the wanted type, else the first
// that fits. Subgraphs are flattened by the engine only: the editor refuses them with a message.

import { CONTROL_MODES } from "./catalogue.js";

export const MODES = { always: 0, muted: 2, bypassed: 4 };
const UI_ONLY_TYPES = new Set(["Note", "MarkdownNote", "PrimitiveNode", "Reroute"]);
const CONTROL_VALUES = new Set(CONTROL_MODES);
const LINK_FIELDS = ["id", "origin_id", "origin_slot", "target_id", "target_slot", "type"];
const WILDCARDS = new Set(["", "*", 0, null, undefined]);

export function isUiFormat(doc) {
  return Boolean(doc) && typeof doc === "object" && Array.isArray(doc.nodes) && "links" in doc;
}

/** Refuses what the editor cannot read (subgraphs); returns the document's links by id. */
export function readLinks(doc) {
  if (doc.definitions?.subgraphs?.length) {
    throw new Error("this UI workflow uses subgraphs, which the editor cannot open yet; "
      + "run it with `sigmagraph run`, or export it in API format from ComfyUI");
  }
  return new Map((doc.links ?? []).map((link) => {
    const l = Array.isArray(link) ? Object.fromEntries(LINK_FIELDS.map((f, i) => [f, link[i]])) : link;
    return [l.id, l];
  }));
}

/** The widget inputs of a definition, in the order of `widgets_values`. */
export function widgetInputs(def) {
  return def.inputs.filter((input) => input.kind !== "socket");
}

/** A node's widget values by input name, and its seeds' control modes, read from `widgets_values`. */
export function namedWidgetValues(widgetsValues, def) {
  const controls = {};
  if (widgetsValues && !Array.isArray(widgetsValues)) return { values: { ...widgetsValues }, controls };
  if (!def) return { values: {}, controls };
  const list = widgetsValues ?? [];
  const values = {};
  let i = 0;
  for (const widget of widgetInputs(def)) {
    if (i >= list.length) break;
    values[widget.name] = list[i++];
    if (i >= list.length) continue;
    if (widget.seed && CONTROL_VALUES.has(list[i])) controls[widget.name] = list[i++];
    else if (widget.options.image_upload && list[i] === "image") i++;
  }
  return { values, controls };
}

/** The positional `widgets_values` of named values: the inverse of namedWidgetValues. */
export function positionalWidgetValues(values, controls, def) {
  const list = [];
  for (const widget of widgetInputs(def)) {
    list.push(values[widget.name]);
    if (widget.seed) list.push(controls[widget.name] ?? "fixed");
    else if (widget.options.image_upload) list.push("image");
  }
  return list;
}

// Litegraph's isValidConnection: equal types, a wildcard, or comma-separated lists sharing one.
function connects(a, b) {
  if (WILDCARDS.has(a) || WILDCARDS.has(b) || a === b) return true;
  const left = new Set(String(a).toLowerCase().split(","));
  return String(b).toLowerCase().split(",").some((t) => left.has(t));
}

/** The input index a bypassed node passes to its output `slot` for a consumer of type `wanted`. */
function bypassInput(node, slot, wanted) {
  const inputs = node.inputs ?? [];
  if (!inputs.length) return null;
  if (wanted === "*" || wanted === "") return slot < inputs.length ? slot : 0;
  const outType = node.outputs?.[slot]?.type ?? wanted;
  const fits = (s) => connects(s.type, outType) && connects(s.type, wanted);
  if (slot < inputs.length && fits(inputs[slot])) return slot;
  const exact = inputs.findIndex((s) => s.type === wanted);
  if (exact >= 0) return exact;
  const any = inputs.findIndex(fits);
  return any >= 0 ? any : null;
}

/** The API-format workflow of a UI-format document (throws on what cannot be converted). */
export function uiToApi(doc, catalogue) {
  const links = readLinks(doc);
  const nodes = new Map(doc.nodes.map((n) => [String(n.id), n]));

  // What a link carries: [node id, slot] for a real output, {literal} for a PrimitiveNode, or null.
  function source(linkId, wanted, seen = new Set()) {
    const link = linkId == null ? undefined : links.get(linkId);
    if (!link || seen.has(linkId)) return null;
    seen.add(linkId);
    const origin = nodes.get(String(link.origin_id));
    if (!origin || origin.mode === MODES.muted) return null;
    if (origin.mode === MODES.bypassed) {
      const index = bypassInput(origin, link.origin_slot, wanted);
      return index === null ? null : source(origin.inputs[index].link, wanted, seen);
    }
    if (origin.type === "Reroute") return source(origin.inputs?.[0]?.link, wanted, seen);
    if (origin.type === "PrimitiveNode") return { literal: (origin.widgets_values ?? [null])[0] };
    return [String(origin.id), link.origin_slot];
  }

  const api = {};
  for (const node of doc.nodes) {
    if (node.mode === MODES.muted || node.mode === MODES.bypassed || UI_ONLY_TYPES.has(node.type)) continue;
    const def = catalogue.get(node.type);
    const { values: inputs, controls } = namedWidgetValues(node.widgets_values, def);
    for (const slot of node.inputs ?? []) {
      const name = slot.widget?.name ?? slot.name;
      const resolved = source(slot.link, slot.type ?? "*");
      if (resolved && "literal" in resolved) inputs[name] = resolved.literal;
      else if (resolved) inputs[name] = resolved;
      else if (slot.link != null) delete inputs[name]; // linked to something muted: missing, as in ComfyUI
    }
    const meta = { title: node.title || def?.displayName || node.type };
    if (node.pos) meta.pos = (Array.isArray(node.pos) ? node.pos : Object.values(node.pos)).slice(0, 2);
    if (Object.keys(controls).length) meta.control_after_generate = controls;
    api[String(node.id)] = { class_type: node.type, inputs, _meta: meta };
  }
  return api;
}
