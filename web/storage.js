// Nothing lost on reload: the open graph (UI format, with its view) and the gallery's recent
// images are kept in localStorage, written a moment after each change and read back on load.

const GRAPH_KEY = "sigmagraph.workflow";
const GALLERY_KEY = "sigmagraph.gallery";
const DELAY_MS = 300;

export class Persistence {
  constructor(graph, canvas, gallery) {
    Object.assign(this, { graph, canvas, gallery });
    this.timer = null;
    const later = () => this.saveSoon();
    graph.addEventListener("edited", later);
    graph.addEventListener("loaded", later);
    canvas.addEventListener("view-changed", later);
    // Previews live in the server's temp folder, which a restart empties: only outputs are worth keeping.
    gallery.addEventListener("changed",
      () => write(GALLERY_KEY, gallery.items.filter((item) => item.url.includes("type=output"))));
  }

  saveSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(), DELAY_MS);
  }

  save() {
    write(GRAPH_KEY, this.graph.toUi(null, this.canvas.view));
  }

  /** The stored graph (UI format) or null, and puts the stored images back in the gallery. */
  restore() {
    for (const item of [...(read(GALLERY_KEY) ?? [])].reverse()) this.gallery.add(item.url, item.caption);
    return read(GRAPH_KEY);
  }
}

function read(key) {
  try {
    return JSON.parse(localStorage.getItem(key));
  } catch {
    return null;
  }
}

// A full storage (quota) loses the newest state only; the editor keeps working.
function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch (error) {
    console.info(`could not keep ${key} in localStorage: ${error.message}`);
  }
}
