"""One worker process on Ray: its own Session (engine cache, loaded models) running prompts one at a time.

`run` is a streaming generator: the prompt runs on a thread of its own while the generator hands
its messages home in batches, in order — the events (`progress`, `executing`, `executed`...),
preview frames, the bytes of the files a node wrote (just before the `executed` that names them)
and, last, the result. The actor is threaded, so `interrupt`, `free` and `describe` are answered
while a prompt runs. This module does not import Ray: the pool (ray_workers.py) makes the class
an actor.
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Iterator

from ..config import Config
from ..events import EXECUTED, EXECUTION_ERROR
from ..executor import RunResult
from ..session import Session
from .output_files import take_files
from .worker import EventEncoder, describe_session, error_payload, exception_payload

log = logging.getLogger("sigmagraph.worker")

FILES = "files"  # message data: the OutputFiles of the `executed` that follows
RESULT = "result"  # message data: the run's RunResult as a dict; always the last message of a run
INVALID = "sigmagraph.InvalidOnWorker"  # exception_type of a prompt this worker cannot validate

Message = tuple[str, Any]


class PromptRunner:
    """A worker: a Session over private output and temp folders, with models found where the config says."""

    def __init__(self, config: Config, name: str, torch_threads: int | None = None):
        if torch_threads:
            import torch  # workers sharing a machine split its cores instead of fighting over them

            torch.set_num_threads(torch_threads)
        self.name = name
        self.folder = Path(tempfile.mkdtemp(prefix=f"sigmagraph-{name}-"))
        self.config = replace(config, output_dir=self.folder / "output", temp_dir=self.folder / "temp")
        self.session = Session(self.config)
        self._one_run = threading.Lock()
        self._running: str | None = None
        self._sent: set[tuple[str, str, str]] = set()  # files already sent home

    def run(self, prompt_id: str, prompt: dict[str, Any], extra_data: dict[str, Any], outputs: list[str],
            preview_interval: float) -> Iterator[list[Message]]:
        """Runs a prompt (validated here, against this worker's packs and models), yielding its messages."""
        messages: queue.Queue[Message] = queue.Queue()
        threading.Thread(target=self._run, args=(prompt_id, prompt, extra_data, outputs, preview_interval,
                                                 messages.put), daemon=True).start()
        while True:
            batch = [messages.get()]
            while not messages.empty():
                batch.append(messages.get_nowait())
            yield batch
            if batch[-1][0] == RESULT:
                return

    def _run(self, prompt_id: str, prompt: dict[str, Any], extra_data: dict[str, Any], outputs: list[str],
             preview_interval: float, put: Any) -> None:
        def emit(event: str, data: Any) -> None:
            if event == EXECUTED and (files := take_files(self.config, data.get("output") or {}, self._sent)):
                put((FILES, files))
            put((event, data))

        with self._one_run:
            self._running = prompt_id
            try:
                workflow = self.session.validate(prompt, outputs)
                if workflow.ok:
                    result = self.session.run(workflow, prompt_id=prompt_id, extra_data=extra_data,
                                              on_event=EventEncoder(emit, preview_interval))
                else:
                    payload = error_payload(prompt_id, INVALID, f"worker {self.name} cannot run the prompt: "
                                            f"{workflow.report.summary()}", [])
                    emit(EXECUTION_ERROR, payload)
                    result = RunResult(prompt_id, "error", error=payload)
            except BaseException as error:  # noqa: BLE001 - even a node's sys.exit() must not end the worker
                log.exception("prompt %s failed outside any node", prompt_id)
                payload = exception_payload(prompt_id, error)
                emit(EXECUTION_ERROR, payload)
                result = RunResult(prompt_id, "error", error=payload)
            finally:
                self._running = None
            put((RESULT, asdict(result)))

    def interrupt(self, prompt_id: str) -> None:
        """Stops the prompt if this worker runs it (an interrupt aimed at another one is harmless)."""
        self.session.interrupt.request(prompt_id)

    def free(self) -> None:
        """Empties the engine cache, right after the running prompt if there is one."""
        with self._one_run:
            self.session.release_memory()

    def describe(self) -> dict[str, Any]:
        """This worker for /system_stats."""
        return describe_session(self.name, self.session, self._running)

    def close(self) -> None:
        """Removes the private folders (the pool calls it before letting the actor go)."""
        shutil.rmtree(self.folder, ignore_errors=True)
