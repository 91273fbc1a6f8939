// The server's HTTP routes and its websocket, in ComfyUI's shapes.
//
// Websocket JSON messages {type, data} are re-dispatched as CustomEvents named by `type` with
// `data` as detail; binary frames ([u32 BE event 1 = preview][u32 BE image type 1 = JPEG, 2 = PNG]
// [bytes]) become "preview" events carrying a Blob. "connection" events report {open: bool}.

const PREVIEW_IMAGE = 1;
const IMAGE_TYPES = { 1: "image/jpeg", 2: "image/png" };

function newClientId() {
  // crypto.randomUUID exists only in secure contexts; a page served over plain http on a LAN is not one.
  return globalThis.crypto?.randomUUID?.()
    ?? `client-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

export class Api extends EventTarget {
  constructor() {
    super();
    this.clientId = newClientId();
    this.retryMs = 1000;
  }

  /** {ok, status, body}: body is the parsed JSON answer, or null when there is none. */
  async request(path, init) {
    const response = await fetch(path, init);
    const body = await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, body };
  }

  async objectInfo() {
    const { ok, status, body } = await this.request("/object_info");
    if (!ok || !body) throw new Error(`GET /object_info answered ${status}`);
    return body;
  }

  /** Registered socket types and their colours, {} if the server has none to say. */
  async socketTypes() {
    const { ok, body } = await this.request("/socket_types").catch(() => ({ ok: false }));
    return ok && body ? body : {};
  }

  /** A workflow file served from the workflows folder, or null if there is none. */
  async workflow(name) {
    const { ok, body } = await this.request(`/workflows/${encodeURIComponent(name)}`);
    return ok ? body : null;
  }

  /** URLs of the JavaScript modules that node packs add to the editor. */
  async extensions() {
    const { ok, body } = await this.request("/extensions").catch(() => ({ ok: false }));
    return ok && Array.isArray(body) ? body : [];
  }

  /** Queues an API-format prompt; `workflow` (UI format) goes into the PNGs it writes, as ComfyUI's does. */
  queuePrompt(prompt, workflow) {
    return this.request("/prompt", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt, client_id: this.clientId, extra_data: { extra_pnginfo: { workflow } } }),
    });
  }

  interrupt(promptId) {
    return this.request("/interrupt", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(promptId ? { prompt_id: promptId } : {}),
    });
  }

  /** Uploads an image into the input folder; resolves to {name, subfolder, type}. */
  async uploadImage(file) {
    const form = new FormData();
    form.append("image", file, file.name);
    const { ok, status, body } = await this.request("/upload/image", { method: "POST", body: form });
    if (!ok) throw new Error(errorText(body) ?? `upload answered ${status}`);
    return body;
  }

  viewUrl({ filename, subfolder = "", type = "output" }) {
    return `/view?${new URLSearchParams({ filename, subfolder, type })}`;
  }

  /** Opens the websocket and keeps it open, reconnecting with a growing delay; resolves on the first try's outcome. */
  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws?clientId=${encodeURIComponent(this.clientId)}`);
    socket.binaryType = "arraybuffer";
    socket.addEventListener("open", () => {
      this.retryMs = 1000;
      this.dispatchEvent(new CustomEvent("connection", { detail: { open: true } }));
    });
    socket.addEventListener("close", () => {
      this.dispatchEvent(new CustomEvent("connection", { detail: { open: false } }));
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10000);
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    return new Promise((resolve) => {
      socket.addEventListener("open", resolve, { once: true });
      socket.addEventListener("close", resolve, { once: true });
    });
  }

  receive(data) {
    if (data instanceof ArrayBuffer) {
      const view = new DataView(data);
      if (data.byteLength > 8 && view.getUint32(0) === PREVIEW_IMAGE) {
        const blob = new Blob([data.slice(8)], { type: IMAGE_TYPES[view.getUint32(4)] ?? "image/jpeg" });
        this.dispatchEvent(new CustomEvent("preview", { detail: { blob } }));
      }
      return;
    }
    const message = JSON.parse(data);
    this.dispatchEvent(new CustomEvent(message.type, { detail: message.data ?? {} }));
  }
}

/** The message of an error answer, whichever of the usual shapes it has. */
export function errorText(body) {
  const error = body?.error;
  if (!error) return null;
  return typeof error === "string" ? error : error.message ?? JSON.stringify(error);
}
