"""Running one prompt for the server: the events on the way out, the record at the end, and the local worker.

A run's events pass two stages. `EventEncoder`, where the prompt runs, turns them into messages a
client can take (previews become binary frames). `RunRecorder`, in the server, sends them to the
client that queued the prompt and keeps history's messages. The in-process worker joins the two
directly; a remote worker (engine/server/ray_workers.py) carries the messages home in between.

The local worker is one thread that runs queued prompts in order, off the event loop. The
session's executor and cache belong to it; requests only reach them through the queue
(`when_idle`), so a run never sees its cache cleared under it. Whatever a prompt does — fail,
be interrupted, even call sys.exit() — the worker records it and takes the next one.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from ..events import (EXECUTING, EXECUTION_CACHED, EXECUTION_ERROR, EXECUTION_START, PREVIEW, TERMINAL_EVENTS,
                      Throttle, timestamp)
from ..executor import RunResult
from ..session import Session
from .history import History
from .hub import Hub, image_frame, preview_frame
from .previews import preview_image
from .prompt_queue import PromptQueue, QueueItem

log = logging.getLogger("sigmagraph.server")

HISTORY_EVENTS = {EXECUTION_START, EXECUTION_CACHED, *TERMINAL_EVENTS}  # what ComfyUI keeps in status.messages
LOCAL = "local"  # the in-process worker's name in history and /system_stats

Emit = Callable[[str, Any], None]  # (event, data); for PREVIEW the data is a binary frame


def error_payload(prompt_id: str, exception_type: str, message: str, trace: list[str]) -> dict[str, Any]:
    """An `execution_error` about the run as a whole (no node to blame)."""
    return {"prompt_id": prompt_id, "node_id": None, "node_type": None, "executed": [],
            "exception_message": message, "exception_type": exception_type, "traceback": trace,
            "current_inputs": {}, "current_outputs": [], "timestamp": timestamp()}


def exception_payload(prompt_id: str, error: BaseException) -> dict[str, Any]:
    """An `execution_error` for an exception the executor itself let through."""
    return error_payload(prompt_id, f"{type(error).__module__}.{type(error).__name__}",
                         f"{type(error).__name__}: {error}", traceback.format_exception(error))


def describe_session(name: str, session: Session, running: str | None) -> dict[str, Any]:
    """A worker for /system_stats: its name, state, device and what its engine cache holds."""
    cache = session.executor.cache
    return {"name": name, "state": "busy" if running else "idle", "running": running,
            "device": session.config.device, "cached_nodes": len(cache), "cached_bytes": cache.nbytes}


class EventEncoder:
    """The event sink of a run where it runs: previews become (throttled) binary frames, the rest passes.

    A whole picture (`ctx.send_image`) is never throttled: it is a result, sent as full-size PNG.
    """

    def __init__(self, emit: Emit, preview_interval: float):
        self.emit = emit
        self._previews = Throttle(preview_interval)

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event != PREVIEW:
            self.emit(event, data)
        elif data.get("whole"):
            if (image := preview_image(data.get("image"))) is not None:
                self.emit(PREVIEW, image_frame(image))
        elif self._previews.ready() and (image := preview_image(data.get("image"))) is not None:
            self.emit(PREVIEW, preview_frame(image))  # encoded here, off the event loop


class RunRecorder:
    """The server's side of a run: forwards its messages to the client that queued it, keeps history's.

    The final `executing {node: null}` is held back: `finish` sends it once history is written, so
    a client that hears it can fetch /history at once.
    """

    def __init__(self, hub: Hub, item: QueueItem):
        self.hub, self.item = hub, item
        self.messages: list[list[Any]] = []
        self.final: dict[str, Any] = {"node": None, "display_node": None, "prompt_id": item.prompt_id}

    def __call__(self, event: str, data: Any) -> None:
        try:
            if event == PREVIEW:
                self.hub.send_preview(data, self.item.client_id)
            elif event == EXECUTING and data.get("node") is None:
                self.final = data
            else:
                if event in HISTORY_EVENTS:
                    self.messages.append([event, data])
                self.hub.send(event, data, self.item.client_id)
        except Exception:  # noqa: BLE001 - reporting must never break the run it reports on
            log.exception("could not deliver the %s event of prompt %s", event, self.item.prompt_id)

    def failed(self, payload: dict[str, Any]) -> RunResult:
        """Reports an error outside any node as the prompt's execution_error; the result to record."""
        self(EXECUTION_ERROR, payload)
        return RunResult(self.item.prompt_id, "error", error=payload)

    def finish(self, result: RunResult, queue: PromptQueue, history: History, worker: str) -> None:
        """Records the prompt in history, frees its place in the queue, then says `executing null`."""
        try:
            history.add(self.item, result, self.messages, worker)
        finally:
            queue.task_done(self.item)
        self.hub.send(EXECUTING, self.final, self.item.client_id)


class PromptWorker:
    """The in-process worker: takes prompts off the queue one at a time and runs them through the session."""

    def __init__(self, queue: PromptQueue, history: History, session: Session, hub: Hub,
                 preview_interval: float):
        self.queue, self.history, self.session, self.hub = queue, history, session, hub
        self.preview_interval = preview_interval
        self._thread: threading.Thread | None = None
        self._running: str | None = None

    def start(self) -> None:
        """Starts the thread (a daemon: it never keeps the process alive on its own)."""
        self._thread = threading.Thread(target=self._serve, name="sigmagraph-prompt-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupts the running prompt, lets the thread finish and waits for it."""
        self.queue.close()
        self.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Stops the running prompt if it is `prompt_id` (whichever runs, for None); whether one was hit."""
        hit = self.queue.running_ids(prompt_id)
        for pid in hit:
            self.session.interrupt.request(pid)
        return bool(hit)

    def free(self) -> None:
        """Empties the engine cache now, or right after the running prompt."""
        self.queue.when_idle(self.session.release_memory)

    def describe(self) -> list[dict[str, Any]]:
        """This worker for /system_stats: name, state, device and what its cache holds."""
        return [describe_session(LOCAL, self.session, self._running)]

    def _serve(self) -> None:
        while (item := self.queue.take()) is not None:
            try:
                self.run(item)
            except Exception:  # noqa: BLE001 - a bug in bookkeeping must not end the worker either
                log.exception("prompt %s could not be recorded", item.prompt_id)

    def run(self, item: QueueItem) -> None:
        """Runs one prompt and records it."""
        recorder = RunRecorder(self.hub, item)
        self._running = item.prompt_id
        try:
            result = self.session.run(item.workflow, prompt_id=item.prompt_id, extra_data=item.extra_data,
                                      on_event=EventEncoder(recorder, self.preview_interval))
        except BaseException as error:  # noqa: BLE001 - even a node's sys.exit() must not end the worker
            log.exception("prompt %s failed outside any node", item.prompt_id)
            result = recorder.failed(exception_payload(item.prompt_id, error))
        finally:
            self._running = None
        recorder.finish(result, self.queue, self.history, LOCAL)
