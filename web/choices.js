// The drop-down of a combo widget: the choices under a filter field (48 samplers do not fit a
// native list), the current one marked; every word typed must appear in a choice.

import { h } from "./dom.js";
import { SearchList } from "./search_list.js";

const MAX_SHOWN = 200;

class ChoiceList extends SearchList {
  constructor() {
    const root = h("div", "choice-list", "", { "data-testid": "choice-list" });
    document.body.append(root);
    super(root, { placeholder: "filter…", label: "filter choices", itemTestId: "choice", empty: "no match" });
  }

  /** Opens under an element with `choices`, `current` marked; `onPick(value)` gets the choice. */
  open(anchor, choices, current, onPick) {
    const rect = anchor.getBoundingClientRect();
    this.root.style.minWidth = `${Math.max(180, rect.width)}px`;
    this.show(rect.left, rect.bottom + 2, { choices, current, onPick });
  }

  entries(words) {
    const { choices, current } = this.request;
    return choices.filter((c) => words.every((w) => c.toLowerCase().includes(w))).slice(0, MAX_SHOWN)
      .map((choice) => ({ value: choice, label: choice, active: choice === current }));
  }
}

/** The one drop-down the widgets share. */
export const choiceList = new ChoiceList();
