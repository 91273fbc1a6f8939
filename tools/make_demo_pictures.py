"""Draws the README's pictures of the demo model through the default workflow.

    python tools/make_demo_pictures.py

docs/demo-default.png: the four pictures `sigmagraph run workflows/default.json` writes, side by
side; docs/demo-gallery.png: the quality test's captions, one row each, four seeds per row; both
enlarged 4x (nearest neighbour), so the 64x64 pixels stay visible.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from sigmagraph.engine import Config, Session
from sigmagraph.nodes.demo.generate import LATENT, PROMPT, SAMPLER, default_workflow, txt2img
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
    with tempfile.TemporaryDirectory() as folder:
        session = Session(Config(models_dir=Path(folder) / "models", output_dir=Path(folder) / "out",
                                 temp_dir=Path(folder) / "temp", input_dir=Path(folder) / "in",
                                 disable_custom_nodes=True))
        workflow = default_workflow()
        settings = workflow[SAMPLER]["inputs"]
        default = txt2img(session, workflow[PROMPT]["inputs"]["text"], settings["seed"],
                          batch=workflow[LATENT]["inputs"]["batch_size"])
        save(tile(default, axis=1), "demo-default.png")
        rows = [tile(txt2img(session, caption, seed=100, batch=4), axis=1) for caption in EVALUATION_CAPTIONS]
        save(tile(rows, axis=0), "demo-gallery.png")


if __name__ == "__main__":
    main()
