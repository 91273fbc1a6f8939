// The canvas: pan and zoom, selection, dragging nodes, drawing and making links.
//
// A <canvas> under the node layer draws the grid and the links; the node layer holds one NodeView
// per node and is moved with a CSS transform, so graph coordinates are the layer's own pixels.
// Gestures: drag empty space or with the middle button to pan, wheel to zoom, click / shift-click
// to select, drag a node to move the selection, drag from a socket to link (dropping on empty
// space opens the add-node menu for a node that fits), drag a linked input away to unlink.

import { typesCompatible } from "./catalogue.js";
import { NodeView } from "./nodeview.js";

const MIN_SCALE = 0.1;
const MAX_SCALE = 3;
const GRID = 20;
const CLICK_SLOP = 3;

export class Canvas {
  constructor(viewport, graph, env, menu) {
    this.viewport = viewport;
    this.graph = graph;
    this.env = env;
    this.menu = menu;
    this.linkCanvas = viewport.querySelector("canvas");
    this.layer = viewport.querySelector(".layer");
    this.hint = viewport.querySelector(".empty-hint");
    this.view = { x: 0, y: 0, scale: 1 };
    this.views = new Map();
    this.selection = new Set();
    this.gesture = null; // {move(event), end(event)} while a pointer is held
    this.pendingLink = null; // {from: {node, slot}} or {to: {node, input}}, plus {type, point}
    this.drawQueued = false;
    this.nodeSizes = new ResizeObserver(() => this.requestDraw());

    graph.addEventListener("node-added", ({ detail }) => this.addView(detail.node));
    graph.addEventListener("node-removed", ({ detail }) => this.removeView(detail.id));
    graph.addEventListener("node-changed", ({ detail }) => this.views.get(detail.node.id)?.update(detail.what));
    graph.addEventListener("links-changed", () => this.showLinks());
    graph.addEventListener("loaded", () => requestAnimationFrame(() => this.fitView()));

    viewport.addEventListener("pointerdown", (e) => this.pointerDown(e));
    viewport.addEventListener("pointermove", (e) => this.gesture?.move(e));
    viewport.addEventListener("pointerup", (e) => this.endGesture(e));
    viewport.addEventListener("pointercancel", () => this.cancelGesture());
    viewport.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    viewport.addEventListener("dblclick", (e) => this.doubleClick(e));
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

  // ---- coordinates ----

  toGraph(clientX, clientY) {
    const rect = this.viewport.getBoundingClientRect();
    const { x, y, scale } = this.view;
    return [(clientX - rect.left - x) / scale, (clientY - rect.top - y) / scale];
  }

  applyView() {
    const { x, y, scale } = this.view;
    this.layer.style.transform = `translate(${x}px, ${y}px) scale(${scale})`;
    this.requestDraw();
  }

  /** Frames every node, at most at 100 %. */
  fitView() {
    const rect = this.viewport.getBoundingClientRect();
    if (!this.views.size) {
      this.view = { x: 0, y: 0, scale: 1 };
    } else {
      const boxes = [...this.views.values()].map((v) => [v.node.pos[0], v.node.pos[1],
        v.node.pos[0] + v.el.offsetWidth, v.node.pos[1] + v.el.offsetHeight]);
      const [x0, y0] = [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1]))];
      const [x1, y1] = [Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))];
      const margin = 40;
      const [width, height] = [x1 - x0, y1 - y0];
      const scale = Math.max(MIN_SCALE,
        Math.min(1, (rect.width - 2 * margin) / width, (rect.height - 2 * margin) / height));
      this.view = {
        scale, x: (rect.width - width * scale) / 2 - x0 * scale, y: (rect.height - height * scale) / 2 - y0 * scale,
      };
    }
    this.applyView();
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
    };
  }

  // ---- selection ----

  select(ids) {
    this.selection = new Set(ids);
    for (const [id, view] of this.views) view.el.classList.toggle("selected", this.selection.has(id));
  }

  selectAll() {
    this.select(this.views.keys());
  }

  deleteSelected() {
    for (const id of [...this.selection]) this.graph.removeNode(id);
  }

  // ---- gestures ----

  pointerDown(event) {
    if (event.button === 1) {
      event.preventDefault();
      this.startGesture(event, this.panGesture(event));
      return;
    }
    if (event.button !== 0 || event.target.closest(".widget, .widget-stack, .title-edit")) return;
    const socket = event.target.closest(".socket");
    const nodeEl = event.target.closest(".node");
    if (socket) this.startGesture(event, this.linkGesture(event, socket, nodeEl.dataset.nodeId));
    else if (nodeEl) this.startGesture(event, this.nodeGesture(event, nodeEl.dataset.nodeId));
    else {
      if (!event.shiftKey) this.select([]);
      this.startGesture(event, this.panGesture(event));
    }
  }

  startGesture(event, gesture) {
    this.viewport.setPointerCapture(event.pointerId);
    this.gesture = gesture;
  }

  endGesture(event) {
    const gesture = this.gesture;
    this.gesture = null;
    gesture?.end(event);
  }

  // The browser took the pointer away (a touch turned into a scroll, a system dialog): nothing is dropped.
  cancelGesture() {
    this.gesture = null;
    this.pendingLink = null;
    this.layer.classList.remove("linking");
    this.requestDraw();
  }

  panGesture(start) {
    const { x, y } = this.view;
    return {
      move: (e) => {
        this.view.x = x + e.clientX - start.clientX;
        this.view.y = y + e.clientY - start.clientY;
        this.applyView();
      },
      end: () => {},
    };
  }

  nodeGesture(start, id) {
    if (start.shiftKey) {
      const selection = new Set(this.selection);
      if (selection.has(id)) selection.delete(id);
      else selection.add(id);
      this.select(selection);
    } else if (!this.selection.has(id)) {
      this.select([id]);
    }
    const el = this.views.get(id).el;
    if (el !== this.layer.lastElementChild) this.layer.append(el); // the node in hand comes to the front
    const moving = [...this.selection].map((nid) => this.views.get(nid))
      .map((view) => ({ view, from: [...view.node.pos] }));
    let moved = false;
    return {
      move: (e) => {
        const dx = (e.clientX - start.clientX) / this.view.scale;
        const dy = (e.clientY - start.clientY) / this.view.scale;
        moved ||= Math.hypot(e.clientX - start.clientX, e.clientY - start.clientY) > CLICK_SLOP;
        if (!moved) return;
        for (const { view, from } of moving) {
          view.node.pos = [from[0] + dx, from[1] + dy];
          view.place();
        }
        this.requestDraw();
      },
      // A plain click on one node of a group selects just that node.
      end: () => { if (!moved && !start.shiftKey) this.select([id]); },
    };
  }

  linkGesture(start, socket, nodeId) {
    const node = this.graph.nodes.get(nodeId);
    if (socket.classList.contains("out")) {
      const slot = Number(socket.dataset.output);
      this.pendingLink = { from: { node: nodeId, slot }, type: node.def.outputs[slot].type };
    } else {
      const name = socket.dataset.input;
      const link = node.links[name];
      if (link) {
        // Picking up a linked input carries its link away; dropping it on empty space removes it.
        this.graph.disconnect(nodeId, name);
        const source = this.graph.nodes.get(link.from);
        const type = source.def.outputs[link.slot].type;
        this.pendingLink = { from: { node: link.from, slot: link.slot }, type, detached: true };
      } else {
        this.pendingLink = { to: { node: nodeId, input: name }, type: node.input(name).type };
      }
    }
    this.markCompatibleSockets();
    return {
      move: (e) => {
        this.pendingLink.point = this.toGraph(e.clientX, e.clientY);
        this.requestDraw();
      },
      end: (e) => {
        const pending = this.pendingLink;
        this.pendingLink = null;
        this.layer.classList.remove("linking");
        this.requestDraw();
        // A click on a socket is not a drop: a link picked up from an input goes back where it was.
        const { from, detached } = pending;
        if (Math.hypot(e.clientX - start.clientX, e.clientY - start.clientY) > CLICK_SLOP) this.dropLink(pending, e);
        else if (detached) this.graph.connect(from.node, from.slot, nodeId, socket.dataset.input);
      },
    };
  }

  markCompatibleSockets() {
    const { from, type } = this.pendingLink;
    this.layer.classList.add("linking");
    for (const socket of this.layer.querySelectorAll(".socket")) {
      const opposite = socket.classList.contains(from ? "in" : "out");
      socket.classList.toggle("compatible", opposite && (from ? typesCompatible(type, socket.dataset.type)
        : typesCompatible(socket.dataset.type, type)));
    }
  }

  dropLink(pending, event) {
    const target = document.elementFromPoint(event.clientX, event.clientY);
    const socket = target?.closest(".socket");
    const nodeEl = target?.closest(".node");
    const node = nodeEl && this.graph.nodes.get(nodeEl.dataset.nodeId);
    const { from, to, type } = pending;
    if (from) {
      const input = socket?.classList.contains("in") ? socket.dataset.input : node && this.firstInputFor(node, type);
      if (node && input) this.report(this.graph.connect(from.node, from.slot, node.id, input));
      else if (node) this.report(`${node.title} has no input that takes ${type}`);
      else if (!pending.detached) this.offerNodesFor(pending, event);
    } else {
      const slot = socket?.classList.contains("out") ? Number(socket.dataset.output)
        : node && this.firstOutputFor(node, type);
      if (node && slot !== null) this.report(this.graph.connect(node.id, slot, to.node, to.input));
      else if (node) this.report(`${node.title} has no output of type ${type}`);
      else this.offerNodesFor(pending, event);
    }
  }

  report(error) {
    if (error) this.env.notify.toast(error, "error");
  }

  firstInputFor(node, type) {
    const fits = node.def.inputs.filter((i) => i.kind !== "literal" && typesCompatible(type, i.type));
    const free = fits.filter((i) => !node.links[i.name]);
    return (free.find((i) => i.kind === "socket") ?? free[0] ?? fits[0])?.name;
  }

  firstOutputFor(node, type) {
    const slot = node.def.outputs.findIndex((o) => typesCompatible(o.type, type));
    return slot < 0 ? null : slot;
  }

  /** A link dropped on empty space: the add-node menu lists the nodes that can take (or give) it. */
  offerNodesFor(pending, event) {
    const pos = this.toGraph(event.clientX, event.clientY);
    const fits = pending.from
      ? (def) => def.inputs.some((i) => i.kind !== "literal" && typesCompatible(pending.type, i.type))
      : (def) => def.outputs.some((o) => typesCompatible(o.type, pending.type));
    this.menu.open(event.clientX, event.clientY, {
      filter: fits,
      label: pending.from ? `nodes taking ${pending.type}` : `nodes giving ${pending.type}`,
      onPick: (nodeType) => {
        const node = this.graph.addNode(nodeType, pos);
        const { from, to, type } = pending;
        if (from) this.report(this.graph.connect(from.node, from.slot, node.id, this.firstInputFor(node, type)));
        else this.report(this.graph.connect(node.id, this.firstOutputFor(node, type), to.node, to.input));
      },
    });
  }

  doubleClick(event) {
    // The pointer was captured by the viewport, which the event then names as its target: look again.
    const target = document.elementFromPoint(event.clientX, event.clientY) ?? event.target;
    const title = target.closest(".node-title");
    if (title) {
      this.views.get(title.closest(".node").dataset.nodeId).editTitle();
    } else if (!target.closest(".node")) {
      const pos = this.toGraph(event.clientX, event.clientY);
      const onPick = (type) => this.select([this.graph.addNode(type, pos).id]);
      this.menu.open(event.clientX, event.clientY, { onPick });
    }
  }

  wheel(event) {
    // Scrollable text inside a node scrolls; everywhere else the wheel zooms about the pointer.
    const scroller = event.target.closest("textarea, .node-values");
    if (scroller && scroller.scrollHeight > scroller.clientHeight) return;
    event.preventDefault();
    const rect = this.viewport.getBoundingClientRect();
    const [cx, cy] = [event.clientX - rect.left, event.clientY - rect.top];
    const { x, y, scale } = this.view;
    const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale * Math.exp(-event.deltaY * 0.0015)));
    this.view = { scale: next, x: cx - ((cx - x) / scale) * next, y: cy - ((cy - y) / scale) * next };
    this.applyView();
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
      this.draw();
    });
  }

  draw() {
    const ctx = this.linkCanvas.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    const { x, y, scale } = this.view;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.linkCanvas.width, this.linkCanvas.height);
    ctx.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * x, dpr * y);
    this.drawGrid(ctx);
    for (const link of this.graph.links()) {
      const from = this.views.get(link.from);
      const to = this.views.get(link.to);
      const a = from?.socketPosition("out", link.slot);
      const b = to?.socketPosition("in", link.input);
      if (!a || !b) continue;
      const colour = from.el.querySelector(`.socket.out[data-output="${link.slot}"]`).style.getPropertyValue("--c");
      drawLink(ctx, a, b, colour);
    }
    const pending = this.pendingLink;
    if (pending?.point) {
      const anchor = pending.from ? this.views.get(pending.from.node).socketPosition("out", pending.from.slot)
        : this.views.get(pending.to.node).socketPosition("in", pending.to.input);
      ctx.setLineDash([6, 4]);
      if (pending.from) drawLink(ctx, anchor, pending.point, "#e5e7eb");
      else drawLink(ctx, pending.point, anchor, "#e5e7eb");
      ctx.setLineDash([]);
    }
  }

  drawGrid(ctx) {
    const rect = this.viewport.getBoundingClientRect();
    const [x0, y0] = this.toGraph(rect.left, rect.top);
    const x1 = x0 + this.viewport.clientWidth / this.view.scale;
    const y1 = y0 + this.viewport.clientHeight / this.view.scale;
    const step = this.view.scale < 0.5 ? GRID * 5 : GRID;
    ctx.lineWidth = 1 / this.view.scale;
    ctx.beginPath();
    for (let gx = Math.floor(x0 / step) * step; gx < x1; gx += step) {
      ctx.moveTo(gx, y0);
      ctx.lineTo(gx, y1);
    }
    for (let gy = Math.floor(y0 / step) * step; gy < y1; gy += step) {
      ctx.moveTo(x0, gy);
      ctx.lineTo(x1, gy);
    }
    ctx.strokeStyle = "rgba(255, 255, 255, 0.035)";
    ctx.stroke();
  }
}

function drawLink(ctx, [ax, ay], [bx, by], colour) {
  const bend = Math.max(40, Math.abs(bx - ax) * 0.5);
  ctx.beginPath();
  ctx.moveTo(ax, ay);
  ctx.bezierCurveTo(ax + bend, ay, bx - bend, by, bx, by);
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2.5;
  ctx.stroke();
}
