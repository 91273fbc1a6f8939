"""The worker: one thread that runs queued prompts in order, off the event loop.

The session's executor and cache belong to this thread; requests only reach them through the queue
(`when_idle`), so a run never sees its cache cleared under it. Whatever a prompt does — fail,
be interrupted, even call sys.exit() — the worker records it and takes the next one.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

from PIL import Image

from ..events import (EXECUTING, EXECUTION_CACHED, EXECUTION_ERROR, EXECUTION_START, PREVIEW, TERMINAL_EVENTS,
                      Throttle, timestamp)
from ..executor import RunResult
from ..session import Session
from .history import History
from .hub import Hub, preview_frame
from .prompt_queue import PromptQueue, QueueItem

log = logging.getLogger("sigmagraph.server")

HISTORY_EVENTS = {EXECUTION_START, EXECUTION_CACHED, *TERMINAL_EVENTS}  # what ComfyUI keeps in status.messages


class RunEvents:
    """The event sink of one run: forwards to the hub, keeps history's messages, throttles previews.

    The final `executing {node: null}` is held back: the worker sends it once history is
    written, so a client that hears it can fetch /history at once.
    """

    def __init__(self, hub: Hub, item: QueueItem, preview_interval: float):
        self.hub, self.client_id, self.prompt_id = hub, item.client_id, item.prompt_id
        self.messages: list[list[Any]] = []
        self.final: dict[str, Any] = {"node": None, "display_node": None, "prompt_id": item.prompt_id}
        self._previews = Throttle(preview_interval)

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        try:
            if event == PREVIEW:
                self._preview(data.get("image"))
            elif event == EXECUTING and data.get("node") is None:
                self.final = data
            else:
                if event in HISTORY_EVENTS:
                    self.messages.append([event, data])
                self.hub.send(event, data, self.client_id)
        except Exception:  # noqa: BLE001 - reporting must never break the run it reports on
            log.exception("could not deliver the %s event of prompt %s", event, self.prompt_id)

    def _preview(self, image: Any) -> None:
        if isinstance(image, Image.Image) and self._previews.ready():
            self.hub.send_preview(preview_frame(image), self.client_id)  # encoded here, off the event loop

    def failed(self, error: BaseException) -> RunResult:
        """Reports an error the executor itself let through, as an execution_error of the prompt."""
        payload = {"prompt_id": self.prompt_id, "node_id": None, "node_type": None, "executed": [],
                   "exception_message": f"{type(error).__name__}: {error}",
                   "exception_type": f"{type(error).__module__}.{type(error).__name__}",
                   "traceback": traceback.format_exception(error), "current_inputs": {}, "current_outputs": [],
                   "timestamp": timestamp()}
        self(EXECUTION_ERROR, payload)
        return RunResult(self.prompt_id, "error", error=payload)


class PromptWorker:
    """Takes prompts off the queue one at a time and runs them through the session."""

    def __init__(self, queue: PromptQueue, history: History, session: Session, hub: Hub,
                 preview_interval: float):
        self.queue, self.history, self.session, self.hub = queue, history, session, hub
        self.preview_interval = preview_interval
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts the thread (a daemon: it never keeps the process alive on its own)."""
        self._thread = threading.Thread(target=self._serve, name="sigmagraph-prompt-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupts the running prompt, lets the thread finish and waits for it."""
        self.queue.close()
        self.queue.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)

    def _serve(self) -> None:
        while (item := self.queue.take()) is not None:
            try:
                self.run(item)
            except Exception:  # noqa: BLE001 - a bug in bookkeeping must not end the worker either
                log.exception("prompt %s could not be recorded", item.prompt_id)

    def run(self, item: QueueItem) -> None:
        """Runs one prompt, records it in history, frees the queue, then says `executing null`."""
        events = RunEvents(self.hub, item, self.preview_interval)
        try:
            result = self.session.run(item.workflow, prompt_id=item.prompt_id, extra_data=item.extra_data,
                                      on_event=events)
        except BaseException as error:  # noqa: BLE001 - even a node's sys.exit() must not end the worker
            log.exception("prompt %s failed outside any node", item.prompt_id)
            result = events.failed(error)
        try:
            self.history.add(item, result, events.messages)
        finally:
            self.queue.task_done(item)
        self.hub.send(EXECUTING, events.final, item.client_id)
