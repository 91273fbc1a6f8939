// Follows runs through the websocket events and shows them: node states (running with progress,
// cached, failed), outputs and previews on the nodes, images in the gallery, and the status line.

export class RunMonitor {
  constructor(api, graph, gallery, notify) {
    Object.assign(this, { api, graph, gallery, notify });
    this.connected = false;
    this.queueRemaining = 0;
    this.running = null; // id of the node executing now
    this.promptId = null; // the prompt being run
    this.previewUrl = null;

    const on = (type, handler) => api.addEventListener(type, ({ detail }) => handler(detail));
    on("connection", ({ open }) => { this.connected = open; this.showStatus(); });
    on("status", (d) => { this.queueRemaining = d.status?.exec_info?.queue_remaining ?? 0; this.showStatus(); });
    on("execution_start", (d) => { this.promptId = d.prompt_id; graph.resetRun(); this.showStatus(); });
    // The engine does not even visit what feeds a cached node; those nodes did not run either.
    on("execution_cached", (d) => {
      for (const id of graph.upstream(d.nodes ?? [])) graph.updateRun(id, { cached: true });
    });
    on("executing", (d) => this.executing(d.node));
    on("progress", (d) => {
      if (d.node != null && String(d.node) !== String(this.running)) this.executing(d.node); // progress means it runs
      graph.updateRun(d.node, { progress: d.max ? d.value / d.max : null });
    });
    on("executed", (d) => this.executed(d));
    on("node_finished", (d) => {
      // Preview frames still in flight belong to no node now (the gallery still shows them).
      if (String(d.node) === String(this.running)) this.running = null;
      graph.updateRun(d.node, {
        running: false, progress: null, preview: null, cached: d.cached, elapsedMs: d.cached ? null : d.elapsed_ms,
      });
    });
    on("execution_error", (d) => {
      graph.updateRun(d.node_id, { running: false, progress: null, error: d.exception_message });
      notify.toast(`${d.node_type ?? "a node"} (node ${d.node_id}) failed: ${d.exception_message}`, "error");
    });
    on("execution_interrupted", () => notify.toast("run interrupted"));
    on("preview", ({ blob }) => this.preview(blob));
  }

  executing(nodeId) {
    if (this.running) this.graph.updateRun(this.running, { running: false, progress: null });
    this.running = nodeId;
    if (nodeId) {
      this.graph.updateRun(nodeId, { running: true });
    } else {
      this.promptId = null;
      this.gallery.showPreview(null);
      if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
      this.previewUrl = null;
    }
    this.showStatus();
  }

  executed({ node: id, output }) {
    this.graph.updateRun(id, { outputs: output });
    const node = this.graph.nodes.get(String(id));
    for (const image of output?.images ?? []) this.gallery.add(this.api.viewUrl(image), node?.title ?? `node ${id}`);
  }

  // Each preview frame replaces the last; its object URL is freed once it is no longer shown.
  preview(blob) {
    const old = this.previewUrl;
    this.previewUrl = URL.createObjectURL(blob);
    if (this.running) this.graph.updateRun(this.running, { preview: this.previewUrl });
    this.gallery.showPreview(this.previewUrl);
    if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
  }

  showStatus() {
    if (!this.connected) {
      this.notify.status("disconnected — reconnecting…", "error");
      return;
    }
    const node = this.running && this.graph.nodes.get(String(this.running));
    const activity = node ? `running ${node.title}` : this.promptId ? "running" : "idle";
    this.notify.status(`${activity} · queue ${this.queueRemaining}`);
  }
}
