"""The nodes of a run that wait, and those that may run now (ComfyUI's ExecutionList, smaller).

The executor adds a node when something needs it, says what it waits for and releases it; a
node becomes ready when everything it waits for is done. Nodes come back out in priority order.
A node may return to waiting after it was taken (a lazy input it asks for, an expansion it must
wait for).
"""

from __future__ import annotations

import heapq
from typing import Any, Callable


class ReadyList:
    """Pending nodes, what each waits for, and a priority queue of the ready ones."""

    def __init__(self, priority: Callable[[str], Any]):
        self.priority = priority
        self.waiting: dict[str, set[str]] = {}  # pending node -> the nodes it waits for
        self._dependents: dict[str, set[str]] = {}  # node -> the pending nodes waiting for it
        self._heap: list[tuple[Any, str]] = []
        self._queued: set[str] = set()

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.waiting

    def add(self, node_id: str) -> None:
        """Makes a node pending; `release` queues it once it is told what it waits for."""
        self.waiting.setdefault(node_id, set())

    def wait_for(self, node_id: str, other: str) -> None:
        """The pending `node_id` may run only after `other` is done."""
        self.waiting[node_id].add(other)
        self._dependents.setdefault(other, set()).add(node_id)

    def release(self, node_id: str) -> None:
        """Queues a pending node again if it waits for nothing (after it was taken and given more to wait for)."""
        if not self.waiting[node_id] and node_id not in self._queued:
            self._queued.add(node_id)
            heapq.heappush(self._heap, (self.priority(node_id), node_id))

    def done(self, node_id: str) -> None:
        """Removes a finished node; the nodes that waited only for it become ready."""
        self.waiting.pop(node_id, None)
        for dependent in self._dependents.pop(node_id, ()):
            waits = self.waiting.get(dependent)
            if waits is not None and node_id in waits:
                waits.discard(node_id)
                self.release(dependent)

    def take(self) -> str | None:
        """The ready node of highest priority (removed from the queue, still pending), or None."""
        while self._heap:
            _, node_id = heapq.heappop(self._heap)
            self._queued.discard(node_id)
            if not self.waiting.get(node_id, True):  # still pending and waiting for nothing
                return node_id
        return None

    def stuck(self) -> list[str]:
        """The pending nodes, when none is ready or running: they wait for each other."""
        return list(self.waiting)
