"""The embedding API: one object that loads packs, reads workflows, validates and runs them.

    session = Session(Config(output_dir="out"))
    workflow = session.load("workflows/default.json")
    checked = session.validate(workflow)      # checked.ok (runnable), every problem at once in checked.report
    result = session.run(checked, on_event=print)
    workflow["5"]["inputs"]["seed"] = 7
    session.run(workflow)                     # validated first; only the sampler and what follows it run again
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

from .config import Config
from .context import InterruptFlag
from .discovery import load_packs
from .events import EventSink, discard
from .executor import Executor, RunResult
from .registry import Registry
from .ui_format import ui_to_api
from .validation import ValidatedWorkflow, validate
from .workflow import WorkflowError, is_ui_format, read_document


class Session:
    """The node packs, configuration, output cache and interrupt flag that runs share."""

    def __init__(self, config: Config | None = None, registry: Registry | None = None):
        self.config = config or Config()
        self.registry = registry if registry is not None else load_packs(self.config)
        self.interrupt = InterruptFlag()  # request() stops the running workflow at its next check
        self.executor = Executor(self.registry, self.config, interrupt=self.interrupt)

    def load(self, source: str | Path | dict[str, Any]) -> dict[str, Any]:
        """An API-format workflow from a file (JSON or PNG) or a document; UI format is converted."""
        document = source if isinstance(source, dict) else read_document(source)
        if is_ui_format(document):
            return ui_to_api(document, self.registry)
        if not isinstance(document, dict):
            raise WorkflowError(f"{source}: a workflow is a JSON object keyed by node id, "
                                f"got {type(document).__name__}")
        return document

    def validate(self, workflow: dict[str, Any], targets: list[str] | None = None) -> ValidatedWorkflow:
        """The workflow checked and planned, runnable by `run` when `.ok`; `.report` has every problem at once.

        `targets` (node ids) replaces the output nodes as what the run must produce.
        """
        return validate(workflow, self.registry, self.config, targets)

    def run(self, workflow: dict[str, Any] | ValidatedWorkflow, on_event: EventSink = discard,
            prompt_id: str | None = None, extra_data: dict[str, Any] | None = None) -> RunResult:
        """Runs a workflow's valid outputs (a document is validated first; none valid: InvalidWorkflow),
        reusing this session's cache."""
        return self.executor.run(workflow, prompt_id=prompt_id, extra_data=extra_data, on_event=on_event)

    def release_memory(self) -> None:
        """Drops every cached output (models included: they are node outputs) and returns the memory."""
        self.executor.cache.clear()
        gc.collect()
        torch = sys.modules.get("torch")  # only if something loaded it: freeing must not import torch
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
