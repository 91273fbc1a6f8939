// The editor's entry point: reads the catalogue, builds the views, wires the toolbar and file
// drops, restores the last session's graph (or opens the default workflow), then imports the node
// packs' extension modules. Keyboard shortcuts live in shortcuts.js.

import { Api, errorText } from "./api.js";
import { Canvas } from "./canvas.js";
import { readCatalogue, setSocketColours } from "./catalogue.js";
import { Clipboard } from "./clipboard.js";
import { CanvasMenus, ContextMenu } from "./contextmenu.js";
import { Gallery } from "./gallery.js";
import { Gestures } from "./gestures.js";
import { Graph } from "./graph.js";
import { History } from "./history.js";
import { LabViews } from "./lab_views.js";
import { NodeMenu } from "./menu.js";
import { Minimap } from "./minimap.js";
import { Notifier } from "./notify.js";
import { RunMonitor } from "./run_events.js";
import { bindShortcuts } from "./shortcuts.js";
import { Persistence } from "./storage.js";
import { isUiFormat } from "./ui_format.js";
import { downloadJson, readWorkflowFile } from "./workflow_files.js";

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
  const nodeSearch = new NodeMenu($("#node-menu"), catalogue);
  const contextMenu = new ContextMenu($("#context-menu"));
  const gallery = new Gallery($("#gallery"), $("#lightbox"));
  const canvas = new Canvas($("#viewport"), graph, { graph, api, notify });
  const clipboard = new Clipboard(graph, canvas);
  const gestures = new Gestures(canvas, new CanvasMenus({ canvas, graph, clipboard, nodeSearch, contextMenu }));
  const history = new History(graph);
  const persistence = new Persistence(graph, canvas, gallery);
  const minimap = new Minimap($("#minimap"), canvas);
  const runs = new RunMonitor(api, graph, gallery, notify);
  new LabViews({ api, graph, canvas, catalogue }); // schedule curves, trajectory strips (before a graph opens)
  const connected = api.connect(); // a prompt queued before the socket is open would run unseen

  async function queue() {
    if (!graph.nodes.size) {
      notify.toast("The graph is empty: double-click the canvas to add nodes.");
      return;
    }
    for (const node of graph.nodes.values()) if (node.run.error) graph.updateRun(node.id, { error: null });
    let answer;
    try {
      answer = await api.queuePrompt(graph.toApi(), graph.toUi());
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

  /** Opens a UI- or API-format document as a new graph (undo starts again from it). */
  function open(doc, name, options = {}) {
    try {
      const missing = isUiFormat(doc) ? graph.loadUi(doc, options) : graph.loadApi(doc, options);
      history.reset();
      if (missing.length) {
        notify.toast(`${name || "the graph"}: unknown node types ${missing.join(", ")} (shown in red)`, "error");
      }
      else if (name) notify.toast(`opened ${name}`);
    } catch (error) {
      notify.toast(`${name || "the workflow"} could not be opened: ${error.message}`, "error");
    }
  }

  async function openFile(file) {
    try {
      open(await readWorkflowFile(file), file.name);
    } catch (error) {
      notify.toast(error.message, "error");
    }
  }

  async function openDefault() {
    const initial = await api.workflow("default.json").catch(() => null);
    if (initial) open(initial, "the default workflow");
    else notify.toast("the server has no default workflow", "error");
  }

  /** Reads the catalogue again: new model files appear in the combos without a page reload. */
  async function refreshCatalogue() {
    try {
      const fresh = readCatalogue(await api.objectInfo());
      for (const [name, def] of fresh) {
        const known = catalogue.get(name);
        if (!known) {
          catalogue.set(name, def);
          continue;
        }
        for (const input of known.inputs) {
          const choices = def.inputs.find((i) => i.name === input.name)?.choices;
          if (input.choices && choices) input.choices.splice(0, input.choices.length, ...choices);
        }
      }
      for (const node of graph.nodes.values()) graph.emit("node-changed", { node, what: "values" });
      notify.toast("node list and model files refreshed");
    } catch (error) {
      notify.toast(`could not refresh: ${error.message}`, "error");
    }
  }

  const actions = {
    queue,
    save: () => downloadJson("workflow.json", graph.toUi(null, canvas.view)),
    saveApi: () => downloadJson("workflow_api.json", graph.toApi()),
    undo: () => history.undo(),
    redo: () => history.redo(),
    refresh: refreshCatalogue,
  };

  $("#queue").addEventListener("click", queue);
  $("#interrupt").addEventListener("click", () => {
    if (runs.promptId) api.interrupt(runs.promptId);
    else notify.toast("nothing of yours is running");
  });
  $("#add-node").addEventListener("click", (e) => {
    const [x, y] = canvas.toGraph(innerWidth / 2 - 120, innerHeight / 3);
    nodeSearch.open(e.clientX, e.clientY + 20, { onPick: (type) => canvas.select([graph.addNode(type, [x, y]).id]) });
  });
  $("#new").addEventListener("click", () => {
    graph.clear();
    canvas.setView({ x: 0, y: 0, scale: 1 });
  });
  $("#load-default").addEventListener("click", openDefault);
  $("#fit").addEventListener("click", () => canvas.fitView());
  $("#zoom").addEventListener("click", () => {
    const rect = canvas.viewport.getBoundingClientRect();
    canvas.zoomAbout(rect.left + rect.width / 2, rect.top + rect.height / 2, 1 / canvas.view.scale);
  });
  canvas.addEventListener("view-changed", ({ detail }) => {
    $("#zoom").textContent = `${Math.round(detail.scale * 100)}%`;
  });
  $("#save").addEventListener("click", actions.save);
  $("#save-api").addEventListener("click", actions.saveApi);
  $("#refresh").addEventListener("click", refreshCatalogue);
  $("#toggle-minimap").addEventListener("click", () => minimap.toggle());
  $("#load-input").addEventListener("change", async (e) => {
    if (e.target.files[0]) await openFile(e.target.files[0]);
    e.target.value = "";
  });
  $("#toggle-gallery").addEventListener("click", () => document.body.classList.toggle("gallery-hidden"));
  bindShortcuts({ canvas, graph, clipboard, actions });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    const [file] = e.dataTransfer?.files ?? [];
    if (file) openFile(file);
  });

  // The last session's graph and view come back; a first visit opens the default workflow.
  const stored = persistence.restore();
  if (stored) open(stored, "", { fit: !stored.extra?.ds }); // silently: it is what the user left
  else await openDefault();

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
  window.sigmagraph = { graph, canvas, gestures, history }; // for debugging from the console
  window.sigmagraphGeometry = (id) => canvas.geometry(id); // read-only, for tests
  document.body.dataset.ready = "true";
}

main();
