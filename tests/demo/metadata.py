"""The tests' reader of a demo checkpoint's self-description (the metadata save_demo writes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open

from sigmagraph.nodes.demo.checkpoint import CONFIG_KEY, DEMO_CHECKPOINT
from sigmagraph.nodes.models.families import DEMO, FAMILY_MARK_KEY


def read_config(path: Path = DEMO_CHECKPOINT) -> dict[str, Any]:
    """The configuration record stored in a demo checkpoint."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    assert metadata.get(FAMILY_MARK_KEY) == DEMO.name, f"{path.name}: not a demo checkpoint"
    return json.loads(metadata[CONFIG_KEY])
