// The canvas: the node and group views, the view transform (pan, zoom, fit), and the selection.
//
// A <canvas> under the node layer draws the grid and the links (drawing.js); the node layer holds
// one GroupView per group and one NodeView per node, and is moved with a CSS transform, so graph
// coordinates are the layer's own pixels. Pointer gestures live in gestures.js.

import { drawCanvas } from "./drawing.js";
import { GroupView } from "./groupview.js";
import { NodeView } from "./nodeview.js";

export const MIN_SCALE = 0.1;
export const MAX_SCALE = 3;
// Node text is 12 px: below 11/12 zoom it falls under 11 px on screen, so the graph opens no smaller.
const READABLE_SCALE = 11 / 12;
const FIT_MARGIN = 40;

export class Canvas extends EventTarget {
  constructor(viewport, graph, env) {
    super();
    this.viewport = viewport;
    this.graph = graph;
    this.env = env;
    this.linkCanvas = viewport.querySelector("canvas");
    this.layer = viewport.querySelector(".layer");
    this.groupLayer = viewport.querySelector(".group-layer");
    this.hint = viewport.querySelector(".empty-hint");
    this.view = { x: 0, y: 0, scale: 1 };
    this.views = new Map();
    this.groupViews = [];
    this.selection = new Set();
    this.pendingLink = null; // {from: {node, slot}} or {to: {node, input}}, plus {type, point}
    this.box = null; // the box-select rectangle in graph coordinates, while dragged
    this.drawQueued = false;
    this.nodeSizes = new ResizeObserver(() => this.requestDraw());

    graph.addEventListener("node-added", ({ detail }) => this.addView(detail.node));
    graph.addEventListener("node-removed", ({ detail }) => this.removeView(detail.id));
    graph.addEventListener("node-changed", ({ detail }) => this.views.get(detail.node.id)?.update(detail.what));
    graph.addEventListener("links-changed", () => this.showLinks());
    graph.addEventListener("groups-changed", () => this.showGroups());
    graph.addEventListener("loaded", ({ detail }) => requestAnimationFrame(() => {
      if (detail.view) this.setView(detail.view);
      else if (detail.fit) this.openView();
      else this.requestDraw();
    }));
    new ResizeObserver(() => this.resize()).observe(viewport);
  }

  // ---- views ----

  addView(node) {
    const view = new NodeView(node, this.env);
    this.views.set(node.id, view);
    this.layer.append(view.el);
    this.nodeSizes.observe(view.el);
    this.hint.hidden = true;
  }

  removeView(id) {
    const view = this.views.get(id);
    if (!view) return;
    this.nodeSizes.unobserve(view.el);
    view.el.remove();
    this.views.delete(id);
    this.selection.delete(id);
    this.hint.hidden = this.views.size > 0;
  }

  showLinks() {
    const used = new Map();
    for (const link of this.graph.links()) {
      if (!used.has(link.from)) used.set(link.from, new Set());
      used.get(link.from).add(link.slot);
    }
    for (const [id, view] of this.views) view.showLinks(used.get(id) ?? new Set());
    this.requestDraw();
  }

  showGroups() {
    for (const view of this.groupViews) view.el.remove();
    this.groupViews = this.graph.groups.map((group) => new GroupView(group, this.env));
    this.groupLayer.replaceChildren(...this.groupViews.map((v) => v.el));
  }

  groupView(el) {
    return this.groupViews.find((v) => v.el === el);
  }

  // ---- coordinates and the view ----

  toGraph(clientX, clientY) {
    const rect = this.viewport.getBoundingClientRect();
    const { x, y, scale } = this.view;
    return [(clientX - rect.left - x) / scale, (clientY - rect.top - y) / scale];
  }

  setView(view) {
    this.view = { ...view };
    const { x, y, scale } = this.view;
    const transform = `translate(${x}px, ${y}px) scale(${scale})`;
    this.layer.style.transform = transform;
    this.groupLayer.style.transform = transform;
    this.requestDraw();
    this.dispatchEvent(new CustomEvent("view-changed", { detail: this.view }));
  }

  /** The view a graph opens with: all of it if that is readable, else its top-left corner at a readable zoom. */
  openView() {
    this.fitView(READABLE_SCALE);
  }

  /** Frames every node, at most at 100 % and at least at `minScale`; a graph too big for it starts top-left. */
  fitView(minScale = MIN_SCALE) {
    const rect = this.viewport.getBoundingClientRect();
    const bounds = this.bounds();
    if (!bounds) {
      this.setView({ x: 0, y: 0, scale: 1 });
      return;
    }
    const [x0, y0, x1, y1] = bounds;
    const [width, height] = [x1 - x0, y1 - y0];
    const fit = Math.min(1, (rect.width - 2 * FIT_MARGIN) / width, (rect.height - 2 * FIT_MARGIN) / height);
    const scale = Math.min(MAX_SCALE, Math.max(minScale, fit));
    const centre = (room, size, start) => (size * scale <= room - 2 * FIT_MARGIN
      ? (room - size * scale) / 2 - start * scale : FIT_MARGIN - start * scale);
    this.setView({ scale, x: centre(rect.width, width, x0), y: centre(rect.height, height, y0) });
  }

  /** [x0, y0, x1, y1] around every node and group in graph coordinates, or null for an empty graph. */
  bounds() {
    const boxes = [...this.views.values()].map((v) => v.box())
      .concat(this.graph.groups.map(({ bounding: [x, y, w, h] }) => [x, y, x + w, y + h]));
    if (!boxes.length) return null;
    return [0, 1, 2, 3].map((i) => (i < 2 ? Math.min : Math.max)(...boxes.map((b) => b[i])));
  }

  /** Zooms by `factor` about a point of the viewport (client coordinates). */
  zoomAbout(clientX, clientY, factor) {
    const rect = this.viewport.getBoundingClientRect();
    const [cx, cy] = [clientX - rect.left, clientY - rect.top];
    const { x, y, scale } = this.view;
    const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale * factor));
    this.setView({ scale: next, x: cx - ((cx - x) / scale) * next, y: cy - ((cy - y) / scale) * next });
  }

  /** Read-only geometry of a node in page (CSS pixel) coordinates, for tests and tools. */
  geometry(id) {
    const view = this.views.get(String(id));
    if (!view) return null;
    const box = (el) => {
      const r = el.getBoundingClientRect();
      return { x: r.x, y: r.y, width: r.width, height: r.height, cx: r.x + r.width / 2, cy: r.y + r.height / 2 };
    };
    const all = (selector, key) => Object.fromEntries(
      [...view.el.querySelectorAll(selector)].map((el) => [key(el), box(el)]));
    return {
      id: view.node.id,
      type: view.node.type,
      rect: box(view.el),
      title: box(view.el.querySelector(".node-title")),
      inputs: all(".socket.in", (el) => el.dataset.input),
      outputs: Object.values(all(".socket.out", (el) => el.dataset.output)),
      widgets: all(".widget-row", (el) => el.dataset.widget),
      resize: box(view.el.querySelector(".resize-handle")),
    };
  }

  // ---- selection ----

  select(ids) {
    this.selection = new Set([...ids].map(String));
    for (const [id, view] of this.views) view.el.classList.toggle("selected", this.selection.has(id));
  }

  selectAll() {
    this.select(this.views.keys());
  }

  deleteSelected() {
    this.graph.removeNodes(this.selection);
  }

  /** A new group framing the selected nodes (or an empty one at a point), named by the user. */
  groupSelection(at) {
    const boxes = [...this.selection].map((id) => this.views.get(id).box());
    const pad = 20;
    const bounding = boxes.length
      ? [Math.min(...boxes.map((b) => b[0])) - pad, Math.min(...boxes.map((b) => b[1])) - pad - 30,
        Math.max(...boxes.map((b) => b[2])) - Math.min(...boxes.map((b) => b[0])) + 2 * pad,
        Math.max(...boxes.map((b) => b[3])) - Math.min(...boxes.map((b) => b[1])) + 2 * pad + 30]
      : [at[0], at[1], 400, 300];
    this.graph.addGroup(bounding);
  }

  // ---- drawing ----

  resize() {
    const dpr = window.devicePixelRatio || 1;
    this.linkCanvas.width = Math.round(this.viewport.clientWidth * dpr);
    this.linkCanvas.height = Math.round(this.viewport.clientHeight * dpr);
    this.requestDraw();
  }

  requestDraw() {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      drawCanvas(this);
      this.dispatchEvent(new CustomEvent("drawn"));
    });
  }
}
