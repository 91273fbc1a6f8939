// The DOM of one node: title, typed sockets, widgets, run state and outputs, and its layout
// (mode, colour, collapsed, size). A Reroute is drawn as a small dot between its two sockets.
//
// Nodes are elements inside the canvas's transformed layer, so the browser lays them out, keeps
// overlapping nodes in order and gives widgets real form controls; the canvas draws the links
// between socket elements and handles pointer gestures.

import { socketColour } from "./catalogue.js";
import { editInPlace, h } from "./dom.js";
import { MODES } from "./ui_format.js";
import { createControl, createWidget } from "./widgets.js";

const MIN_WIDTH = 220;
const MAX_WIDTH = 380;
const CHAR_WIDTH = 7;
// UI outputs drawn otherwise than as text: images here, others by the modules that add them (lab_views.js).
export const HIDDEN_OUTPUT_KEYS = new Set(["images", "animated", "gifs"]);

export class NodeView {
  constructor(node, env) {
    this.node = node;
    this.env = env;
    this.widgets = [];
    this.el = h("div", node.type === "Reroute" ? "node reroute" : "node", "",
      { "data-node-id": node.id, "data-node-type": node.type, "data-testid": "node" });
    this.width = node.type === "Reroute" ? 40 : nodeWidth(node.def);
    this.build();
    this.place();
    this.update("values");
    this.update("run");
    this.update("layout");
  }

  build() {
    const { node } = this;
    const title = h("div", "node-title", "", { title: node.def.description || node.type });
    this.titleText = h("span", "title-text", node.title);
    this.badge = h("span", "badge");
    title.append(this.titleText, this.badge);
    this.progress = h("div", "node-progress");
    this.progressBar = h("div", "bar");
    this.progress.append(this.progressBar);

    const sockets = h("div", "node-sockets");
    const socketInputs = node.def.inputs.filter((i) => i.kind === "socket");
    for (let row = 0; row < Math.max(socketInputs.length, node.def.outputs.length); row++) {
      const line = h("div", "socket-row");
      const input = socketInputs[row];
      const output = node.def.outputs[row];
      const inCell = h("div", "in-cell");
      if (input) inCell.append(this.inputSocket(input), h("span", "label", input.name));
      const outCell = h("div", "out-cell");
      if (output) {
        const socket = h("span", "socket out", "", { "data-output": String(row), "data-type": output.type,
          title: output.type });
        socket.style.setProperty("--c", socketColour(output.type));
        outCell.append(h("span", "label", output.isList ? `${output.name} ☰` : output.name), socket);
      }
      line.append(inCell, outCell);
      sockets.append(line);
    }

    const widgets = h("div", "node-widgets");
    for (const input of node.def.inputs.filter((i) => i.kind !== "socket")) {
      const row = h("div", "widget-row", "", { "data-widget": input.name });
      const widget = createWidget(node, input, this.env);
      // Any widget can be fed by a link of its type instead; a missing node's values cannot.
      if (input.kind !== "literal") row.append(this.inputSocket(input));
      row.append(widget.el, h("span", "linked-note", `${input.name} ← linked`));
      this.widgets.push(widget);
      widgets.append(row);
      if (input.seed) {
        const control = createControl(node, input, this.env);
        const controlRow = h("div", "widget-row control-row", "", { "data-widget": `${input.name}:control` });
        controlRow.append(control.el);
        this.widgets.push(control);
        widgets.append(controlRow);
      }
    }

    this.output = h("div", "node-output");
    this.values = h("div", "node-values", "", { "data-testid": "node-output" });
    this.images = h("div", "node-images");
    this.preview = h("img", "live-preview", "", { alt: "sampling preview", "data-testid": "node-preview" });
    this.output.append(this.values, this.images, this.preview);
    this.error = h("div", "node-error", "", { "data-testid": "node-error" });
    this.el.append(title, this.progress, sockets, widgets, this.output, this.error,
      h("div", "resize-handle", "", { title: "drag to resize" }));
    this.el.classList.toggle("missing", node.def.missing);
  }

  inputSocket(input) {
    const widget = input.kind !== "socket";
    const socket = h("span", `socket in${widget ? " widget-socket" : ""}${input.optional ? " optional" : ""}`, "",
      { "data-input": input.name, "data-type": input.type, title: `${input.name}: ${input.type}` });
    socket.style.setProperty("--c", socketColour(input.type));
    return socket;
  }

  place() {
    this.el.style.left = `${this.node.pos[0]}px`;
    this.el.style.top = `${this.node.pos[1]}px`;
  }

  update(what) {
    if (what === "title") this.titleText.textContent = this.node.title;
    if (what === "values") for (const widget of this.widgets) widget.refresh();
    if (what === "run") this.showRun();
    if (what === "layout") this.showLayout();
  }

  showLayout() {
    const { node } = this;
    this.el.classList.toggle("bypassed", node.mode === MODES.bypassed);
    this.el.classList.toggle("muted", node.mode === MODES.muted);
    this.el.classList.toggle("collapsed", node.collapsed);
    this.el.style.setProperty("--title-bg", node.colour?.color ?? "");
    this.el.style.setProperty("--node-bg", node.colour?.bgcolor ?? "");
    this.applySize();
  }

  applySize() {
    const [width, height] = this.node.size ?? [this.width, 0];
    this.el.style.width = `${this.node.type === "Reroute" ? this.width : width}px`;
    this.el.style.minHeight = this.node.collapsed || !height ? "" : `${height}px`;
  }

  /** [x0, y0, x1, y1] of the node in graph coordinates. */
  box() {
    const [x, y] = this.node.pos;
    return [x, y, x + this.el.offsetWidth, y + this.el.offsetHeight];
  }

  outputColour(slot) {
    return this.el.querySelector(`.socket.out[data-output="${slot}"]`)?.style.getPropertyValue("--c") ?? "#9ca3af";
  }

  /** Marks linked inputs (their widgets give way to the link) and outputs in use. */
  showLinks(usedOutputs) {
    for (const socket of this.el.querySelectorAll(".socket.in")) {
      const link = this.node.links[socket.dataset.input];
      socket.classList.toggle("linked", Boolean(link));
      if (link) socket.dataset.link = `${link.from}:${link.slot}`;
      else delete socket.dataset.link;
      socket.closest(".widget-row")?.classList.toggle("linked", Boolean(link));
    }
    for (const socket of this.el.querySelectorAll(".socket.out")) {
      socket.classList.toggle("linked", usedOutputs.has(Number(socket.dataset.output)));
    }
  }

  showRun() {
    const { run } = this.node;
    this.el.classList.toggle("running", run.running);
    this.el.classList.toggle("cached", run.cached);
    this.el.classList.toggle("failed", Boolean(run.error));
    this.progress.hidden = run.progress === null;
    this.progressBar.style.width = `${Math.round((run.progress ?? 0) * 100)}%`;
    this.badge.textContent = this.node.def.missing ? "missing" : run.cached ? "cached"
      : run.elapsedMs !== null ? formatDuration(run.elapsedMs) : "";
    this.error.textContent = run.error ?? "";
    this.error.hidden = !run.error;
    this.showOutputs();
  }

  showOutputs() {
    const outputs = this.node.run.outputs ?? {};
    const lines = Object.entries(outputs).filter(([key]) => !HIDDEN_OUTPUT_KEYS.has(key))
      .map(([key, value]) => `${key}: ${formatValue(value)}`);
    this.values.textContent = lines.join("\n");
    this.values.hidden = lines.length === 0;
    const urls = (outputs.images ?? []).map((image) => this.env.api.viewUrl(image));
    const shown = [...this.images.children].map((img) => img.getAttribute("src"));
    this.images.classList.toggle("batch", urls.length > 1);
    if (urls.join("\n") !== shown.join("\n")) {
      this.images.replaceChildren(...urls.map((src) => h("img", "", "", { src, alt: "output image",
        "data-testid": "node-image" })));
    }
    const preview = this.node.run.preview;
    this.preview.hidden = !preview;
    if (preview && this.preview.getAttribute("src") !== preview) this.preview.src = preview;
    this.output.hidden = lines.length === 0 && urls.length === 0 && !preview;
  }

  /** Centre of a socket in graph coordinates: kind "in" with an input name, or "out" with a slot. */
  socketPosition(kind, key) {
    if (this.node.collapsed) { // a collapsed node's links meet at the ends of its title bar
      return [this.node.pos[0] + (kind === "in" ? 0 : this.el.offsetWidth), this.node.pos[1] + 13];
    }
    const socket = this.el.querySelector(kind === "in" ? `.socket.in[data-input="${CSS.escape(key)}"]`
      : `.socket.out[data-output="${key}"]`);
    if (!socket) return null;
    let x = socket.offsetWidth / 2;
    let y = socket.offsetHeight / 2;
    for (let el = socket; el && el !== this.el; el = el.offsetParent) {
      x += el.offsetLeft;
      y += el.offsetTop;
    }
    return [this.node.pos[0] + x, this.node.pos[1] + y];
  }

  /** Lets the user retitle the node in place (saved as `_meta.title`). */
  editTitle() {
    editInPlace(this.titleText, this.node.title, "node title", (title) => this.env.graph.setTitle(this.node, title));
  }
}

// Wide enough for the title, a row of input and output names, and each widget's name beside its value.
function nodeWidth(def) {
  const longest = (items) => Math.max(0, ...items.map((i) => i.name.length));
  const sockets = def.inputs.filter((i) => i.kind === "socket");
  const widgets = def.inputs.filter((i) => i.kind !== "socket").map((i) => i.name.length + valueChars(i));
  const wide = def.inputs.some((i) => i.options.multiline || i.options.image_upload) ? 300 : 0;
  const needed = Math.max(def.displayName.length * CHAR_WIDTH + 80,
    (longest(sockets) + longest(def.outputs)) * CHAR_WIDTH + 60, ...widgets.map((n) => n * CHAR_WIDTH + 70), wide);
  return Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, needed));
}

// Characters a widget's value usually needs: seeds run to 16 digits, choices to their longest name
// (file lists may be empty here while the workflow names a file).
function valueChars(input) {
  if (input.seed) return 16;
  if (input.kind === "COMBO") return Math.min(24, Math.max(16, ...input.choices.map((c) => c.length)));
  return input.kind === "STRING" ? 12 : 8;
}

function formatDuration(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function formatValue(value) {
  const items = Array.isArray(value) ? value : [value];
  return items.map((v) => (typeof v === "string" ? v : typeof v === "number" ? String(Number(v.toPrecision(8)))
    : JSON.stringify(v))).join(", ");
}
