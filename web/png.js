// Text chunks of a PNG file, where SaveImage stores the workflow (keys "prompt" and "workflow").
//
// Pillow writes tEXt (Latin-1) and switches to iTXt (UTF-8) for text Latin-1 cannot hold; zTXt and
// compressed iTXt are inflated with the browser's DecompressionStream.

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function isPng(bytes) {
  return SIGNATURE.every((b, i) => bytes[i] === b);
}

/** {keyword: text} of every text chunk; throws if the bytes are not a PNG. */
export async function pngText(buffer) {
  const bytes = new Uint8Array(buffer);
  if (!isPng(bytes)) throw new Error("not a PNG file");
  const view = new DataView(buffer);
  const texts = {};
  for (let pos = 8; pos + 8 <= bytes.length;) {
    const length = view.getUint32(pos);
    const type = latin1(bytes.subarray(pos + 4, pos + 8));
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (type === "IEND") break;
    const nul = data.indexOf(0);
    if (type === "tEXt") {
      texts[latin1(data.subarray(0, nul))] = latin1(data.subarray(nul + 1));
    } else if (type === "zTXt") {
      texts[latin1(data.subarray(0, nul))] = latin1(await inflate(data.subarray(nul + 2)));
    } else if (type === "iTXt") {
      const compressed = data[nul + 1] === 1;
      const languageEnd = data.indexOf(0, nul + 3);
      const translatedEnd = data.indexOf(0, languageEnd + 1);
      const text = data.subarray(translatedEnd + 1);
      texts[latin1(data.subarray(0, nul))] = new TextDecoder().decode(compressed ? await inflate(text) : text);
    }
    pos += 12 + length; // length, type, data, CRC
  }
  return texts;
}

// TextDecoder("latin1") is really windows-1252, which differs from Latin-1 in 0x80–0x9F.
function latin1(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return out;
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
