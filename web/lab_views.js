// The sampler lab on the canvas (issue 15): an inline sigma curve on every schedule node, and the
// strip of recorded steps on RecordTrajectory, where clicking a step creates a branch from it.
//
// The curve's numbers come from the server (POST /lab/sigmas, nodes/packs/lab/schedule_view.py),
// which calls the node's own function with its widget values: the curve is what a run would use,
// and no schedule is computed a second time here. Both parts exist only when the server has the
// lab pack (its nodes are in the catalogue).

import { h } from "./dom.js";
import { HIDDEN_OUTPUT_KEYS } from "./nodeview.js";

const RECORDER = "RecordTrajectory";
const BRANCH = "BranchFromStep";
const BRANCH_SAMPLER = "KSamplerSelect";
const STRIP_KEY = "trajectory"; // RecordTrajectory's UI output: [{filename, subfolder, type, step, sigma}]
const CURVE_WIDTH = 200;
const CURVE_HEIGHT = 56;
const BRANCH_ROOM = [700, 180]; // room for the sampler and the branch side by side
const ROOM_GAP = 30;
const REFRESH_MS = 150; // typing a value sends one request, not one per key

HIDDEN_OUTPUT_KEYS.add(STRIP_KEY);

export class LabViews {
  constructor({ api, graph, canvas, catalogue }) {
    this.api = api;
    this.graph = graph;
    this.canvas = canvas;
    this.scheduleNodes = new Set();
    this.pending = new Map(); // node id → timer of its next curve request
    this.asked = new Map(); // node id → the body of its latest request (older answers are dropped)
    if (!catalogue.has(RECORDER)) return;
    graph.addEventListener("node-added", ({ detail }) => this.show(detail.node));
    graph.addEventListener("node-changed", ({ detail }) => {
      if (detail.what === "values") this.refreshCurve(detail.node);
      if (detail.what === "run") this.showSteps(detail.node);
    });
    graph.addEventListener("links-changed", () => {
      for (const node of graph.nodes.values()) this.refreshCurve(node);
    });
    graph.addEventListener("node-removed", ({ detail }) => this.asked.delete(detail.id));
    this.readScheduleNodes();
  }

  async readScheduleNodes() {
    const { ok, body } = await this.api.request("/lab/schedule_nodes").catch(() => ({ ok: false }));
    this.scheduleNodes = new Set(ok && Array.isArray(body) ? body : []);
    for (const node of this.graph.nodes.values()) this.show(node);
  }

  show(node) {
    this.refreshCurve(node);
    this.showSteps(node);
  }

  // ---- the inline schedule curve ----

  /** Asks for the node's sigmas shortly after its values or links change. */
  refreshCurve(node) {
    if (!this.scheduleNodes.has(node.type)) return;
    clearTimeout(this.pending.get(node.id));
    this.pending.set(node.id, setTimeout(() => this.drawCurve(node), REFRESH_MS));
  }

  async drawCurve(node) {
    this.pending.delete(node.id);
    const box = this.part(node, "lab-curve", "schedule-curve");
    if (!box) return;
    const widgets = node.def.inputs.filter((i) => i.kind !== "socket");
    const linked = widgets.filter((i) => node.links[i.name]).map((i) => i.name);
    if (linked.length) { // a value another node gives is known only in a run
      showCurve(box, null, `curve after a run: ${linked.join(", ")} linked`);
      return;
    }
    const body = JSON.stringify({ class_type: node.type,
      inputs: Object.fromEntries(widgets.map((i) => [i.name, node.values[i.name]])) });
    this.asked.set(node.id, body);
    const answer = await this.api.request("/lab/sigmas", { method: "POST", body,
      headers: { "Content-Type": "application/json" } }).catch((error) => ({ ok: false, body: { error } }));
    if (this.asked.get(node.id) !== body) return; // the values changed meanwhile
    if (!answer.ok) {
      showCurve(box, null, answer.body?.error?.message ?? "no curve: the server did not answer");
      return;
    }
    const { sigmas, model } = answer.body;
    const steps = sigmas.length - 1;
    const plural = steps === 1 ? "" : "s";
    const range = `σ ${formatSigma(sigmas[0])} → ${formatSigma(sigmas[steps])}, ${steps} step${plural}`;
    // A model-dependent schedule is drawn for the server's stand-in model, which the note names.
    showCurve(box, sigmas, model ? `${range}, for ${model}` : range);
  }

  // ---- the strip of recorded steps ----

  showSteps(node) {
    if (node.type !== RECORDER) return;
    const entries = node.run.outputs?.[STRIP_KEY] ?? [];
    const strip = this.part(node, "lab-steps", "trajectory-steps");
    if (!strip) return;
    strip.hidden = entries.length === 0;
    strip.replaceChildren(...entries.map((entry) => {
      const title = `step ${entry.step}, σ ${formatSigma(entry.sigma)}: click to branch from here`;
      const button = h("button", "lab-step", "", { type: "button", title, "data-step": String(entry.step),
        "data-testid": "trajectory-step" });
      button.append(h("img", "", "", { src: this.api.viewUrl(entry), alt: `step ${entry.step}` }),
        h("span", "", String(entry.step)));
      button.addEventListener("click", () => this.branch(node, entry.step));
      return button;
    }));
  }

  /** A BranchFromStep reading the recorder's trajectory at `step`, with the recorder's guider and a new
   * sampler node, placed in the first free room below the recorder and selected. */
  branch(recorder, step) {
    const { graph, canvas } = this;
    const [x, y] = this.freeRoom(recorder);
    const sampler = graph.addNode(BRANCH_SAMPLER, [x, y]);
    const branch = graph.addNode(BRANCH, [x + canvas.views.get(sampler.id).el.offsetWidth + ROOM_GAP, y]);
    graph.setValue(branch, "step", step);
    graph.connect(recorder.id, recorder.def.outputs.findIndex((o) => o.name === STRIP_KEY), branch.id, "trajectory");
    graph.connect(sampler.id, 0, branch.id, "sampler");
    const guider = recorder.links.guider;
    if (guider) graph.connect(guider.from, guider.slot, branch.id, "guider");
    canvas.select([branch.id]);
  }

  /** The top-left corner of the first BRANCH_ROOM-sized place below the node that no node covers. */
  freeRoom(node) {
    const boxes = [...this.canvas.views.values()].map((v) => v.box());
    const [x, , , bottom] = this.canvas.views.get(node.id).box();
    let y = bottom + ROOM_GAP;
    for (;;) {
      const hit = boxes.find((b) => b[0] < x + BRANCH_ROOM[0] && x < b[2] && b[1] < y + BRANCH_ROOM[1] && y < b[3]);
      if (!hit) return [x, y];
      y = hit[3] + ROOM_GAP;
    }
  }

  /** The node's element of class `className`, made on first use above its outputs; null without a view. */
  part(node, className, testId) {
    const view = this.canvas.views.get(node.id);
    if (!view) return null;
    let el = view.el.querySelector(`.${className}`);
    if (!el) {
      el = h("div", className, "", { "data-testid": testId });
      el.addEventListener("pointerdown", (e) => e.stopPropagation()); // a click here is not a node drag
      view.output.before(el);
    }
    return el;
  }
}

/** Draws sigmas against step, the largest at the top (or only the note, without sigmas). */
function showCurve(box, sigmas, note) {
  const svgNs = "http://www.w3.org/2000/svg";
  box.replaceChildren();
  if (sigmas?.length) {
    const top = Math.max(...sigmas) || 1;
    const last = Math.max(1, sigmas.length - 1);
    const points = sigmas.map((s, i) => `${((i / last) * CURVE_WIDTH).toFixed(2)},`
      + `${(CURVE_HEIGHT - (s / top) * CURVE_HEIGHT).toFixed(2)}`);
    const svg = document.createElementNS(svgNs, "svg");
    svg.setAttribute("viewBox", `-2 -2 ${CURVE_WIDTH + 4} ${CURVE_HEIGHT + 4}`);
    svg.setAttribute("preserveAspectRatio", "none");
    const line = document.createElementNS(svgNs, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
    box.append(svg);
  }
  box.dataset.sigmas = sigmas ? JSON.stringify(sigmas) : "";
  box.append(h("div", "lab-note", note));
}

function formatSigma(value) {
  return Number(value.toPrecision(4)).toString();
}
