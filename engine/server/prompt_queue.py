"""The prompt queue: pending prompts ordered by number, the one running, and targeted interrupts.

Shared by the event loop (requests) and the worker thread, so every method takes one lock.
ComfyUI's ordering: each prompt gets the next number, `front` negates it, an explicit
`number` is used as given; lower numbers run first, equal numbers first come, first served.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass
from typing import Any, Callable

from ..context import InterruptFlag
from ..validation import ValidatedWorkflow

Number = int | float


@dataclass
class QueueItem:
    """One queued prompt with its validated workflow."""

    number: Number
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    workflow: ValidatedWorkflow

    @property
    def client_id(self) -> str | None:
        """The websocket client that queued the prompt, if it named one."""
        return self.extra_data.get("client_id")

    def to_json(self) -> list[Any]:
        """ComfyUI's queue item: [number, prompt_id, prompt, extra_data, outputs_to_execute]."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, list(self.workflow.outputs)]


class PromptQueue:
    """Pending prompts and the running one; `on_change(remaining)` hears of every change, in order."""

    def __init__(self, interrupt: InterruptFlag, on_change: Callable[[int], None] = lambda remaining: None):
        self._interrupt = interrupt
        self._on_change = on_change
        self._lock = threading.Condition()
        self._heap: list[tuple[Number, int, QueueItem]] = []
        self._arrival = itertools.count()
        self._counter = 0
        self._running: QueueItem | None = None
        self._when_idle: list[Callable[[], None]] = []
        self._closed = False

    def _changed(self) -> None:
        # called with the lock held, so listeners see the counts in the order they happened
        self._on_change(len(self._heap) + (self._running is not None))

    def put(self, prompt_id: str, prompt: dict[str, Any], extra_data: dict[str, Any], workflow: ValidatedWorkflow,
            number: Number | None = None, front: bool = False) -> QueueItem:
        """Queues a prompt under the next number (negated with `front`) or the given one."""
        with self._lock:
            if number is None:
                number = -self._counter if front else self._counter
            self._counter += 1
            item = QueueItem(number, prompt_id, prompt, extra_data, workflow)
            heapq.heappush(self._heap, (number, next(self._arrival), item))
            self._changed()
            self._lock.notify_all()
            return item

    def take(self) -> QueueItem | None:
        """Waits for the next prompt and marks it running (None once the queue is closed)."""
        with self._lock:
            while not self._heap and not self._closed:
                self._lock.wait()
            if self._closed:
                return None
            self._running = heapq.heappop(self._heap)[2]
            self._interrupt.clear()  # an interrupt aimed at an earlier prompt must not reach this one
            self._changed()
            return self._running

    def task_done(self, item: QueueItem) -> None:
        """Marks the running prompt finished and runs what waited for the queue to be idle."""
        with self._lock:
            if self._running is item:
                self._running = None
            for action in self._when_idle:
                action()
            self._when_idle.clear()
            self._changed()

    def when_idle(self, action: Callable[[], None]) -> None:
        """Runs `action` now if no prompt is running, else right after the running one (never during)."""
        with self._lock:
            if self._running is None:
                action()
            else:
                self._when_idle.append(action)

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Interrupts the running prompt if it is `prompt_id` (or any, when None); whether one was hit."""
        with self._lock:
            if self._running is None or prompt_id not in (None, self._running.prompt_id):
                return False
            # aimed at the running prompt's id even when untargeted: it cannot leak into the next one
            self._interrupt.request(self._running.prompt_id)
            return True

    def snapshot(self) -> tuple[list[QueueItem], list[QueueItem]]:
        """The running prompts (zero or one) and the pending ones in the order they will run."""
        with self._lock:
            return ([self._running] if self._running else []), [entry[2] for entry in sorted(self._heap)]

    def knows(self, prompt_id: str) -> bool:
        """Whether a prompt with this id is pending or running."""
        with self._lock:
            return (self._running is not None and self._running.prompt_id == prompt_id) or any(
                entry[2].prompt_id == prompt_id for entry in self._heap)

    def remaining(self) -> int:
        """Pending plus running prompts (ComfyUI's `queue_remaining`)."""
        with self._lock:
            return len(self._heap) + (self._running is not None)

    def delete(self, prompt_ids: list[str]) -> int:
        """Removes these pending prompts (a running one is left alone: interrupt it); how many went."""
        doomed = set(prompt_ids)
        with self._lock:
            kept = [entry for entry in self._heap if entry[2].prompt_id not in doomed]
            removed = len(self._heap) - len(kept)
            if removed:
                heapq.heapify(kept)
                self._heap = kept
                self._changed()
            return removed

    def clear(self) -> int:
        """Removes every pending prompt; how many went."""
        with self._lock:
            removed = len(self._heap)
            self._heap = []
            if removed:
                self._changed()
            return removed

    def close(self) -> None:
        """Wakes the worker for good: `take` returns None from now on."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
