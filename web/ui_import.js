// ComfyUI's UI (litegraph) format converted to the API format, by the rules of engine/ui_format.py:
// UI node ids stay the node ids; `widgets_values` are read positionally over the widget inputs
// (required, then optional), skipping the seed's "control after generate" value (kept here as
// `_meta.control_after_generate`) and the image-upload button's value; widget inputs turned into
// sockets take their link; Reroutes are followed; PrimitiveNode values become literals; muted
// nodes are dropped; bypassed nodes pass their matching-type input through.

const MUTED = 2;
const BYPASSED = 4;
const UI_ONLY_TYPES = new Set(["Note", "MarkdownNote", "PrimitiveNode", "Reroute"]);
const CONTROL_VALUES = new Set(["fixed", "increment", "decrement", "randomize"]);
const LINK_FIELDS = ["id", "origin_id", "origin_slot", "target_id", "target_slot", "type"];

export function isUiFormat(doc) {
  return Boolean(doc) && typeof doc === "object" && Array.isArray(doc.nodes) && "links" in doc;
}

/** The API-format workflow of a UI-format document (throws on what cannot be converted). */
export function uiToApi(doc, catalogue) {
  if (doc.definitions?.subgraphs?.length) {
    throw new Error("this UI workflow uses subgraphs, which cannot be converted yet; "
      + "export it in API format from ComfyUI instead");
  }
  const nodes = new Map(doc.nodes.map((n) => [String(n.id), n]));
  const links = new Map((doc.links ?? []).map((link) => {
    const l = Array.isArray(link) ? Object.fromEntries(LINK_FIELDS.map((f, i) => [f, link[i]])) : link;
    return [l.id, l];
  }));

  // What a link carries: [node id, slot] for a real output, {literal} for a PrimitiveNode, or null.
  function source(linkId, seen = new Set()) {
    const link = linkId == null ? undefined : links.get(linkId);
    if (!link || seen.has(linkId)) return null;
    seen.add(linkId);
    const origin = nodes.get(String(link.origin_id));
    if (!origin || origin.mode === MUTED) return null;
    if (origin.type === "Reroute") return source(origin.inputs?.[0]?.link, seen);
    if (origin.type === "PrimitiveNode") return { literal: (origin.widgets_values ?? [null])[0] };
    if (origin.mode === BYPASSED) {
      const outType = origin.outputs?.[link.origin_slot]?.type ?? link.type;
      const match = (origin.inputs ?? []).find((i) => i.type === outType && i.link != null);
      return match ? source(match.link, seen) : null;
    }
    return [String(origin.id), link.origin_slot];
  }

  const api = {};
  for (const node of doc.nodes) {
    if (node.mode === MUTED || node.mode === BYPASSED || UI_ONLY_TYPES.has(node.type)) continue;
    const def = catalogue.get(node.type);
    const { inputs, controls } = def ? widgetValues(node, def) : { inputs: {}, controls: {} };
    for (const slot of node.inputs ?? []) {
      const name = slot.widget?.name ?? slot.name;
      const resolved = source(slot.link);
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

function widgetValues(node, def) {
  const controls = {};
  if (node.widgets_values && !Array.isArray(node.widgets_values)) { // already keyed by widget name
    return { inputs: { ...node.widgets_values }, controls };
  }
  const values = node.widgets_values ?? [];
  const inputs = {};
  let i = 0;
  for (const widget of def.inputs.filter((input) => input.kind !== "socket")) {
    if (i >= values.length) break;
    inputs[widget.name] = values[i++];
    if (i >= values.length) continue;
    if (widget.seed && CONTROL_VALUES.has(values[i])) controls[widget.name] = values[i++];
    else if (widget.options.image_upload && values[i] === "image") i++;
  }
  return { inputs, controls };
}
