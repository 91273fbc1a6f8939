// The status line (connection, queue, current run) and toasts for one-off messages and refusals.

export class Notifier {
  constructor(toastEl, statusEl) {
    this.toastEl = toastEl;
    this.statusEl = statusEl;
    this.timer = null;
    toastEl.addEventListener("click", () => { toastEl.hidden = true; });
  }

  /** Shows a message for a few seconds; kind "error" is red and stays longer. */
  toast(message, kind = "info") {
    this.toastEl.textContent = message;
    this.toastEl.dataset.kind = kind;
    this.toastEl.hidden = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.toastEl.hidden = true; }, kind === "error" ? 8000 : 3500);
  }

  status(text, kind = "info") {
    this.statusEl.textContent = text;
    this.statusEl.dataset.kind = kind;
  }
}
