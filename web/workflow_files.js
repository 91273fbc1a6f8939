// Workflow files in and out: ComfyUI's UI-format JSON, API-format JSON (the engine's native file),
// and PNGs that carry the workflow in text chunks.

import { isPng, pngText } from "./png.js";
import { isUiFormat } from "./ui_format.js";

/** The workflow document (UI or API format) held by a dropped or picked file. */
export async function readWorkflowFile(file) {
  const buffer = await file.arrayBuffer();
  if (isPng(new Uint8Array(buffer))) return workflowFromPng(await pngText(buffer), file.name);
  const text = new TextDecoder().decode(buffer);
  return parseJson(text, `${file.name} (expected JSON or a PNG written by SaveImage)`);
}

function parseJson(text, where) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${where}: not valid JSON: ${error.message}`);
  }
}

// The `workflow` chunk (UI format) has everything the canvas shows; the `prompt` chunk (API format)
// is read when there is no usable `workflow` chunk.
function workflowFromPng(texts, name) {
  const workflow = texts.workflow && parseJson(texts.workflow, `${name}: the PNG's 'workflow' chunk`);
  if (isUiFormat(workflow)) return workflow;
  if (texts.prompt) return parseJson(texts.prompt, `${name}: the PNG's 'prompt' chunk`);
  throw new Error(`${name}: this PNG carries no workflow (no 'prompt' or 'workflow' text chunk)`);
}

/** Offers a JSON document as a file download. */
export function downloadJson(filename, doc) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }));
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
