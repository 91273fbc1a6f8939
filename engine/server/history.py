"""Finished prompts in ComfyUI's /history shape, oldest first, bounded in number."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from ..executor import RunResult
from .prompt_queue import QueueItem


def history_entry(item: QueueItem, result: RunResult, messages: list[list[Any]]) -> dict[str, Any]:
    """`{prompt, outputs, status: {status_str, completed, messages}, meta}` for one finished prompt."""
    return {
        "prompt": item.to_json(),
        "outputs": result.ui_outputs,
        "status": {"status_str": "success" if result.ok else "error", "completed": result.ok,
                   "messages": messages},
        "meta": {nid: {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid}
                 for nid in result.ui_outputs},
    }


class History:
    """Entries by prompt id in completion order; written by the worker, read by requests."""

    def __init__(self, max_items: int = 10000):
        self.max_items = max_items
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def add(self, item: QueueItem, result: RunResult, messages: list[list[Any]]) -> None:
        """Records a finished prompt, dropping the oldest entries beyond `max_items`."""
        with self._lock:
            self._entries[item.prompt_id] = history_entry(item, result, messages)
            while len(self._entries) > self.max_items:
                self._entries.popitem(last=False)

    def __contains__(self, prompt_id: str) -> bool:
        with self._lock:
            return prompt_id in self._entries

    def get(self, prompt_id: str) -> dict[str, Any]:
        """`{prompt_id: entry}`, or `{}` while the prompt has not finished (ComfyUI's answer)."""
        with self._lock:
            entry = self._entries.get(prompt_id)
        return {prompt_id: entry} if entry is not None else {}

    def page(self, max_items: int | None = None, offset: int | None = None) -> dict[str, dict[str, Any]]:
        """Entries from `offset` (default: the newest `max_items`), at most `max_items` of them."""
        with self._lock:
            items = list(self._entries.items())
        if offset is not None:
            start = offset
        else:
            start = max(0, len(items) - max_items) if max_items is not None else 0
        end = None if max_items is None else start + max_items
        return dict(items[start:end])

    def delete(self, prompt_ids: list[str]) -> None:
        """Forgets these prompts (unknown ids are ignored)."""
        with self._lock:
            for prompt_id in prompt_ids:
                self._entries.pop(prompt_id, None)

    def clear(self) -> None:
        """Forgets every prompt."""
        with self._lock:
            self._entries.clear()
