"""Pictures from the demo model through the graph: the shipped default workflow with chosen settings.

    session = Session(Config(...))
    images = txt2img(session, "a red circle at the left on a yellow background", seed=0, batch=4)

Tests, benchmarks and tools/make_demo_pictures.py use this, so what they measure is what
`sigmagraph run workflows/default.json` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sigmagraph.engine import Session
from sigmagraph.engine.paths import package_folder
from sigmagraph.engine.testing import output, run

# Node ids in workflows/default.json.
LOADER, PROMPT, LATENT, SAMPLER, DECODE, SAVE = "1", "2", "4", "5", "6", "7"


def default_workflow() -> dict[str, Any]:
    """workflows/default.json as installed."""
    folder = package_folder("sigmagraph.workflows")
    if folder is None:
        raise FileNotFoundError("the sigmagraph.workflows package is not installed")
    return json.loads((Path(folder) / "default.json").read_text())


def txt2img_workflow(prompt: str, seed: int, batch: int = 1, ckpt_name: str | None = None,
                     **sampler: Any) -> dict[str, Any]:
    """The default workflow with a prompt, seed, batch size, checkpoint and any KSampler inputs; previews, not saves."""
    workflow = default_workflow()
    if ckpt_name is not None:
        workflow[LOADER]["inputs"]["ckpt_name"] = ckpt_name
    workflow[PROMPT]["inputs"]["text"] = prompt
    workflow[LATENT]["inputs"]["batch_size"] = batch
    workflow[SAMPLER]["inputs"].update(seed=seed, **sampler)
    workflow[SAVE] = {"class_type": "PreviewImage", "inputs": {"images": [DECODE, 0]}}
    return workflow


def to_uint8(image: Any) -> np.ndarray:
    """IMAGE values [..., 3] in 0..1 as 8-bit RGB, truncating as SaveImage does."""
    return np.clip(255.0 * np.asarray(image, dtype=np.float32), 0, 255).astype(np.uint8)


def txt2img(session: Session, prompt: str, seed: int, batch: int = 1, ckpt_name: str | None = None,
            **sampler: Any) -> list[np.ndarray]:
    """`batch` pictures (uint8 RGB [64, 64, 3]) of a prompt; image k uses seed + k, as KSampler seeds a batch."""
    workflow = txt2img_workflow(prompt, seed, batch, ckpt_name, **sampler)
    return list(to_uint8(output(session, run(session, workflow), DECODE).cpu()))
