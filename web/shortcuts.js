// Keyboard shortcuts, as ComfyUI has them. Inside a text field only Ctrl+Enter is the editor's:
// the field keeps its own keys (its own text undo included).
//
// Ctrl+Enter queue · Ctrl+Z undo · Ctrl+Y / Ctrl+Shift+Z redo · Ctrl+C copy · Ctrl+V paste
// (Ctrl+Shift+V with input links) · Ctrl+A select all · Ctrl+B bypass · Ctrl+M mute · Ctrl+G group
// · Delete remove · Ctrl+S save · "." fit the view · R refresh the node list and model files.

import { MODES } from "./ui_format.js";

export function bindShortcuts({ canvas, graph, clipboard, actions }) {
  let pointer = null; // where a paste lands: the last pointer position over the canvas
  canvas.viewport.addEventListener("pointermove", (e) => { pointer = [e.clientX, e.clientY]; });
  const pasteAt = () => {
    const rect = canvas.viewport.getBoundingClientRect();
    return canvas.toGraph(...(pointer ?? [rect.left + rect.width / 3, rect.top + rect.height / 3]));
  };
  const withCtrl = {
    enter: actions.queue,
    z: (e) => (e.shiftKey ? actions.redo() : actions.undo()),
    y: actions.redo,
    c: () => clipboard.copy(canvas.selection),
    v: (e) => clipboard.paste(pasteAt(), e.shiftKey),
    a: () => canvas.selectAll(),
    b: () => graph.toggleMode(canvas.selection, MODES.bypassed),
    m: () => graph.toggleMode(canvas.selection, MODES.muted),
    g: () => canvas.groupSelection(pasteAt()),
    s: actions.save,
  };
  const plain = {
    delete: () => canvas.deleteSelected(),
    backspace: () => canvas.deleteSelected(),
    ".": () => canvas.fitView(),
    r: actions.refresh,
  };
  document.addEventListener("keydown", (e) => {
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    if (ctrl && key === "enter") {
      e.preventDefault();
      actions.queue();
      return;
    }
    if (e.target.closest("input, textarea, select, [contenteditable]") || e.altKey) return;
    const action = ctrl ? withCtrl[key] : plain[key];
    if (!action) return;
    e.preventDefault();
    action(e);
  });
}
