"""The prompt queue: pending prompts ordered by number and the running ones.

Shared by the event loop (requests) and the workers, so every method takes one lock. Every change
is written through to the store, which a restart resumes from. ComfyUI's ordering: each prompt gets
the next number, `front` negates it, an explicit `number` is used as given; lower numbers run
first, equal numbers first come, first served.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from dataclasses import dataclass
from typing import Any, Callable

from ..validation import ValidatedWorkflow
from .store import Store

Number = int | float


@dataclass
class QueueItem:
    """One queued prompt with its validated workflow; `attempts` counts its runs started so far."""

    number: Number
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    workflow: ValidatedWorkflow
    attempts: int = 0
    arrival: int = 0  # the tie-break between equal numbers

    @property
    def client_id(self) -> str | None:
        """The websocket client that queued the prompt, if it named one."""
        return self.extra_data.get("client_id")

    def to_json(self) -> list[Any]:
        """ComfyUI's queue item: [number, prompt_id, prompt, extra_data, outputs_to_execute]."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, list(self.workflow.outputs)]


class PromptQueue:
    """Pending prompts and the running ones; `on_change(remaining)` hears of every change, in order."""

    def __init__(self, on_change: Callable[[int], None] = lambda remaining: None, store: Store | None = None):
        self._on_change = on_change
        self.store = store if store is not None else Store()
        self._lock = threading.Condition()
        self._heap: list[tuple[Number, int, QueueItem]] = []
        self._arrival = itertools.count()
        self._counter = 0
        self._running: dict[str, QueueItem] = {}
        self._when_idle: list[Callable[[], None]] = []
        self._closed = False

    def _changed(self) -> None:
        # called with the lock held, so listeners see the counts in the order they happened
        self._on_change(len(self._heap) + len(self._running))

    def _push(self, item: QueueItem) -> None:
        heapq.heappush(self._heap, (item.number, item.arrival, item))
        self._changed()
        self._lock.notify_all()

    def put(self, prompt_id: str, prompt: dict[str, Any], extra_data: dict[str, Any], workflow: ValidatedWorkflow,
            number: Number | None = None, front: bool = False) -> QueueItem:
        """Queues (and stores) a prompt under the next number (negated with `front`) or the given one."""
        with self._lock:
            if number is None:
                number = -self._counter if front else self._counter
            self._counter += 1
            item = QueueItem(number, prompt_id, prompt, extra_data, workflow, arrival=next(self._arrival))
            self.store.add_prompt(item.to_json())
            self._push(item)
            return item

    def resume(self, item: QueueItem) -> None:
        """Queues again a stored prompt (after a restart, or a worker lost mid-run) under its own number."""
        with self._lock:
            if math.isfinite(item.number):
                self._counter = max(self._counter, abs(int(item.number)) + 1)
            item.arrival = next(self._arrival)
            self._running.pop(item.prompt_id, None)
            self._push(item)

    def take(self) -> QueueItem | None:
        """Waits for the next prompt and marks it running (None once the queue is closed)."""
        with self._lock:
            while not self._heap and not self._closed:
                self._lock.wait()
            if self._closed:
                return None
            item = heapq.heappop(self._heap)[2]
            item.attempts += 1
            self.store.start_attempt(item.prompt_id)
            self._running[item.prompt_id] = item
            self._changed()
            return item

    def task_done(self, item: QueueItem) -> None:
        """Marks a running prompt finished; once none runs, runs what waited for the queue to be idle."""
        with self._lock:
            self._running.pop(item.prompt_id, None)
            if not self._running:
                for action in self._when_idle:
                    action()
                self._when_idle.clear()
            self._changed()

    def when_idle(self, action: Callable[[], None]) -> None:
        """Runs `action` now if no prompt is running, else right after the running ones (never during)."""
        with self._lock:
            if not self._running:
                action()
            else:
                self._when_idle.append(action)

    def running_ids(self, prompt_id: str | None = None) -> list[str]:
        """The running prompts an interrupt of `prompt_id` hits: that one if it runs, every one for None.

        The workers stop them by id, so an untargeted interrupt cannot leak into the next prompt.
        """
        with self._lock:
            return [pid for pid in self._running if prompt_id in (None, pid)]

    def snapshot(self) -> tuple[list[QueueItem], list[QueueItem]]:
        """The running prompts and the pending ones in the order they will run."""
        with self._lock:
            return list(self._running.values()), [entry[2] for entry in sorted(self._heap)]

    def knows(self, prompt_id: str) -> bool:
        """Whether a prompt with this id is pending or running."""
        with self._lock:
            return prompt_id in self._running or any(entry[2].prompt_id == prompt_id for entry in self._heap)

    def remaining(self) -> int:
        """Pending plus running prompts (ComfyUI's `queue_remaining`)."""
        with self._lock:
            return len(self._heap) + len(self._running)

    def delete(self, prompt_ids: list[str]) -> int:
        """Removes these pending prompts (a running one is left alone: interrupt it); how many went."""
        doomed = set(prompt_ids)
        with self._lock:
            kept = [entry for entry in self._heap if entry[2].prompt_id not in doomed]
            removed = [entry[2].prompt_id for entry in self._heap if entry[2].prompt_id in doomed]
            if removed:
                self.store.remove_prompts(removed)
                heapq.heapify(kept)
                self._heap = kept
                self._changed()
            return len(removed)

    def clear(self) -> int:
        """Removes every pending prompt; how many went."""
        with self._lock:
            removed = [entry[2].prompt_id for entry in self._heap]
            self.store.remove_prompts(removed)
            self._heap = []
            if removed:
                self._changed()
            return len(removed)

    def close(self) -> None:
        """Wakes the workers for good: `take` returns None from now on."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
