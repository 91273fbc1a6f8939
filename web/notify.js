// The status line (connection, queue, current run) and toasts for one-off messages and refusals.
//
// Toasts stack, newest at the bottom, each with its own time, so a later message never hides an
// error still being read (a failure followed at once by "queued prompt"). A click dismisses one.

const MAX_TOASTS = 4;

export class Notifier {
  constructor(toastEl, statusEl) {
    this.toastEl = toastEl;
    this.statusEl = statusEl;
    toastEl.addEventListener("click", (e) => this.dismiss(e.target.closest(".toast-item")));
  }

  /** Shows a message for a few seconds; kind "error" is red and stays longer. */
  toast(message, kind = "info") {
    const item = document.createElement("div");
    item.className = "toast-item";
    item.dataset.kind = kind;
    item.textContent = message;
    this.toastEl.append(item);
    this.toastEl.hidden = false;
    while (this.toastEl.children.length > MAX_TOASTS) this.dismiss(this.toastEl.firstElementChild);
    setTimeout(() => this.dismiss(item), kind === "error" ? 8000 : 3500);
  }

  dismiss(item) {
    if (!item?.isConnected) return;
    item.remove();
    this.toastEl.hidden = this.toastEl.children.length === 0;
  }

  status(text, kind = "info") {
    this.statusEl.textContent = text;
    this.statusEl.dataset.kind = kind;
  }
}
