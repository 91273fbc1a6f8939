"""The embedding API: one object that loads packs, reads workflows, validates and runs them.

    session = Session(Config(output_dir=Path("out")))
    workflow = session.load("workflows/default.json")
    result = session.run(workflow, on_event=print)
    workflow["3"]["inputs"]["seed"] = 7
    session.run(workflow)            # only the sampler and what follows it run again
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import Config
from .discovery import load_packs
from .events import EventSink, discard
from .executor import Executor, RunResult
from .registry import Registry
from .ui_format import ui_to_api
from .validation import ValidationReport, validate
from .workflow import WorkflowError, is_ui_format, read_document


class Session:
    def __init__(self, config: Config | None = None, registry: Registry | None = None):
        self.config = config or Config()
        self.registry = registry if registry is not None else load_packs(self.config)
        self.executor = Executor(self.registry, self.config)

    def load(self, source: str | Path | dict[str, Any]) -> dict[str, Any]:
        """An API-format workflow from a file (JSON or PNG) or a document; UI format is converted."""
        document = source if isinstance(source, dict) else read_document(source)
        if is_ui_format(document):
            return ui_to_api(document, self.registry)
        if not isinstance(document, dict):
            raise WorkflowError(f"{source}: a workflow is a JSON object keyed by node id, "
                                f"got {type(document).__name__}")
        return document

    def validate(self, workflow: dict[str, Any]) -> ValidationReport:
        """Every problem of the workflow, at once (the report is ok when there are none)."""
        return validate(workflow, self.registry, self.config)[1]

    def run(self, workflow: dict[str, Any], on_event: EventSink = discard, prompt_id: str | None = None,
            extra_data: dict[str, Any] | None = None) -> RunResult:
        """Validates and runs a workflow, reusing cached results of earlier runs in this session."""
        return self.executor.run(workflow, prompt_id=prompt_id, extra_data=extra_data, on_event=on_event)
