"""The events of a run, in ComfyUI's message shapes, delivered to one sink per run.

The CLI renders them as progress bars (or JSON lines), the server forwards them over `/ws`.
Beyond ComfyUI's set, `node_finished` reports every node that completes, cached or run, and
every run ends with exactly one terminal event (success, error or interrupted) followed by
ComfyUI's `executing {node: null}`.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

EventSink = Callable[[str, dict[str, Any]], None]

EXECUTION_START = "execution_start"
EXECUTION_CACHED = "execution_cached"
EXECUTING = "executing"
PROGRESS = "progress"
PREVIEW = "preview"  # data: {node, prompt_id, image: PIL.Image}; the server sends it as a binary frame
EXECUTED = "executed"
NODE_FINISHED = "node_finished"
EXECUTION_ROUTED = "execution_routed"  # ours: the worker of a pool that runs the prompt
EXECUTION_SUCCESS = "execution_success"
EXECUTION_ERROR = "execution_error"
EXECUTION_INTERRUPTED = "execution_interrupted"
TERMINAL_EVENTS = (EXECUTION_SUCCESS, EXECUTION_ERROR, EXECUTION_INTERRUPTED)


def timestamp() -> int:
    """Milliseconds since the epoch, as ComfyUI stamps its messages."""
    return int(time.time() * 1000)


def discard(event: str, data: dict[str, Any]) -> None:
    """A sink that ignores every event."""


class Throttle:
    """Lets something happen at most once per `interval` seconds: the first time, then when enough time passed."""

    def __init__(self, interval: float):
        self.interval = interval
        self._last = -math.inf

    def ready(self, force: bool = False) -> bool:
        """Whether it may happen now (always when forced); if so, the interval starts again from now."""
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return False
        self._last = now
        return True
