// custom_nodes/palette_pack/web/palette.js
export function setup({ catalogue, notify }) {
  if (catalogue.has("MakePalette")) notify.status("palette pack loaded: PALETTE sockets carry colours");
}
