// Pointer gestures on the canvas.
//
// Drag empty space (or with the middle button) to pan, Ctrl+drag to box-select, wheel to zoom;
// click / shift-click to select, drag a node to move the selection, Alt+drag to move a clone;
// drag a group's title to move it with its nodes, a corner to resize a node or a group; drag from
// a socket to link (dropping on empty space opens the add-node menu for a node that fits), drag a
// linked input away to unlink (a refused drop puts the link back); double-click a wire for a
// reroute, a title to rename, empty space to add a node; right-click for the context menus.

import { typesCompatible } from "./catalogue.js";
import { linkAt } from "./drawing.js";

const CLICK_SLOP = 3;
const MIN_NODE_WIDTH = 120;
const MIN_GROUP_SIZE = 80;

export class Gestures {
  constructor(canvas, menus) {
    this.canvas = canvas;
    this.graph = canvas.graph;
    this.menus = menus;
    this.active = null; // {move(event), end(event)} while a pointer is held
    const { viewport } = canvas;
    viewport.addEventListener("pointerdown", (e) => this.pointerDown(e));
    viewport.addEventListener("pointermove", (e) => this.active?.move(e));
    viewport.addEventListener("pointerup", (e) => this.end(e));
    viewport.addEventListener("pointercancel", () => this.cancel());
    viewport.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    viewport.addEventListener("dblclick", (e) => this.doubleClick(e));
    viewport.addEventListener("contextmenu", (e) => this.contextMenu(e));
  }

  pointerDown(event) {
    if (event.button === 1) {
      event.preventDefault();
      this.start(event, this.pan(event));
      return;
    }
    if (event.button !== 0 || event.target.closest(".widget, .widget-stack, .title-edit")) return;
    const nodeEl = event.target.closest(".node");
    const groupEl = event.target.closest(".group");
    const socket = event.target.closest(".socket");
    if (event.target.closest(".resize-handle")) {
      this.start(event, nodeEl ? this.resizeNode(event, nodeEl.dataset.nodeId) : this.resizeGroup(event, groupEl));
    } else if (socket) {
      this.start(event, this.link(event, socket, nodeEl.dataset.nodeId));
    } else if (nodeEl) {
      this.start(event, this.moveNodes(event, nodeEl.dataset.nodeId));
    } else if (groupEl && event.target.closest(".group-title")) {
      this.start(event, this.moveGroup(event, groupEl));
    } else if (event.ctrlKey || event.metaKey) {
      this.start(event, this.boxSelect(event));
    } else {
      if (!event.shiftKey) this.canvas.select([]);
      this.start(event, this.pan(event));
    }
  }

  start(event, gesture) {
    this.canvas.viewport.setPointerCapture(event.pointerId);
    this.active = gesture;
  }

  end(event) {
    const gesture = this.active;
    this.active = null;
    gesture?.end(event);
  }

  // The browser took the pointer away (a touch turned into a scroll, a system dialog): nothing is dropped.
  cancel() {
    this.active?.cancel?.();
    this.active = null;
    this.canvas.pendingLink = null;
    this.canvas.box = null;
    this.canvas.layer.classList.remove("linking");
    this.canvas.requestDraw();
  }

  pan(start) {
    const { x, y, scale } = this.canvas.view;
    return {
      move: (e) => this.canvas.setView({ scale, x: x + e.clientX - start.clientX, y: y + e.clientY - start.clientY }),
      end: () => {},
    };
  }

  boxSelect(start) {
    const origin = this.canvas.toGraph(start.clientX, start.clientY);
    const before = start.shiftKey ? [...this.canvas.selection] : [];
    return {
      move: (e) => {
        const [x, y] = this.canvas.toGraph(e.clientX, e.clientY);
        const [x0, y0] = origin;
        this.canvas.box = [Math.min(x0, x), Math.min(y0, y), Math.max(x0, x), Math.max(y0, y)];
        this.canvas.requestDraw();
      },
      end: () => {
        const box = this.canvas.box;
        this.canvas.box = null;
        this.canvas.requestDraw();
        if (!box) return;
        const inside = [...this.canvas.views.values()].filter((view) => {
          const [x0, y0, x1, y1] = view.box();
          return x0 < box[2] && x1 > box[0] && y0 < box[3] && y1 > box[1];
        }).map((view) => view.node.id);
        this.canvas.select([...before, ...inside]);
      },
    };
  }

  /** Moves nodes (and optionally groups) by the pointer's travel; records one edit if they moved. */
  drag(start, nodes, groups = [], onClick = () => {}) {
    const froms = nodes.map((node) => [...node.pos]);
    const boxes = groups.map((group) => [...group.bounding]);
    let moved = false;
    return {
      move: (e) => {
        const dx = (e.clientX - start.clientX) / this.canvas.view.scale;
        const dy = (e.clientY - start.clientY) / this.canvas.view.scale;
        moved ||= Math.hypot(e.clientX - start.clientX, e.clientY - start.clientY) > CLICK_SLOP;
        if (!moved) return;
        nodes.forEach((node, i) => {
          node.pos = [froms[i][0] + dx, froms[i][1] + dy];
          this.canvas.views.get(node.id).place();
        });
        groups.forEach((group, i) => { group.bounding = [boxes[i][0] + dx, boxes[i][1] + dy, ...boxes[i].slice(2)]; });
        if (groups.length) this.canvas.groupViews.forEach((view) => view.place());
        this.canvas.requestDraw();
      },
      end: () => {
        if (moved) this.graph.moved();
        else onClick();
      },
    };
  }

  moveNodes(start, id) {
    const { canvas } = this;
    if (start.shiftKey) {
      const selection = new Set(canvas.selection);
      if (selection.has(id)) selection.delete(id);
      else selection.add(id);
      canvas.select(selection);
    } else if (!canvas.selection.has(id)) {
      canvas.select([id]);
    }
    if (start.altKey) canvas.select(this.menus.clipboard.clone(canvas.selection)); // Alt+drag moves a copy
    const el = canvas.views.get(id).el; // the node in hand comes to the front (moved only if it must: a
    if (el !== canvas.layer.lastElementChild) canvas.layer.append(el); // moved element loses its double-click)
    const nodes = [...canvas.selection].map((nid) => this.graph.nodes.get(nid));
    // A plain click on one node of a selection selects just that node.
    return this.drag(start, nodes, [], () => { if (!start.shiftKey) canvas.select([id]); });
  }

  moveGroup(start, groupEl) {
    const { group } = this.canvas.groupView(groupEl);
    return this.drag(start, this.graph.nodesInGroup(group), [group]);
  }

  resizeNode(start, id) {
    const view = this.canvas.views.get(id);
    const [width, height] = [view.el.offsetWidth, view.el.offsetHeight];
    return this.resize(start, (dx, dy) => {
      view.node.size = [Math.max(MIN_NODE_WIDTH, width + dx), Math.max(0, height + dy)];
      view.applySize();
    });
  }

  resizeGroup(start, groupEl) {
    const view = this.canvas.groupView(groupEl);
    const [x, y, w, h] = view.group.bounding;
    return this.resize(start, (dx, dy) => {
      view.group.bounding = [x, y, Math.max(MIN_GROUP_SIZE, w + dx), Math.max(MIN_GROUP_SIZE, h + dy)];
      view.place();
    });
  }

  resize(start, apply) {
    let moved = false;
    return {
      move: (e) => {
        moved = true;
        const { scale } = this.canvas.view;
        apply((e.clientX - start.clientX) / scale, (e.clientY - start.clientY) / scale);
        this.canvas.requestDraw();
      },
      end: () => { if (moved) this.graph.moved(); },
    };
  }

  link(start, socket, nodeId) {
    const { canvas, graph } = this;
    const node = graph.nodes.get(nodeId);
    let original = null; // the link picked up from an input, restored if its drop is refused
    if (socket.classList.contains("out")) {
      const slot = Number(socket.dataset.output);
      canvas.pendingLink = { from: { node: nodeId, slot }, type: graph.outputType(nodeId, slot) };
    } else {
      const name = socket.dataset.input;
      const link = node.links[name];
      if (link) {
        // Picking up a linked input carries its link away; dropping it on empty space removes it.
        original = { ...link, to: nodeId, input: name };
        graph.disconnect(nodeId, name, false);
        const type = graph.outputType(link.from, link.slot);
        canvas.pendingLink = { from: { node: link.from, slot: link.slot }, type, detached: true };
      } else {
        canvas.pendingLink = { to: { node: nodeId, input: name }, type: node.input(name).type };
      }
    }
    this.markCompatibleSockets();
    const restore = () => original && graph.connect(original.from, original.slot, original.to, original.input, false);
    return {
      move: (e) => {
        canvas.pendingLink.point = canvas.toGraph(e.clientX, e.clientY);
        canvas.requestDraw();
      },
      end: (e) => {
        const pending = canvas.pendingLink;
        canvas.pendingLink = null;
        canvas.layer.classList.remove("linking");
        canvas.requestDraw();
        // A click on a socket is not a drop: a link picked up from an input goes back where it was.
        if (Math.hypot(e.clientX - start.clientX, e.clientY - start.clientY) <= CLICK_SLOP) restore();
        else if (this.dropLink(pending, e) === "refused") restore();
        else if (original) graph.edited("disconnect"); // (an unchanged graph is no new undo step)
      },
      cancel: restore,
    };
  }

  markCompatibleSockets() {
    const { from, type } = this.canvas.pendingLink;
    this.canvas.layer.classList.add("linking");
    for (const socket of this.canvas.layer.querySelectorAll(".socket")) {
      const opposite = socket.classList.contains(from ? "in" : "out");
      socket.classList.toggle("compatible", opposite && (from ? typesCompatible(type, socket.dataset.type)
        : typesCompatible(socket.dataset.type, type)));
    }
  }

  /** Drops a dragged link where the pointer is: "linked", "refused", or "empty" (nothing under it). */
  dropLink(pending, event) {
    const target = document.elementFromPoint(event.clientX, event.clientY);
    const socket = target?.closest(".socket");
    const nodeEl = target?.closest(".node");
    const node = nodeEl && this.graph.nodes.get(nodeEl.dataset.nodeId);
    const { from, to, type } = pending;
    if (!node) {
      if (!pending.detached) this.offerNodesFor(pending, event);
      return "empty";
    }
    if (from) {
      const input = socket?.classList.contains("in") ? socket.dataset.input : firstInputFor(node, type);
      return this.report(input ? this.graph.connect(from.node, from.slot, node.id, input)
        : `${node.title} has no input that takes ${type}`);
    }
    const slot = socket?.classList.contains("out") ? Number(socket.dataset.output) : firstOutputFor(node, type);
    return this.report(slot !== null ? this.graph.connect(node.id, slot, to.node, to.input)
      : `${node.title} has no output of type ${type}`);
  }

  report(error) {
    if (!error) return "linked";
    this.canvas.env.notify.toast(error, "error");
    return "refused";
  }

  /** A link dropped on empty space: the add-node menu lists the nodes that can take (or give) it. */
  offerNodesFor(pending, event) {
    const pos = this.canvas.toGraph(event.clientX, event.clientY);
    const fits = pending.from
      ? (def) => def.inputs.some((i) => i.kind !== "literal" && typesCompatible(pending.type, i.type))
      : (def) => def.outputs.some((o) => typesCompatible(o.type, pending.type));
    this.menus.nodeSearch.open(event.clientX, event.clientY, {
      filter: fits,
      label: pending.from ? `nodes taking ${pending.type}` : `nodes giving ${pending.type}`,
      onPick: (nodeType) => {
        const node = this.graph.addNode(nodeType, pos);
        const { from, to, type } = pending;
        if (from) this.report(this.graph.connect(from.node, from.slot, node.id, firstInputFor(node, type)));
        else this.report(this.graph.connect(node.id, firstOutputFor(node, type), to.node, to.input));
      },
    });
  }

  doubleClick(event) {
    // The pointer was captured by the viewport, which the event then names as its target: look again.
    const target = document.elementFromPoint(event.clientX, event.clientY) ?? event.target;
    const title = target.closest(".node-title");
    const groupTitle = target.closest(".group-title");
    const pos = this.canvas.toGraph(event.clientX, event.clientY);
    if (title) {
      this.canvas.views.get(title.closest(".node").dataset.nodeId).editTitle();
    } else if (groupTitle) {
      this.canvas.groupView(groupTitle.closest(".group")).editTitle();
    } else if (!target.closest(".node")) {
      const hit = linkAt(this.canvas, pos);
      if (hit) {
        this.insertReroute(hit);
        return;
      }
      this.menus.nodeSearch.open(event.clientX, event.clientY,
        { onPick: (type) => this.canvas.select([this.graph.addNode(type, pos).id]) });
    }
  }

  /** Splits a link with a Reroute point where it was double-clicked. */
  insertReroute({ link, point }) {
    const reroute = this.graph.addNode("Reroute", [point[0] - 20, point[1] - 10]);
    this.graph.connect(link.from, link.slot, reroute.id, "value");
    this.graph.connect(reroute.id, 0, link.to, link.input);
    this.canvas.select([reroute.id]);
  }

  contextMenu(event) {
    event.preventDefault();
    const target = document.elementFromPoint(event.clientX, event.clientY) ?? event.target;
    if (target.closest(".widget, .widget-stack, .title-edit")) return;
    const nodeEl = target.closest(".node");
    const groupEl = target.closest(".group");
    const at = this.canvas.toGraph(event.clientX, event.clientY);
    if (nodeEl) {
      const id = nodeEl.dataset.nodeId;
      if (!this.canvas.selection.has(id)) this.canvas.select([id]);
      this.menus.openNodeMenu(event, [...this.canvas.selection]);
    } else if (groupEl) {
      this.menus.openGroupMenu(event, this.canvas.groupView(groupEl));
    } else {
      this.menus.openCanvasMenu(event, at);
    }
  }

  wheel(event) {
    // Scrollable text inside a node scrolls; everywhere else the wheel zooms about the pointer.
    const scroller = event.target.closest("textarea, .node-values");
    if (scroller && scroller.scrollHeight > scroller.clientHeight) return;
    event.preventDefault();
    this.canvas.zoomAbout(event.clientX, event.clientY, Math.exp(-event.deltaY * 0.0015));
  }
}

function firstInputFor(node, type) {
  const fits = node.def.inputs.filter((i) => i.kind !== "literal" && typesCompatible(type, i.type));
  const free = fits.filter((i) => !node.links[i.name]);
  return (free.find((i) => i.kind === "socket") ?? free[0] ?? fits[0])?.name;
}

function firstOutputFor(node, type) {
  const slot = node.def.outputs.findIndex((o) => typesCompatible(o.type, type));
  return slot < 0 ? null : slot;
}
