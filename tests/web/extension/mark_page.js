// A node pack's editor extension, for the browser tests: the editor imports it and calls setup.
export function setup({ graph }) {
  document.body.dataset.extensionSawNodes = String(graph.catalogue.size);
}
