"""Finished prompts in ComfyUI's /history shape, oldest first, kept in the store (bounded in number)."""

from __future__ import annotations

from typing import Any

from ..executor import RunResult
from .prompt_queue import QueueItem
from .store import Store


def history_entry(item: QueueItem, result: RunResult, messages: list[list[Any]], worker: str) -> dict[str, Any]:
    """`{prompt, outputs, status: {status_str, completed, messages, attempts, worker}, meta}` of a finished prompt.

    `attempts` (runs started: 2 when a crash made it run again) and `worker` (who ran it) are ours;
    ComfyUI's clients ignore them.
    """
    return {
        "prompt": item.to_json(),
        "outputs": result.ui_outputs,
        "status": {"status_str": "success" if result.ok else "error", "completed": result.ok,
                   "messages": messages, "attempts": item.attempts, "worker": worker},
        "meta": {nid: {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid}
                 for nid in result.ui_outputs},
    }


class History:
    """Entries by prompt id in completion order; written by the workers, read by requests."""

    def __init__(self, store: Store):
        self.store = store

    def add(self, item: QueueItem, result: RunResult, messages: list[list[Any]], worker: str) -> None:
        """Records a finished prompt; the store takes it off the queue in the same transaction."""
        self.store.finish(item.prompt_id, history_entry(item, result, messages, worker))

    def __contains__(self, prompt_id: str) -> bool:
        return self.store.has_history(prompt_id)

    def get(self, prompt_id: str) -> dict[str, Any]:
        """`{prompt_id: entry}`, or `{}` while the prompt has not finished (ComfyUI's answer)."""
        entry = self.store.history_entry(prompt_id)
        return {prompt_id: entry} if entry is not None else {}

    def page(self, max_items: int | None = None, offset: int | None = None) -> dict[str, dict[str, Any]]:
        """Entries from `offset` (default: the newest `max_items`), at most `max_items` of them (ComfyUI's paging)."""
        if offset is not None:
            start = offset
        else:
            start = max(0, self.store.history_count() - max_items) if max_items is not None else 0
        return dict(self.store.history_slice(start, max_items))

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every entry, oldest first."""
        return dict(self.store.history_slice(0, None))

    def delete(self, prompt_ids: list[str]) -> None:
        """Forgets these prompts (unknown ids are ignored)."""
        self.store.delete_history(prompt_ids)

    def clear(self) -> None:
        """Forgets every prompt."""
        self.store.clear_history()
