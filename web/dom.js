// The DOM helpers the views share.

/** A new element with a class name, optional text and attributes. */
export function h(tag, className = "", text = "", attributes = {}) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text) el.textContent = text;
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  return el;
}

/** Replaces `holder`'s text with a field to edit it; Enter or leaving commits, Escape cancels. */
export function editInPlace(holder, current, label, commit) {
  const field = h("input", "title-edit", "", { type: "text", "aria-label": label });
  field.value = current;
  holder.replaceChildren(field);
  field.focus();
  field.select();
  const finish = (accept) => {
    if (!field.isConnected) return;
    const text = field.value.trim();
    holder.textContent = current;
    if (accept && text && text !== current) commit(text);
  };
  field.addEventListener("keydown", (e) => {
    if (e.key === "Enter") finish(true);
    else if (e.key === "Escape") finish(false);
  });
  field.addEventListener("blur", () => finish(true));
}
