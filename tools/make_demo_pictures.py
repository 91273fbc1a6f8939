"""Draws the README's pictures of the demo models through their shipped workflows.

    python tools/make_demo_pictures.py            # the flow demo (workflows/default.json)
    python tools/make_demo_pictures.py --model sd # the SD demo (workflows/demo_sd.json)

Flow: docs/demo-default.png, the four pictures `sigmagraph run workflows/default.json` writes, side
by side, and docs/demo-gallery.png, the quality test's captions, one row each, four seeds per row.
SD: docs/demo-sd-gallery.png, the same gallery. All enlarged 4x (nearest neighbour), so the 64x64
pixels stay visible.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from sigmagraph.engine import Config, Session
from sigmagraph.nodes.demo.checkpoint import DEMO_MODELS
from sigmagraph.nodes.demo.generate import LATENT, PROMPT, SAMPLER, shipped_workflow, txt2img
from sigmagraph.nodes.demo.quality import EVALUATION_CAPTIONS

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCALE = 4


def tile(images: list[np.ndarray], axis: int, gap: int = 2) -> np.ndarray:
    """Images joined along an axis (1: side by side, 0: stacked) with white gaps between them."""
    shape = list(images[0].shape)
    shape[axis] = gap
    spacer = np.full(shape, 255, np.uint8)
    return np.concatenate([part for image in images for part in (image, spacer)][:-1], axis=axis)


def save(image: np.ndarray, name: str) -> None:
    Image.fromarray(image.repeat(SCALE, 0).repeat(SCALE, 1)).save(DOCS / name, optimize=True)
    print(f"wrote docs/{name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", choices=sorted(DEMO_MODELS), default="flow")
    model = DEMO_MODELS[parser.parse_args().model]
    with tempfile.TemporaryDirectory() as folder:
        session = Session(Config(models_dir=Path(folder) / "models", output_dir=Path(folder) / "out",
                                 temp_dir=Path(folder) / "temp", input_dir=Path(folder) / "in",
                                 disable_custom_nodes=True))
        rows = [tile(txt2img(session, caption, seed=100, batch=4, model=model), axis=1)
                for caption in EVALUATION_CAPTIONS]
        if model is DEMO_MODELS["sd"]:
            save(tile(rows, axis=0), "demo-sd-gallery.png")
            return
        workflow = shipped_workflow(model.workflow)
        default = txt2img(session, workflow[PROMPT]["inputs"]["text"], workflow[SAMPLER]["inputs"]["seed"],
                          batch=workflow[LATENT]["inputs"]["batch_size"], model=model)
        save(tile(default, axis=1), "demo-default.png")
        save(tile(rows, axis=0), "demo-gallery.png")


if __name__ == "__main__":
    main()
