// Widgets: the controls that edit a node's literal inputs.
//
// createWidget(node, input, env) → {el, refresh}. A widget writes through env.graph (setValue,
// setControl) and `refresh()` redraws it from the node's value, so programmatic changes (seed
// control after generate, loading, undo) show up. env = {graph, api, notify}.

import { CONTROL_MODES } from "./catalogue.js";
import { choiceList } from "./choices.js";
import { h } from "./dom.js";

const DRAG_PIXELS_PER_STEP = 4;
const DRAG_THRESHOLD = 3;

export function createWidget(node, input, env) {
  switch (input.kind) {
    case "INT":
    case "FLOAT":
      return numberWidget(node, input, env);
    case "STRING":
      return input.options.multiline ? textAreaWidget(node, input, env) : textWidget(node, input, env);
    case "BOOLEAN":
      return toggleWidget(node, input, env);
    case "COMBO":
      return input.options.image_upload ? imageUploadWidget(node, input, env) : comboWidget(node, input, env);
    default:
      return literalWidget(node, input);
  }
}

/** The seed's "control after generate" choice: what happens to the value once a prompt is queued. */
export function createControl(node, input, env) {
  return choiceWidget("control after generate", "what happens to the seed after each queued prompt",
    () => CONTROL_MODES, () => node.controls[input.name], (mode) => env.graph.setControl(node, input.name, mode));
}

function decimals(input) {
  const unit = typeof input.options.round === "number" && input.options.round > 0 ? input.options.round
    : input.options.step ?? 0.01;
  return Math.min(6, Math.max(0, Math.ceil(-Math.log10(unit) - 1e-9)));
}

// INT/FLOAT: drag sideways to move by steps, click to type a value, arrows to step once.
function numberWidget(node, input, env) {
  const { options } = input;
  const isInt = input.kind === "INT";
  const step = options.step ?? (isInt ? 1 : 0.01);
  const places = isInt ? 0 : decimals(input);
  const el = h("div", "widget number", "", { title: tooltip(input) });
  const dec = h("button", "arrow", "◂", { tabindex: "-1", "aria-label": `decrease ${input.name}` });
  const inc = h("button", "arrow", "▸", { tabindex: "-1", "aria-label": `increase ${input.name}` });
  const value = h("span", "value");
  el.append(dec, h("span", "name", input.name), value, inc);

  const normalize = (v) => {
    const clamped = Math.min(options.max ?? Infinity, Math.max(options.min ?? -Infinity, v));
    return isInt ? Math.round(clamped) : Number(clamped.toFixed(places));
  };
  const set = (v) => env.graph.setValue(node, input.name, normalize(v));
  const current = () => Number(node.values[input.name]) || 0;
  dec.addEventListener("click", () => set(current() - step));
  inc.addEventListener("click", () => set(current() + step));

  el.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target.closest(".arrow, input")) return;
    const startX = event.clientX;
    const start = current();
    let dragging = false;
    el.setPointerCapture(event.pointerId);
    const move = (e) => {
      const dx = e.clientX - startX;
      if (Math.abs(dx) > DRAG_THRESHOLD) dragging = true;
      if (dragging) set(start + Math.round(dx / DRAG_PIXELS_PER_STEP) * step);
    };
    const up = () => {
      el.removeEventListener("pointermove", move);
      el.removeEventListener("pointerup", up);
      if (!dragging) edit();
    };
    el.addEventListener("pointermove", move);
    el.addEventListener("pointerup", up);
  });

  function edit() {
    const field = h("input", "edit", "", { type: "text", inputmode: "decimal", "aria-label": input.name });
    field.value = String(node.values[input.name]);
    el.append(field);
    field.focus();
    field.select();
    let done = false;
    const finish = (commit) => {
      if (done) return;
      done = true;
      const typed = Number(field.value.trim());
      field.remove();
      if (!commit) return;
      if (field.value.trim() !== "" && !Number.isNaN(typed)) set(typed);
      else env.notify.toast(`'${field.value}' is not a number`, "error");
    };
    field.addEventListener("keydown", (e) => {
      if (e.key === "Enter") finish(true);
      else if (e.key === "Escape") finish(false);
    });
    field.addEventListener("blur", () => finish(true));
  }

  return { el, refresh: () => { value.textContent = formatNumber(node.values[input.name], places); } };
}

function formatNumber(v, places) {
  return typeof v === "number" ? v.toFixed(places) : String(v);
}

function tooltip(input) {
  const { min, max, step, tooltip: text } = input.options;
  const range = Object.entries({ min, max, step }).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${v}`);
  return [text, range.join(", ")].filter(Boolean).join("\n");
}

function textWidget(node, input, env) {
  const el = h("label", "widget text", "", { title: tooltip(input) });
  const field = h("input", "", "", { type: "text", spellcheck: "false" });
  el.append(h("span", "name", input.name), field);
  field.addEventListener("input", () => env.graph.setValue(node, input.name, field.value));
  return { el, refresh: () => { if (field.value !== node.values[input.name]) field.value = node.values[input.name]; } };
}

function textAreaWidget(node, input, env) {
  const el = h("textarea", "widget multiline", "", { placeholder: input.name, title: tooltip(input) || input.name,
    spellcheck: "false" });
  el.addEventListener("input", () => env.graph.setValue(node, input.name, el.value));
  return { el, refresh: () => { if (el.value !== node.values[input.name]) el.value = node.values[input.name]; } };
}

function toggleWidget(node, input, env) {
  const el = h("button", "widget toggle", "", { type: "button", title: tooltip(input) });
  const state = h("span", "state");
  el.append(h("span", "name", input.name), state, h("span", "switch"));
  el.addEventListener("click", () => env.graph.setValue(node, input.name, !node.values[input.name]));
  return {
    el,
    refresh: () => {
      const on = Boolean(node.values[input.name]);
      el.setAttribute("aria-pressed", String(on));
      state.textContent = on ? input.options.label_on ?? "true" : input.options.label_off ?? "false";
    },
  };
}

function comboWidget(node, input, env) {
  return choiceWidget(input.name, tooltip(input), () => input.choices, () => String(node.values[input.name] ?? ""),
    (value) => env.graph.setValue(node, input.name, value));
}

// A choice among strings: ◀ ▶ step through them, a click on the value opens the searchable list.
// A value not among the choices (a model file absent here) stays visible, marked, and is kept.
function choiceWidget(name, title, choices, get, set) {
  const el = h("div", "widget combo", "", { title });
  const dec = h("button", "arrow", "◂", { tabindex: "-1", "aria-label": `previous ${name}` });
  const inc = h("button", "arrow", "▸", { tabindex: "-1", "aria-label": `next ${name}` });
  const value = h("button", "value", "", { type: "button", "aria-haspopup": "listbox", "aria-label": name });
  el.append(dec, h("span", "name", name), value, inc);
  const step = (by) => {
    const list = choices();
    if (!list.length) return;
    const index = list.indexOf(get());
    set(list[index < 0 ? 0 : (index + by + list.length) % list.length]);
  };
  dec.addEventListener("click", () => step(-1));
  inc.addEventListener("click", () => step(1));
  value.addEventListener("click", () => choiceList.open(el, choices(), get(), set));
  const refresh = () => {
    value.textContent = get() || "none"; // an empty list (no model file yet) still leaves something to click
    el.classList.toggle("unknown", !choices().includes(get()));
  };
  return { el, refresh };
}

// LoadImage-style combos: the choice is a file in the input folder, which the user may upload.
function imageUploadWidget(node, input, env) {
  const combo = comboWidget(node, input, env);
  const el = h("div", "widget-stack");
  const upload = h("button", "widget button", "upload image…", { type: "button" });
  const picker = h("input", "", "", { type: "file", accept: "image/*", hidden: "" });
  const preview = h("img", "input-preview", "", { alt: "" });
  preview.addEventListener("error", () => { preview.hidden = true; });
  el.append(combo.el, upload, picker, preview);
  upload.addEventListener("click", () => picker.click());
  picker.addEventListener("change", async () => {
    const [file] = picker.files;
    if (!file) return;
    try {
      const saved = await env.api.uploadImage(file);
      const name = saved.subfolder ? `${saved.subfolder}/${saved.name}` : saved.name;
      if (!input.choices.includes(name)) input.choices.push(name);
      env.graph.setValue(node, input.name, name);
    } catch (error) {
      env.notify.toast(`upload failed: ${error.message}`, "error");
    }
    picker.value = "";
  });
  const refresh = () => {
    combo.refresh();
    const value = String(node.values[input.name] ?? "");
    const slash = value.lastIndexOf("/");
    const url = value && env.api.viewUrl({
      filename: value.slice(slash + 1), subfolder: value.slice(0, Math.max(0, slash)), type: "input",
    });
    if ((url || null) === preview.getAttribute("src")) return;
    preview.hidden = !url;
    if (url) preview.src = url;
    else preview.removeAttribute("src");
  };
  return { el, refresh };
}

// An input of a node type the server does not know: shown, kept, not editable.
function literalWidget(node, input) {
  const el = h("div", "widget literal");
  const value = h("span", "value");
  el.append(h("span", "name", input.name), value);
  return { el, refresh: () => { value.textContent = JSON.stringify(node.values[input.name]); } };
}
