"""Workflow files: ComfyUI's API format (native), loaded from JSON text, a file, or a PNG.

API format: {"<node id>": {"class_type": str, "inputs": {name: literal | [source id, output index]},
"_meta": {"title": str, "pos": [x, y]}}}. A ComfyUI UI-format document (nodes + links) is
recognised and converted with the node catalogue (see ui_format.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel


class WorkflowError(ValueError):
    """The workflow could not be read (missing file, not JSON, not a workflow)."""


class ApiNode(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    class_type: str = Field(min_length=1)
    inputs: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict, alias="_meta")


class ApiWorkflow(RootModel[dict[str, ApiNode]]):
    """A workflow in ComfyUI's API format, keyed by node id."""

    def to_json(self) -> dict[str, Any]:
        """The plain API-format dict (with `_meta`), as written to files and PNGs."""
        return {nid: {"class_type": n.class_type, "inputs": n.inputs,
                      **({"_meta": n.meta} if n.meta else {})} for nid, n in self.root.items()}


def is_link(value: Any) -> bool:
    """Whether an input value is a link `[source id, output index]`."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


def literal_value(value: Any) -> Any:
    """A literal input's value: ComfyUI wraps literal lists as {"__value__": [...]}."""
    if isinstance(value, dict) and set(value) == {"__value__"}:
        return value["__value__"]
    return value


def parse_json_text(text: str, source: str) -> Any:
    """JSON, or a WorkflowError naming the line and column of the syntax error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise WorkflowError(f"{source}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def read_document(path: Path | str) -> Any:
    """The workflow document in a .json file, or in a PNG's tEXt `prompt` (else `workflow`) chunk."""
    path = Path(path)
    if not path.exists():
        raise WorkflowError(f"{path}: no such file")
    if path.is_dir():
        raise WorkflowError(f"{path}: is a directory, expected a workflow .json or .png file")
    data = path.read_bytes()
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _document_from_png(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WorkflowError(f"{path}: not a text file (expected workflow JSON or a PNG with a workflow)") from None
    return parse_json_text(text, str(path))


def _document_from_png(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        chunks = dict(getattr(image, "text", {}) or image.info)
    for key in ("prompt", "workflow"):
        if isinstance(chunks.get(key), str):
            return parse_json_text(chunks[key], f"{path} (PNG chunk {key!r})")
    raise WorkflowError(f"{path}: this PNG carries no workflow (no 'prompt' or 'workflow' text chunk)")


def is_ui_format(document: Any) -> bool:
    """Whether a document is ComfyUI's UI (litegraph) format rather than the API format."""
    return isinstance(document, dict) and isinstance(document.get("nodes"), list) and "links" in document


def api_workflow(document: Any) -> ApiWorkflow:
    """Validates the shape of an API-format document (raises pydantic's ValidationError)."""
    if not isinstance(document, dict):
        raise WorkflowError(f"a workflow is a JSON object keyed by node id, got {type(document).__name__}")
    return ApiWorkflow.model_validate({str(k): v for k, v in document.items()})

