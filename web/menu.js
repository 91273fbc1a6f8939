// The add-node menu: a search box over the catalogue, opened where the user asked for a node.
//
// The search forgives: every word typed must match the node's display name, type name or category
// as a substring, as letters in order ("ksadv" → KSampler (Advanced)) or with one typo (two in long
// words); closer matches rank first, then names that start with the query. Arrow keys move, Enter
// picks, Escape or a click outside closes.

import { SearchList } from "./search_list.js";

const MAX_ITEMS = 60;

export class NodeMenu extends SearchList {
  constructor(root, catalogue) {
    super(root, { placeholder: "Search nodes…", label: "search nodes", fieldTestId: "node-search",
      itemTestId: "node-menu-item", empty: "no matching node" });
    this.catalogue = catalogue;
  }

  /** Opens at a page position; `filter(def)` narrows the list, `onPick(type)` receives the choice. */
  open(clientX, clientY, { filter = () => true, label = "", onPick }) {
    this.title.textContent = label;
    this.title.hidden = !label;
    this.show(clientX, clientY, { filter, onPick });
  }

  entries(words) {
    return this.matches(words).map((def) => ({ value: def.name, label: def.displayName, hint: def.category,
      title: def.description }));
  }

  matches(words) {
    const query = words.join(" ");
    const ranked = [];
    for (const def of this.catalogue.values()) {
      if (!this.request.filter(def) || def.deprecated) continue;
      const fields = [def.displayName, def.name, def.category].map((f) => f.toLowerCase());
      const costs = words.map((w) => matchCost(w, fields));
      if (costs.includes(Infinity)) continue;
      const starts = def.displayName.toLowerCase().startsWith(query) || def.name.toLowerCase().startsWith(query);
      ranked.push({ def, rank: costs.reduce((a, b) => a + b, 0) * 2 + (starts ? 0 : 1) });
    }
    ranked.sort((a, b) => a.rank - b.rank || a.def.displayName.localeCompare(b.def.displayName));
    return ranked.slice(0, MAX_ITEMS).map((r) => r.def);
  }
}

/** How loosely `word` is found in a node's [display name, type name, category]: 0 as a substring,
 * 1 as letters in order in a name, 2 with typos, else Infinity. */
function matchCost(word, fields) {
  if (fields.some((f) => f.includes(word))) return 0;
  const names = fields.slice(0, 2).map((f) => f.replace(/[^a-z0-9]/g, ""));
  if (word.length >= 3 && names.some((name) => isSubsequence(word, name))) return 1;
  const allowed = word.length >= 7 ? 2 : word.length >= 4 ? 1 : 0;
  if (!allowed) return Infinity;
  const tokens = fields.join(" ").split(/[^a-z0-9]+/).filter(Boolean);
  // A typo'd word matches the start of a name as well as a whole one ("sampl" → "sampler").
  const near = tokens.some((t) => editDistance(word, t.slice(0, word.length)) <= allowed
    || editDistance(word, t) <= allowed);
  return near ? 2 : Infinity;
}

function isSubsequence(word, text) {
  let i = 0;
  for (const ch of text) if (ch === word[i]) i++;
  return i === word.length;
}

// Levenshtein distance where swapping two neighbouring letters is one edit (the commonest typo).
function editDistance(a, b) {
  let before = null;
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (before && i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        next[j] = Math.min(next[j], before[j - 2] + 1);
      }
    }
    [before, row] = [row, next];
  }
  return row[b.length];
}
