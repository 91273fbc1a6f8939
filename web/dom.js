// The one DOM helper the views share.

/** A new element with a class name, optional text and attributes. */
export function h(tag, className = "", text = "", attributes = {}) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text) el.textContent = text;
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  return el;
}
