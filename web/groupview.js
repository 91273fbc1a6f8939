// The DOM of one group: a tinted frame behind the nodes, with a title bar to drag and rename it
// and a corner to resize it. The group layer sits under the link canvas, as litegraph draws groups.

import { editInPlace, h } from "./dom.js";

export class GroupView {
  constructor(group, env) {
    this.group = group;
    this.env = env;
    this.el = h("div", "group", "", { "data-testid": "group" });
    this.title = h("div", "group-title", group.title);
    this.el.append(this.title, h("div", "resize-handle", "", { title: "drag to resize" }));
    this.place();
  }

  place() {
    const [x, y, w, h_] = this.group.bounding;
    Object.assign(this.el.style, { left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h_}px` });
    this.el.style.setProperty("--group", this.group.color ?? "#3f789e");
  }

  /** Lets the user retitle the group in place. */
  editTitle() {
    editInPlace(this.title, this.group.title, "group title",
      (title) => this.env.graph.updateGroup(this.group, { title }));
  }
}
