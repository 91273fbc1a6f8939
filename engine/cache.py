"""The output cache: content-addressed keys and a byte-bounded least-recently-used store.

A node's key is the SHA-256 of canonical JSON of its class, literal inputs, fingerprint and the
keys (with output slots) of the nodes feeding it. Keys never involve node ids (unless the node
asks for its id), so they are stable across processes and across edits elsewhere in the graph:
change one widget and exactly that node and its descendants get new keys. A node that always
runs gets a unique key, and so does one given a literal JSON cannot express (a model or tensor
an expansion passes as a value: ComfyUI's Unhashable), which has no stable key.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable

from .spec import ALWAYS_RUN, Hidden, NodeSpec


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr, ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, non-JSON values by their repr."""
    return _CANONICAL.encode(value)


def is_json(value: Any) -> bool:
    """Whether a value is plain JSON (None, bool, number, string, and lists and string-keyed dicts of them)."""
    if value is None or isinstance(value, (str, int, float)):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_json(v) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and is_json(v) for k, v in value.items())


def node_key(node_id: str, spec: NodeSpec, literals: dict[str, Any], links: dict[str, tuple[str, int]],
             upstream_keys: dict[str, str], fingerprint: Any) -> str:
    """The cache key of one node given the keys of the nodes it links from."""
    unique = isinstance(fingerprint, str) and fingerprint == ALWAYS_RUN
    document = {
        "class": spec.name,
        "module": spec.python_module,
        "literals": literals if not unique else None,
        "links": {name: [upstream_keys[src], slot] for name, (src, slot) in links.items()},
        "fingerprint": uuid.uuid4().hex if unique else fingerprint,
        "id": node_id if spec.not_idempotent or Hidden.UNIQUE_ID in spec.hidden.values() else None,
    }
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def measure_bytes(value: Any, seen: set | None = None, depth: int = 0) -> int:
    """Memory held by a value: tensors by their storage (each storage counted once), recursively."""
    if value is None or isinstance(value, (str, bytes, int, float, bool)):
        return 0
    seen = set() if seen is None else seen
    if id(value) in seen or depth > 6:
        return 0
    seen.add(id(value))
    storage = getattr(value, "untyped_storage", None)
    if callable(storage):  # a torch tensor, without importing torch
        s = storage()
        marker = ("storage", s.data_ptr())
        if marker in seen:
            return 0
        seen.add(marker)
        return s.nbytes()
    if isinstance(value, dict):
        return sum(measure_bytes(v, seen, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(measure_bytes(v, seen, depth + 1) for v in value)
    state_dict = getattr(value, "state_dict", None)
    if callable(state_dict) and hasattr(value, "parameters"):  # an nn.Module
        return sum(measure_bytes(t, seen, depth + 1) for t in state_dict(keep_vars=True).values())
    if hasattr(value, "__dict__"):
        return sum(measure_bytes(v, seen, depth + 1) for v in vars(value).values())
    return 0


@dataclass
class CacheEntry:
    outputs: tuple[list, ...]  # one list of values per output slot (ComfyUI's list semantics)
    ui: dict[str, Any] | None
    nbytes: int


class OutputCache:
    """Outputs by node key, evicting least-recently-used entries beyond `max_bytes`.

    Entries in use by the running workflow are pinned and never evicted mid-run; with
    `enabled=False` nothing is kept across runs.
    """

    def __init__(self, max_bytes: int | None = None, enabled: bool = True):
        self.max_bytes = max_bytes
        self.enabled = enabled
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def get(self, key: str) -> CacheEntry | None:
        """The entry for `key` (marked most recently used), or None."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, outputs: tuple[list, ...], ui: dict[str, Any] | None, pinned: Iterable[str] = ()) -> None:
        """Stores a node's outputs, then evicts unpinned entries until the budget holds."""
        if not self.enabled:
            return
        self._entries[key] = CacheEntry(outputs, ui, measure_bytes(outputs))
        self._entries.move_to_end(key)
        self.evict(pinned)

    def evict(self, pinned: Iterable[str] = ()) -> None:
        """Drops least-recently-used unpinned entries while over budget."""
        if self.max_bytes is None:
            return
        keep = set(pinned)
        total = self.nbytes
        for key in list(self._entries):
            if total <= self.max_bytes:
                break
            if key not in keep:
                total -= self._entries.pop(key).nbytes

    def clear(self) -> None:
        self._entries.clear()
