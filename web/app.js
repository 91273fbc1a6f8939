// The editor's entry point: reads the catalogue, builds the views, wires the toolbar, keyboard and
// file drops, opens the default workflow, then imports the node packs' extension modules.

import { Api, errorText } from "./api.js";
import { Canvas } from "./canvas.js";
import { readCatalogue, setSocketColours } from "./catalogue.js";
import { Gallery } from "./gallery.js";
import { Graph } from "./graph.js";
import { NodeMenu } from "./menu.js";
import { Notifier } from "./notify.js";
import { RunMonitor } from "./run_events.js";
import { apiDocument, downloadJson, readWorkflowFile } from "./workflow_files.js";

const $ = (selector) => document.querySelector(selector);

async function main() {
  const api = new Api();
  const notify = new Notifier($("#toast"), $("#status"));
  let catalogue;
  try {
    catalogue = readCatalogue(await api.objectInfo());
    setSocketColours(await api.socketTypes());
  } catch (error) {
    notify.status(`cannot read the node catalogue from the server: ${error.message}`, "error");
    return;
  }
  const graph = new Graph(catalogue);
  const menu = new NodeMenu($("#node-menu"), catalogue);
  const gallery = new Gallery($("#gallery"));
  const canvas = new Canvas($("#viewport"), graph, { graph, api, notify }, menu);
  const runs = new RunMonitor(api, graph, gallery, notify);
  const connected = api.connect(); // a prompt queued before the socket is open would run unseen

  async function queue() {
    if (!graph.nodes.size) {
      notify.toast("The graph is empty: double-click the canvas to add nodes.");
      return;
    }
    for (const node of graph.nodes.values()) if (node.run.error) graph.updateRun(node.id, { error: null });
    let answer;
    try {
      answer = await api.queuePrompt(graph.toApi());
    } catch (error) {
      notify.toast(`could not reach the server: ${error.message}`, "error");
      return;
    }
    // Errors come with a refusal (400) and, as in ComfyUI, with a prompt whose other outputs still run (200).
    const nodeErrors = answer.body?.node_errors ?? {};
    for (const [id, entry] of Object.entries(nodeErrors)) {
      const lines = (entry.errors ?? [])
        .map((e) => (e.details && e.details !== e.message ? `${e.message}: ${e.details}` : e.message));
      graph.updateRun(id, { error: lines.join("\n") });
    }
    const count = Object.keys(nodeErrors).length;
    const outlined = `see the ${count} node${count > 1 ? "s" : ""} outlined in red`;
    if (answer.ok) {
      graph.applyControls();
      const queued = `queued prompt #${answer.body?.number ?? ""}`;
      notify.toast(count ? `${queued}; its invalid outputs will not run: ${outlined}` : queued, count ? "error" : undefined);
      return;
    }
    const message = errorText(answer.body) ?? `the server refused the prompt (${answer.status})`;
    notify.toast(count ? `${message}: ${outlined}` : message, "error");
  }

  function open(doc, name) {
    const missing = graph.loadApi(doc);
    if (missing.length) notify.toast(`${name}: unknown node types ${missing.join(", ")} (shown in red)`, "error");
    else notify.toast(`opened ${name}`);
  }

  async function openFile(file) {
    try {
      open(await readWorkflowFile(file, catalogue), file.name);
    } catch (error) {
      notify.toast(error.message, "error");
    }
  }

  const save = () => downloadJson("workflow.json", graph.toApi());

  $("#queue").addEventListener("click", queue);
  $("#interrupt").addEventListener("click", () => {
    if (runs.promptId) api.interrupt(runs.promptId);
    else notify.toast("nothing of yours is running");
  });
  $("#add-node").addEventListener("click", (e) => {
    const [x, y] = canvas.toGraph(innerWidth / 2 - 120, innerHeight / 3);
    menu.open(e.clientX, e.clientY + 20, { onPick: (type) => canvas.select([graph.addNode(type, [x, y]).id]) });
  });
  $("#fit").addEventListener("click", () => canvas.fitView());
  $("#save").addEventListener("click", save);
  $("#load-input").addEventListener("change", async (e) => {
    if (e.target.files[0]) await openFile(e.target.files[0]);
    e.target.value = "";
  });
  $("#toggle-gallery").addEventListener("click", () => document.body.classList.toggle("gallery-hidden"));

  document.addEventListener("keydown", (e) => {
    const ctrl = e.ctrlKey || e.metaKey;
    if (ctrl && e.key === "Enter") {
      e.preventDefault();
      queue();
      return;
    }
    if (e.target.closest("input, textarea, select, [contenteditable]")) return;
    if (e.key === "Delete" || e.key === "Backspace") canvas.deleteSelected();
    else if (ctrl && e.key.toLowerCase() === "a") {
      e.preventDefault();
      canvas.selectAll();
    } else if (ctrl && e.key.toLowerCase() === "s") {
      e.preventDefault();
      save();
    }
  });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    const [file] = e.dataTransfer?.files ?? [];
    if (file) openFile(file);
  });

  const initial = await api.workflow("default.json").catch(() => null);
  if (initial) {
    try {
      open(apiDocument(initial, catalogue), "the default workflow");
    } catch (error) {
      notify.toast(`the default workflow could not be opened: ${error.message}`, "error");
    }
  }

  // Node packs may ship modules for the editor; each gets the editor's parts through `setup`.
  // (Extensions written for ComfyUI's own front end import its modules, which do not exist here.)
  const failed = [];
  for (const url of await api.extensions()) {
    try {
      const module = await import(url);
      await module.setup?.({ api, graph, canvas, catalogue, notify });
    } catch (error) {
      failed.push(url);
      console.warn(`extension ${url} failed:`, error);
    }
  }
  if (failed.length) {
    notify.toast(`${failed.length} node pack extension(s) could not be loaded: ${failed.join(", ")}`, "error");
  }

  await connected;
  window.sigmagraph = { graph, canvas }; // for debugging from the console
  window.sigmagraphGeometry = (id) => canvas.geometry(id); // read-only, for tests
  document.body.dataset.ready = "true";
}

main();
