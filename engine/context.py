"""What a running node may reach: configuration, progress reporting, previews, the interrupt flag."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .config import Config
from .events import PREVIEW, PROGRESS, EventSink


class Interrupted(Exception):
    """Raised inside a run when its interrupt was requested; the run ends with execution_interrupted."""


class InterruptFlag:
    """A thread-safe interrupt request, optionally aimed at one prompt id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requested = False
        self._target: str | None = None

    def request(self, prompt_id: str | None = None) -> None:
        """Asks the run of `prompt_id` (any run when None) to stop at its next check."""
        with self._lock:
            self._requested, self._target = True, prompt_id

    def clear(self) -> None:
        with self._lock:
            self._requested, self._target = False, None

    def is_set_for(self, prompt_id: str | None) -> bool:
        if not self._requested:  # the common case, read without the lock: checked before every node
            return False
        with self._lock:
            return self._requested and (self._target is None or self._target == prompt_id)


@dataclass
class RunContext:
    """Handed to nodes that declare a `Hidden.CONTEXT` input.

    `call_index` counts the calls of one node under ComfyUI's list semantics (0 for the first);
    adapters use it to give each call's expansion distinct node ids.
    """

    config: Config
    prompt_id: str
    node_id: str
    emit: EventSink
    interrupt: InterruptFlag
    call_index: int = 0

    def check_interrupt(self) -> None:
        """Raises Interrupted if this run was asked to stop; long nodes call it every step."""
        if self.interrupt.is_set_for(self.prompt_id):
            raise Interrupted(f"run {self.prompt_id} interrupted at node {self.node_id}")

    def progress(self, value: int, total: int, preview: Any = None) -> None:
        """Reports progress (and optionally a preview image), then checks the interrupt flag."""
        self.emit(PROGRESS, {"value": value, "max": total, "node": self.node_id, "prompt_id": self.prompt_id})
        if preview is not None:
            self.emit(PREVIEW, {"node": self.node_id, "prompt_id": self.prompt_id, "image": preview})
        self.check_interrupt()

    def send_image(self, image: Any) -> None:
        """Sends a picture ([H, W, 3] in 0..1) to the client that queued the run, whole and never throttled.

        The server sends it as a binary PNG frame while this node is executing (ComfyUI's SaveImageWebsocket);
        runs without a client (the CLI) drop it.
        """
        self.emit(PREVIEW, {"node": self.node_id, "prompt_id": self.prompt_id, "image": image, "whole": True})
