"""The tests' reader of a demo checkpoint's self-description (the metadata save_demo writes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open

from sigmagraph.nodes.demo.checkpoint import CONFIG_KEY, DemoModel
from sigmagraph.nodes.models.families import FAMILY_MARK_KEY


def read_config(model: DemoModel, path: Path | None = None) -> dict[str, Any]:
    """The configuration record stored in a demo model's packaged checkpoint (or in the file at `path`)."""
    path = path or model.path
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    assert metadata.get(FAMILY_MARK_KEY) == model.family.name, f"{path.name}: not a {model.family.name} checkpoint"
    return json.loads(metadata[CONFIG_KEY])
