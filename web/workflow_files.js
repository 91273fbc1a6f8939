// Workflow files in and out: API-format JSON (native), ComfyUI UI-format JSON, and PNGs that
// carry the workflow in text chunks, all read into an API-format document.

import { isPng, pngText } from "./png.js";
import { isUiFormat, uiToApi } from "./ui_import.js";

/** The API-format workflow held by a dropped or picked file. */
export async function readWorkflowFile(file, catalogue) {
  const buffer = await file.arrayBuffer();
  if (isPng(new Uint8Array(buffer))) return workflowFromPng(await pngText(buffer), file.name, catalogue);
  const text = new TextDecoder().decode(buffer);
  return apiDocument(parseJson(text, `${file.name} (expected JSON or a PNG written by SaveImage)`), catalogue);
}

function parseJson(text, where) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${where}: not valid JSON: ${error.message}`);
  }
}

export function apiDocument(doc, catalogue) {
  return isUiFormat(doc) ? uiToApi(doc, catalogue) : doc;
}

// The `prompt` chunk is the API format; a PNG from ComfyUI has no layout in it, so when its `workflow`
// chunk is there too, that one is read instead for the node positions.
function workflowFromPng(texts, name, catalogue) {
  const prompt = texts.prompt && parseJson(texts.prompt, `${name}: the PNG's 'prompt' chunk`);
  const hasLayout = prompt && Object.values(prompt).some((entry) => Array.isArray(entry?._meta?.pos));
  if (prompt && (hasLayout || !texts.workflow)) return prompt;
  if (texts.workflow) return apiDocument(parseJson(texts.workflow, `${name}: the PNG's 'workflow' chunk`), catalogue);
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
