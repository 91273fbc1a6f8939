"""Pictures from a demo model through the graph: the workflow shipped for it, with chosen settings.

    session = Session(Config(...))
    images = txt2img(session, "a red circle at the left on a yellow background", seed=0, batch=4)
    images = txt2img(session, "...", seed=0, model=DEMO_MODELS["sd"])      # the SD demo's workflow

Tests, benchmarks and tools/make_demo_pictures.py use this, so what they measure is what
`sigmagraph run workflows/default.json` (the flow demo) or `workflows/demo_sd.json` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sigmagraph.engine import Session
from sigmagraph.engine.paths import package_folder
from sigmagraph.engine.testing import output, run

from .checkpoint import DEMO_MODELS, DemoModel

# Node ids in both demo workflows (default.json and demo_sd.json).
LOADER, PROMPT, LATENT, SAMPLER, DECODE, SAVE = "1", "2", "4", "5", "6", "7"
FLOW_DEMO = DEMO_MODELS["flow"]


def shipped_workflow(name: str = "default.json") -> dict[str, Any]:
    """A workflow of workflows/ as installed."""
    folder = package_folder("sigmagraph.workflows")
    if folder is None:
        raise FileNotFoundError("the sigmagraph.workflows package is not installed")
    return json.loads((Path(folder) / name).read_text())


def txt2img_workflow(prompt: str, seed: int, batch: int = 1, ckpt_name: str | None = None,
                     model: DemoModel = FLOW_DEMO, **sampler: Any) -> dict[str, Any]:
    """The model's workflow with a prompt, seed, batch size, checkpoint and any KSampler inputs; previews, not saves."""
    workflow = shipped_workflow(model.workflow)
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
            model: DemoModel = FLOW_DEMO, **sampler: Any) -> list[np.ndarray]:
    """`batch` pictures (uint8 RGB [64, 64, 3]) of a prompt; image k uses seed + k, as KSampler seeds a batch."""
    workflow = txt2img_workflow(prompt, seed, batch, ckpt_name, model, **sampler)
    return list(to_uint8(output(session, run(session, workflow), DECODE).cpu()))
