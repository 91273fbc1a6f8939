// The node catalogue (GET /object_info, ComfyUI's shape) read into definitions the editor draws.
//
// Every input becomes {name, kind, type, optional, options}: kind "socket" takes a link only;
// kinds INT, FLOAT, STRING, BOOLEAN and COMBO are widgets that may also take a link of their type
// (as in ComfyUI, where any widget can be fed by another node). `forceInput` makes a widget type a socket.

const WIDGET_KINDS = new Set(["INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"]);
const SEED_NAMES = new Set(["seed", "noise_seed"]);

export const CONTROL_MODES = ["fixed", "increment", "decrement", "randomize"];

// The editor's own node types, which never run (ComfyUI's front end has the same): notes and reroutes.
const EDITOR_NODES = {
  Note: { display_name: "Note", category: "utils", description: "A note on the canvas; it does not run.",
    input: { required: { text: ["STRING", { multiline: true }] } }, output: [] },
  MarkdownNote: { display_name: "Markdown Note", category: "utils", description: "A note on the canvas.",
    input: { required: { text: ["STRING", { multiline: true }] } }, output: [] },
  Reroute: { display_name: "Reroute", category: "utils", description: "A point a link passes through.",
    input: { required: { value: ["*"] } }, output: ["*"], output_name: [""] },
};

/** Map of node type name → definition: the server's catalogue and the editor's own nodes. */
export function readCatalogue(objectInfo) {
  const defs = new Map();
  for (const [name, info] of Object.entries({ ...EDITOR_NODES, ...objectInfo })) {
    defs.set(name, nodeDefinition(name, info));
  }
  return defs;
}

function nodeDefinition(name, info) {
  const sections = info.input ?? {};
  const order = info.input_order ?? {};
  const inputs = [];
  for (const section of ["required", "optional"]) {
    const specs = sections[section] ?? {};
    for (const inputName of order[section] ?? Object.keys(specs)) {
      if (specs[inputName] === undefined) continue;
      inputs.push(inputDefinition(inputName, specs[inputName], section === "optional"));
    }
  }
  return {
    name,
    displayName: info.display_name || name,
    category: info.category ?? "",
    description: info.description ?? "",
    outputNode: Boolean(info.output_node),
    deprecated: Boolean(info.deprecated),
    missing: false,
    editorOnly: name in EDITOR_NODES,
    inputs,
    outputs: (info.output ?? []).map((type, i) => ({
      type: Array.isArray(type) ? "COMBO" : String(type),
      name: info.output_name?.[i] ?? String(type),
      isList: Boolean(info.output_is_list?.[i]),
    })),
  };
}

function inputDefinition(name, spec, optional) {
  const [head, options = {}] = Array.isArray(spec) ? spec : [spec];
  if (Array.isArray(head)) return { name, optional, kind: "COMBO", type: "COMBO", choices: head.map(String), options };
  if (head === "COMBO") { // the newer spelling: ["COMBO", {options: [...]}]
    return { name, optional, kind: "COMBO", type: "COMBO", choices: options.options ?? [], options };
  }
  if (WIDGET_KINDS.has(head) && !options.forceInput) {
    const seed = head === "INT" && Boolean(options.control_after_generate || SEED_NAMES.has(name));
    return { name, optional, kind: head, type: head, options, seed };
  }
  return { name, optional, kind: "socket", type: String(head), options };
}

/** A placeholder definition for a node type the server does not know, shaped after its API entry. */
export function missingDefinition(type, entry, outputCount) {
  const inputs = Object.entries(entry.inputs ?? {}).map(([name, value]) => isLink(value)
    ? { name, optional: false, kind: "socket", type: "*", options: {} }
    : { name, optional: false, kind: "literal", type: "*", options: {} });
  const outputs = Array.from({ length: outputCount }, () => ({ type: "*", name: "*", isList: false }));
  return {
    name: type, displayName: type, category: "", description: "", outputNode: false, deprecated: false, missing: true,
    inputs, outputs,
  };
}

/** Whether an API-format input value is a link [source id, output index]. */
export function isLink(value) {
  return Array.isArray(value) && value.length === 2 && ["string", "number"].includes(typeof value[0])
    && Number.isInteger(value[1]);
}

/** The engine's rule: `*` matches anything, comma-separated unions match on any overlap. */
export function typesCompatible(outputType, inputType) {
  if (outputType === "*" || inputType === "*") return true;
  const accepted = new Set(inputType.split(","));
  return outputType.split(",").some((t) => accepted.has(t));
}

/** The value a fresh widget starts with. */
export function defaultValue(input) {
  const { options } = input;
  switch (input.kind) {
    case "INT":
    case "FLOAT":
      return options.default ?? Math.min(Math.max(0, options.min ?? 0), options.max ?? 0);
    case "STRING":
      return options.default ?? "";
    case "BOOLEAN":
      return options.default ?? false;
    case "COMBO":
      return options.default ?? input.choices[0] ?? "";
    default:
      return undefined;
  }
}

// Colours come from the socket types the node packs register (GET /socket_types); the widget
// kinds are the editor's own; any other type gets a stable colour from its name.
const TYPE_COLOURS = {
  INT: "#86efac", FLOAT: "#7dd3fc", STRING: "#fcd34d", BOOLEAN: "#fda4af", COMBO: "#cbd5e1", "*": "#9ca3af",
};

/** Takes the registered socket types ({name: {color}}) as the colour source. */
export function setSocketColours(types) {
  for (const [name, info] of Object.entries(types)) if (info?.color) TYPE_COLOURS[name] = info.color;
}

export function socketColour(type) {
  if (TYPE_COLOURS[type]) return TYPE_COLOURS[type];
  let hash = 0;
  for (const ch of type) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360}, 60%, 65%)`;
}
