"""`sigmagraph run` over many prompts: several workflow files and `--set` sweeps, in turn or on a Ray pool.

    sigmagraph run a.json b.json --set 5.seed=1..16                  # 32 prompts in turn, one cache
    sigmagraph run a.json --set 5.seed=1..16 --workers auto          # the same machinery as `serve --workers`

A sweep `NODE.INPUT=A..B` stands for every integer from A to B (both included; downwards when B < A);
several sweeps combine into every combination. Each finished prompt prints one line, the batch a
summary.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .config import Config
from .session import Session
from .validation import ValidatedWorkflow

SWEEP = re.compile(r"^(?P<target>[^=]+)=(?P<start>-?\d+)\.\.(?P<stop>-?\d+)$")
POLL_SECONDS = 0.05  # how often the pooled batch looks for finished prompts


def expand_sweeps(overrides: Sequence[str]) -> list[list[str]]:
    """Every combination of the sweeps among `--set` items, each as a list of plain `NODE.INPUT=VALUE` items."""
    choices = []
    for item in overrides:
        match = SWEEP.match(item)
        if match is None:
            choices.append([item])
            continue
        start, stop = int(match["start"]), int(match["stop"])
        step = 1 if stop >= start else -1
        choices.append([f"{match['target']}={value}" for value in range(start, stop + step, step)])
    return [list(combination) for combination in itertools.product(*choices)]


@dataclass(frozen=True)
class BatchPrompt:
    """One prompt of a batch: what to call it, its document and its validated form."""

    label: str
    document: dict[str, Any]
    workflow: ValidatedWorkflow
    prompt_id: str


@dataclass(frozen=True)
class Finished:
    """What a batch reports of a finished prompt."""

    label: str
    status: str  # ComfyUI's status_str: "success" or "error" (an interruption is an error)
    worker: str
    files: list[Path]
    message: str = ""


def batch_prompt(label: str, document: dict[str, Any], workflow: ValidatedWorkflow) -> BatchPrompt:
    """A prompt of a batch, with a fresh prompt id."""
    return BatchPrompt(label, document, workflow, str(uuid.uuid4()))


def written_files(config: Config, ui_outputs: dict[str, dict[str, Any]]) -> list[Path]:
    """The files that UI outputs name (`{filename, subfolder, type}` items), as paths in the config's folders."""
    return [config.folder(item.get("type", "output")) / item.get("subfolder", "") / item["filename"]
            for ui in ui_outputs.values() for items in ui.values() if isinstance(items, list)
            for item in items if isinstance(item, dict) and "filename" in item]


def _error_message(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    where = f"node {error['node_id']} ({error['node_type']}): " if error.get("node_id") else ""
    return where + str(error.get("exception_message", ""))


def run_in_turn(session: Session, prompts: Sequence[BatchPrompt], report: Callable[[Finished], None]) -> None:
    """Runs the prompts one after the other through the session (its cache carries over)."""
    for prompt in prompts:
        result = session.run(prompt.workflow, prompt_id=prompt.prompt_id)
        report(Finished(prompt.label, "success" if result.ok else "error", "local",
                        written_files(session.config, result.ui_outputs), _error_message(result.error)))


def run_on_pool(session: Session, prompts: Sequence[BatchPrompt], workers: str, num_workers: int | None,
                report: Callable[[Finished], None]) -> None:
    """Queues every prompt for a pool of Ray workers and reports each as it finishes (in finishing order)."""
    from .server.history import History  # the server's machinery, loaded only for a pooled batch
    from .server.hub import Hub
    from .server.options import ServerOptions
    from .server.prompt_queue import PromptQueue
    from .server.ray_workers import RayWorkers
    from .server.store import Store

    store = Store()
    queue, history = PromptQueue(store=store), History(store)
    pool = RayWorkers(queue, history, session, Hub(), ServerOptions(workers=workers, num_workers=num_workers))
    pool.start()
    try:
        for prompt in prompts:
            queue.put(prompt.prompt_id, prompt.document, {}, prompt.workflow)
        waiting = {prompt.prompt_id: prompt for prompt in prompts}
        while waiting:
            for prompt_id in list(waiting):
                entry = history.get(prompt_id).get(prompt_id)
                if entry is not None:
                    status = entry["status"]
                    error = dict(status["messages"]).get("execution_error")
                    report(Finished(waiting.pop(prompt_id).label, status["status_str"], status["worker"],
                                    written_files(session.config, entry["outputs"]), _error_message(error)))
            time.sleep(POLL_SECONDS)
    finally:
        pool.stop()


class BatchReport:
    """Prints a line per finished prompt (or a JSON object with `as_json`) and, at the end, a summary."""

    def __init__(self, total: int, as_json: bool):
        self.total, self.as_json = total, as_json
        self.finished: list[Finished] = []
        self.started = time.perf_counter()

    def __call__(self, done: Finished) -> None:
        self.finished.append(done)
        if self.as_json:
            print(json.dumps({"type": "prompt_finished", "data": {
                "label": done.label, "status": done.status, "worker": done.worker,
                "files": [str(f) for f in done.files], "message": done.message}}), flush=True)
            return
        files = " ".join(str(f) for f in done.files) or "(no files)"
        detail = files if done.status == "success" else done.message
        print(f"[{len(self.finished)}/{self.total}] {done.label}: {done.status} on {done.worker}: {detail}",
              flush=True)

    @property
    def ok(self) -> bool:
        """Whether every prompt succeeded."""
        return all(done.status == "success" for done in self.finished) and len(self.finished) == self.total

    def summary(self) -> None:
        """Prints how many prompts succeeded and the throughput."""
        seconds = time.perf_counter() - self.started
        succeeded = sum(done.status == "success" for done in self.finished)
        rate = 60.0 * len(self.finished) / seconds if seconds > 0 else 0.0
        if self.as_json:
            print(json.dumps({"type": "batch_finished", "data": {
                "prompts": self.total, "succeeded": succeeded, "failed": len(self.finished) - succeeded,
                "seconds": round(seconds, 3), "prompts_per_minute": round(rate, 2)}}), flush=True)
        else:
            print(f"{self.total} prompts: {succeeded} succeeded, {len(self.finished) - succeeded} failed, "
                  f"in {seconds:.1f} s ({rate:.1f} prompts/min)", flush=True)
